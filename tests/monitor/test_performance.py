from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import accuracy_score, mean_absolute_error, roc_auc_score

from loopline.core.errors import DataError
from loopline.monitor import estimated_performance, fit_estimator, realised_performance
from loopline.monitor._performance import MIN_LABELS


def window(rows: int, labelled: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.random(rows)
    y = rng.random(rows) < p
    label = [bool(v) if i < labelled else None for i, v in enumerate(y)]
    return pl.DataFrame(
        {
            "city": rng.choice(["a", "b"], rows),
            "prediction": p >= 0.5,
            "probability:False": 1 - p,
            "probability:True": p,
            "label": label,
        }
    )


def test_metrics_are_the_bundles_on_the_labelled_rows_with_coverage() -> None:
    frame = window(400, 300)
    result = realised_performance(frame, "binary", [False, True])
    overall = result.overall
    assert (overall.predicted, overall.labelled, overall.coverage, overall.status) == (400, 300, 0.75, "ok")
    head = frame.head(300)
    y = np.array(head["label"].to_list())
    assert overall.metrics["accuracy"] == pytest.approx(accuracy_score(y, head["prediction"].to_numpy()))
    assert overall.metrics["roc_auc"] == pytest.approx(roc_auc_score(y, head["probability:True"].to_numpy()))
    assert {"f1", "log_loss", "pr_auc", "ece"} <= set(overall.metrics)


def test_too_few_labels_give_no_number() -> None:
    result = realised_performance(window(400, MIN_LABELS - 1), "binary", [False, True])
    assert result.overall.status == "not_enough_labels" and result.overall.metrics == {}
    assert result.overall.labelled == MIN_LABELS - 1
    empty = realised_performance(window(0, 0), "binary", [False, True]).overall
    assert (empty.predicted, empty.coverage, empty.status) == (0, None, "not_enough_labels")


def test_slices_have_their_own_figures_and_threshold() -> None:
    frame = window(200, 200)
    result = realised_performance(frame, "binary", [False, True], slice_by=["city"], min_labels=10)
    by_city = {s.value: s.figures for s in result.slices}
    assert set(by_city) == {"a", "b"} and all(s.column == "city" for s in result.slices)
    assert sum(f.predicted for f in by_city.values()) == 200
    part = frame.filter(pl.col("city") == "a")
    assert by_city["a"].metrics["accuracy"] == pytest.approx(
        accuracy_score(part["label"].to_list(), part["prediction"].to_list())
    )


def test_regression_and_multiclass() -> None:
    reg = pl.DataFrame({"prediction": [1.0, 2.0, 3.0] * 20, "label": [1.5, 2.0, None] * 20})
    figures = realised_performance(reg, "regression", min_labels=5).overall
    assert figures.labelled == 40
    assert figures.metrics["mae"] == pytest.approx(mean_absolute_error([1.5, 2.0] * 20, [1.0, 2.0] * 20))
    multi = pl.DataFrame({"prediction": ["a", "b", "c"] * 20, "label": ["a", "b", "b"] * 20})
    assert realised_performance(multi, "multiclass", ["a", "b", "c"], min_labels=5).overall.metrics["accuracy"] == (
        pytest.approx(2 / 3)
    )


def test_missing_columns_and_bad_thresholds_are_refused() -> None:
    with pytest.raises(DataError, match="column 'label' is not in the predictions frame"):
        realised_performance(pl.DataFrame({"prediction": [1]}), "regression")
    with pytest.raises(DataError, match="column 'town' is not in"):
        realised_performance(window(10, 10), "binary", [False, True], slice_by=["town"])
    with pytest.raises(DataError, match="min_labels is 0"):
        realised_performance(window(10, 10), "binary", [False, True], min_labels=0)


def calibrated_window(rows: int, seed: int, shift: float = 0.0, labelled: int | None = None) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=shift, size=rows)
    p = 1 / (1 + np.exp(-(2 * x - 0.5)))
    y = rng.random(rows) < p
    keep = rows if labelled is None else labelled
    return pl.DataFrame(
        {
            "prediction": p >= 0.5,
            "probability:False": 1 - p,
            "probability:True": p,
            "label": [bool(v) if i < keep else None for i, v in enumerate(y)],
        }
    )


def test_estimated_performance_of_an_unlabelled_window_matches_what_its_labels_later_show() -> None:
    estimator = fit_estimator(calibrated_window(4_000, 1), [False, True], draws=100)
    later = calibrated_window(3_000, 2, shift=0.5)
    estimate = estimated_performance(estimator, later.with_columns(pl.lit(None).alias("label")), [False, True])
    realised = realised_performance(later, "binary", [False, True]).overall.metrics
    assert estimate.rows == 3_000
    for name in ("accuracy", "f1", "roc_auc"):
        assert estimate.metrics[name].value == pytest.approx(realised[name], abs=0.03)


def test_estimation_is_for_classifiers_with_probabilities() -> None:
    with pytest.raises(DataError, match="no probability for 'probability:a' \\(of 3 classes\\)"):
        fit_estimator(pl.DataFrame({"label": ["a"]}), ["a", "b", "c"])  # multi-class: every class's probability
    with pytest.raises(DataError, match="needs a binary classifier; this model has 1 classes"):
        fit_estimator(pl.DataFrame({"label": ["a"]}), ["a"])
    with pytest.raises(DataError, match="no probability of the positive class True"):
        fit_estimator(pl.DataFrame({"label": [True], "prediction": [True]}), [False, True])
