"""Feature importance per input feature, measured at training time on the validation split."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from loopline.core.errors import ConfigError
from loopline.train import TrainSpec, feature_importance, train_candidate
from loopline.train._importance import normalised

WORDS = ["storm", "sunny", "calm", "windy", "rain", "fog"]


def table(rows: int, seed: int) -> pl.DataFrame:
    """``y`` depends on ``strong`` a lot, on ``weak`` a little and on ``useless`` not at all; ``city`` (a
    category) and ``note`` (a text) matter through a word or a value."""
    rng = np.random.default_rng(seed)
    strong, weak, useless = rng.normal(size=(3, rows))
    city = rng.choice(["paris", "oslo", "rome", "lima"], rows)
    note = [" ".join(rng.choice(WORDS, 3)) for _ in range(rows)]
    stormy = np.array(["storm" in text for text in note])
    y = 3.0 * strong + 0.6 * weak + 1.5 * (city == "oslo") + 2.0 * stormy + rng.normal(scale=0.3, size=rows)
    return pl.DataFrame({"strong": strong, "weak": weak, "useless": useless, "city": city, "note": note, "y": y})


def fit(data: pl.DataFrame, **options: Any) -> Any:
    numeric = ["strong", "weak", "useless"]
    spec = {"target": "y", "numeric": numeric, "estimator": "hist_gradient_boosting_regressor", **options}
    return train_candidate(data[:1500], data[1500:], TrainSpec(**spec))


@pytest.fixture(scope="module")
def data() -> pl.DataFrame:
    return table(2100, 0)


def test_weights_follow_how_much_the_target_depends_on_each_feature(data: pl.DataFrame) -> None:
    importance = fit(data).importance
    weights = importance.weights
    assert set(weights) == {"strong", "weak", "useless"}
    assert weights["strong"] > weights["weak"] > weights["useless"]
    assert weights["useless"] < 0.01 and weights["weak"] > 0.01
    assert sum(weights.values()) == pytest.approx(1.0) and min(weights.values()) >= 0
    assert importance.metric == "rmse" and importance.method == "permutation"
    assert importance.rows == 600 and importance.repeats == 2 and importance.skipped is None
    assert importance.drop["strong"] > importance.drop["weak"] > 0  # rmse: a drop is a rise, in its direction
    assert importance.seconds > 0


def test_weights_are_per_input_column_whatever_the_encoding(data: pl.DataFrame) -> None:
    """One-hot (the preprocessor's and a transform's), ordinal and hashed text: one weight per input column."""
    features = {"strong", "weak", "useless", "city", "note"}
    chain = [{"type": "onehot", "columns": ["city"]}, {"type": "hashing", "columns": ["note"], "n_buckets": 16}]
    for options in (
        {"categorical": ["city", "note"]},
        {"categorical": ["city", "note"], "prep": {"encode": "ordinal"}},
        {"categorical": ["city", "note"], "transforms": chain},
    ):
        result = fit(data, **options)
        weights = result.importance.weights
        assert set(weights) == features, options
        assert result.importance.ranked()[0][0] == "strong", options
        assert weights["city"] > 0.02 and weights["useless"] < 0.01, options
        if "transforms" in options:  # the hashed words are one feature, and the storm word in it matters
            assert weights["note"] > 0.02
            assert not any(name.startswith("note_hash") for name in weights)


def test_classification_scores_by_auc_and_the_row_cap_holds() -> None:
    data = table(3000, 1).with_columns((pl.col("y") > 0.5).alias("y"))
    importance = fit(data, estimator="hist_gradient_boosting", importance_rows=400, importance_repeats=2).importance
    assert importance.metric == "roc_auc" and importance.rows == 400 and importance.repeats == 2
    assert importance.ranked()[0][0] == "strong" and importance.weights["useless"] < 0.02
    assert 0.5 < importance.baseline <= 1


def test_importance_can_be_turned_off(data: pl.DataFrame) -> None:
    result = fit(data, importance=False)
    assert result.importance is None
    assert result.report(TrainSpec(target="y", numeric=["strong"], estimator="ridge")).importance is None


def test_no_validation_rows_skip_it_with_a_reason(data: pl.DataFrame) -> None:
    bundle = fit(data, importance=False).bundle
    for valid in (None, data.clear()):
        skipped = feature_importance(bundle, valid, ["strong", "weak", "useless"])
        assert skipped.skipped == "no validation rows to measure it on"
        assert skipped.weights == {} and skipped.ranked() == []


def test_a_metric_undefined_on_the_rows_skips_it_with_a_reason() -> None:
    data = table(1700, 2).with_columns((pl.col("y") > 0.5).alias("y"))
    bundle = fit(data, estimator="logistic_regression", importance=False).bundle
    one_class = data.filter(pl.col("y"))
    features = ["strong", "weak", "useless"]
    skipped = feature_importance(bundle, one_class, features, metric="roc_auc")
    assert skipped.skipped is not None and "metric 'roc_auc' is not defined on the validation rows" in skipped.skipped
    auto = feature_importance(bundle, one_class, features)  # auto falls back to log loss
    assert auto.metric == "log_loss" and auto.skipped is None
    wrong_task = feature_importance(bundle, data, features, metric="rmse")
    assert wrong_task.skipped is not None and "accuracy" in wrong_task.skipped


def test_normalised_weights_clip_negatives_and_fall_back_to_equal_weights() -> None:
    weights, note = normalised({"a": 0.3, "b": 0.1, "c": -0.05})
    assert weights == pytest.approx({"a": 0.75, "b": 0.25, "c": 0.0}) and note == ""
    equal, note = normalised({"a": 0.0, "b": -0.2})
    assert equal == {"a": 0.5, "b": 0.5} and "equal weights" in note


def test_a_model_no_shuffle_hurts_gets_equal_weights_and_says_so() -> None:
    rng = np.random.default_rng(3)
    noise = pl.DataFrame({"strong": rng.normal(size=600), "weak": rng.normal(size=600), "y": rng.normal(size=600)})
    spec = TrainSpec(target="y", numeric=["strong", "weak"], estimator="sklearn.dummy:DummyRegressor")
    importance = train_candidate(noise[:400], noise[400:], spec).importance
    assert importance.weights == {"strong": 0.5, "weak": 0.5}
    assert importance.note == "shuffling no feature lowered rmse: equal weights"


def test_the_importance_keys_are_validated() -> None:
    base = {"target": "y", "numeric": ["x"], "estimator": "ridge"}
    with pytest.raises(ConfigError, match="importance_rows") as caught:
        TrainSpec.parse({**base, "importance_row": 100}, where="steps.fit")
    assert "importance_rows" in (caught.value.hint or "")
    with pytest.raises(ConfigError, match="unknown metric 'rocauc'") as metric:
        TrainSpec.parse({**base, "importance_metric": "rocauc"}, where="steps.fit")
    assert metric.value.key == "steps.fit.importance_metric" and "roc_auc" in (metric.value.hint or "")
    for bad in ({"importance_rows": 5}, {"importance_repeats": 0}, {"importance": "sometimes"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            TrainSpec.parse({**base, **bad}, where="steps.fit")


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_the_shuffled_scores_are_the_models_own_metrics(data: pl.DataFrame, task: str) -> None:
    """The metric ``auto`` picks is computed straight by scikit-learn; it equals the model's own metric."""
    from loopline.train._importance import _Fitted, _Scorer

    y = pl.col("y")
    three = pl.when(y < -1).then(pl.lit("low")).when(y > 1).then(pl.lit("high")).otherwise(pl.lit("mid"))
    labels = {"binary": y > 0.5, "multiclass": three}
    labelled = data.with_columns(labels[task].alias("y")) if task in labels else data
    estimator = "hist_gradient_boosting_regressor" if task == "regression" else "logistic_regression"
    bundle = fit(labelled, estimator=estimator, importance=False).bundle
    valid = labelled[1500:]
    own = bundle.evaluate(valid)
    frame = valid.select(["strong", "weak", "useless"])
    identity = np.tile(np.arange(frame.height)[:, None], (1, 3))
    truth = valid["y"].to_numpy()
    for metric in {"binary": ("roc_auc", "log_loss"), "multiclass": ("log_loss",), "regression": ("rmse",)}[task]:
        score = _Scorer(frame, metric)(_Fitted(bundle), identity, truth)
        assert abs(score) == pytest.approx(own[metric], rel=1e-12), metric
