"""Multi-class performance estimation (one-vs-rest CBPE): on palmerpenguins' real data under covariate shift the
estimated accuracy, f1_macro and macro ROC AUC follow the realised ones; on synthetic calibrated scores the
expectation is unbiased; bad input gets a clear error."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from loopline.bundle import compute_metrics
from loopline.core.errors import DataError
from loopline.monitor import PerformanceEstimator, estimated_performance, fit_estimator

CLASSES = ["Adelie", "Chinstrap", "Gentoo"]
FEATURES = ["flipper_length_mm", "body_mass_g"]  # two measurements: Adelie and Chinstrap overlap, as in real life


def penguins() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The penguins with both measurements, shuffled (seeded) into thirds: train, reference, analysis."""
    palmerpenguins = pytest.importorskip("palmerpenguins")
    frame = pl.from_pandas(palmerpenguins.load_penguins()).drop_nulls([*FEATURES, "species"])
    frame = frame[np.random.default_rng(0).permutation(frame.height)]
    third = frame.height // 3
    return frame[:third], frame[third : 2 * third], frame[2 * third :]


def served(model: object, part: pl.DataFrame) -> pl.DataFrame:
    """The rows as the prediction log and the feedback give them: probabilities, served class, label."""
    probability = model.predict_proba(part.select(FEATURES).to_numpy() / [1, 100])  # type: ignore[attr-defined]
    columns = {f"probability:{c}": probability[:, i] for i, c in enumerate(CLASSES)}
    prediction = np.array(CLASSES)[probability.argmax(axis=1)]
    return pl.DataFrame({**columns, "prediction": prediction, "label": part["species"]})


def realised(frame: pl.DataFrame) -> dict[str, float]:
    probability = frame.select(f"probability:{c}" for c in CLASSES).to_numpy()
    truth, predicted = frame["label"].to_numpy(), frame["prediction"].to_numpy()
    return compute_metrics("multiclass", truth, predicted, probability, classes=CLASSES)


def test_the_estimate_follows_the_realised_performance_of_real_penguins_under_covariate_shift() -> None:
    from sklearn.linear_model import LogisticRegression

    train, reference, analysis = penguins()
    model = LogisticRegression(max_iter=2000).fit(train.select(FEATURES).to_numpy() / [1, 100], train["species"])
    assert list(model.classes_) == CLASSES
    estimator = fit_estimator(served(model, reference), CLASSES, draws=300)
    periods = {  # a selection on the inputs keeps P(species | inputs): covariate shift, what CBPE can follow
        "as trained": analysis,
        "small flippers (no Gentoo)": analysis.filter(pl.col("flipper_length_mm") < 200),
        "heavy (mostly Gentoo)": analysis.filter(pl.col("body_mass_g") > 4500),
    }
    errors: dict[tuple[str, str], float] = {}
    estimates: dict[str, dict[str, float]] = {}
    for name, part in periods.items():
        frame = served(model, part.drop("species").with_columns(part["species"]))
        estimate = estimated_performance(estimator, frame.drop("label"), CLASSES)  # no label used
        truth = realised(frame)
        estimates[name] = {metric: e.value for metric, e in estimate.metrics.items()}
        for metric, e in estimate.metrics.items():
            if np.isfinite(truth.get(metric, np.nan)):  # macro AUC is undefined with a class absent
                errors[(name, metric)] = e.value - truth[metric]
                assert e.lower <= truth[metric] + 0.01 and truth[metric] - 0.01 <= e.upper, (name, metric, truth)
    assert max(abs(error) for error in errors.values()) < 0.08, errors
    # the shift is seen without a label: f1_macro halves when a class disappears, accuracy climbs with Gentoo
    assert estimates["small flippers (no Gentoo)"]["f1_macro"] < estimates["as trained"]["f1_macro"] - 0.3
    assert estimates["heavy (mostly Gentoo)"]["accuracy"] > estimates["as trained"]["accuracy"] + 0.1
    print({key: round(value, 4) for key, value in errors.items()})  # the figures for the notes (pytest -s)


def test_on_calibrated_scores_the_expected_metrics_are_unbiased() -> None:
    rng = np.random.default_rng(1)
    p = rng.dirichlet([0.6, 0.6, 0.6, 0.6], size=6000)
    label = (rng.random((6000, 1)) > np.cumsum(p, axis=1)).sum(axis=1)  # each row's class drawn from its p
    estimator = PerformanceEstimator(calibration="none", draws=100).fit(p[:3000], label[:3000])
    estimate = estimator.estimate(p[3000:])
    predicted = p[3000:].argmax(axis=1)
    truth = compute_metrics("multiclass", label[3000:], predicted, p[3000:], classes=[0, 1, 2, 3])
    for metric in ("accuracy", "f1_macro", "roc_auc"):
        e = estimate.metrics[metric]
        assert abs(e.value - truth[metric]) < 0.02 and e.lower <= truth[metric] <= e.upper, metric
    assert estimate.confusion is None and estimate.rows == 3000
    assert estimator.classes_ == 4 and not estimator.calibrated_


def test_miscalibrated_scores_are_calibrated_per_class_before_estimating() -> None:
    rng = np.random.default_rng(2)
    p = rng.dirichlet([0.5, 0.5, 0.5], size=4000)
    label = (rng.random((4000, 1)) > np.cumsum(p, axis=1)).sum(axis=1)
    served = p**3 / (p**3).sum(axis=1, keepdims=True)  # overconfident: same ranking, sharper probabilities
    raw = PerformanceEstimator(calibration="none").fit(served[:2000], label[:2000]).estimate(served[2000:])
    fitted = PerformanceEstimator(calibration="auto").fit(served[:2000], label[:2000])
    calibrated = fitted.estimate(served[2000:])
    truth = compute_metrics("multiclass", label[2000:], served[2000:].argmax(axis=1), served[2000:], classes=[0, 1, 2])
    assert fitted.calibrated_
    assert raw.metrics["accuracy"].value - truth["accuracy"] > 0.05  # trusting overconfident scores: too rosy
    assert abs(calibrated.metrics["accuracy"].value - truth["accuracy"]) < 0.03


def test_bad_multiclass_input_gets_a_clear_error() -> None:
    rng = np.random.default_rng(3)
    p = rng.dirichlet([1, 1, 1], size=200)
    label = p.argmax(axis=1)
    with pytest.raises(DataError, match=r"class indices in \[0, 3\)"):
        PerformanceEstimator().fit(p, label + 1)
    with pytest.raises(DataError, match="every reference label is of one class"):
        PerformanceEstimator().fit(p, np.zeros(200, dtype=int))
    with pytest.raises(DataError, match="calibration needs at least 100"):
        PerformanceEstimator().fit(p[:50], label[:50])
    fitted = PerformanceEstimator(draws=10).fit(p, label)
    with pytest.raises(DataError, match="4 probability columns; the estimator was fitted on 3 classes"):
        fitted.estimate(rng.dirichlet([1, 1, 1, 1], size=10))
    with pytest.raises(DataError, match=r"probabilities must lie in \[0, 1\]"):
        fitted.estimate(p * 2)
    frame = pl.DataFrame({"probability:a": p[:, 0], "probability:b": p[:, 1], "prediction": ["a"] * 200})
    with pytest.raises(DataError, match="no probability for 'probability:c'"):
        estimated_performance(fitted, frame, ["a", "b", "c"])
    labelled = frame.with_columns(pl.Series("probability:c", p[:, 2]), pl.Series("label", ["a", "z"] * 100))
    with pytest.raises(DataError, match="label 'z' is not one of the model's classes"):
        fit_estimator(labelled, ["a", "b", "c"])
