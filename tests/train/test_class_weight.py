"""class_weight: balanced or {label: weight}, as an estimator parameter or as sample weights."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn.linear_model import LinearRegression

from loopline.core.errors import ConfigError
from loopline.train import TrainSpec, train_candidate
from loopline.train._class_weight import class_weights

ESTIMATORS = ["logistic_regression", "random_forest", "hist_gradient_boosting", "lightgbm", "xgboost"]


@pytest.fixture(scope="module")
def imbalanced() -> tuple[pl.DataFrame, pl.DataFrame]:
    """One positive row in ten, overlapping with the negatives."""
    rng = np.random.default_rng(5)
    n = 1000
    positive = rng.random(n) < 0.1
    frame = pl.DataFrame({"x": rng.normal(size=n) + positive * 1.0, "z": rng.normal(size=n), "y": positive})
    return frame[:800], frame[800:]


def _positive_rate(data: tuple[pl.DataFrame, pl.DataFrame], estimator: str, class_weight: Any) -> float:
    params = {"n_estimators": 20} if estimator in ("random_forest", "lightgbm", "xgboost") else {}
    result = train_candidate(
        *data,
        TrainSpec(
            target="y",
            numeric=["x", "z"],
            categorical=[],
            estimator=estimator,
            params=params,
            class_weight=class_weight,
        ),
    )
    return float(np.mean(result.bundle.predict_table(data[1])["prediction"]))


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_class_weight_changes_the_fitted_model(imbalanced: tuple[pl.DataFrame, pl.DataFrame], estimator: str) -> None:
    plain = _positive_rate(imbalanced, estimator, None)
    balanced = _positive_rate(imbalanced, estimator, "balanced")
    assert balanced > plain + 0.05  # the rare class is predicted far more often
    assert _positive_rate(imbalanced, estimator, {True: 9.0}) > plain + 0.05


def test_balanced_sample_weights_match_scikit_learn() -> None:
    from sklearn.utils.class_weight import compute_sample_weight

    y = np.array(["a", "b", "b", "c", "c", "c"], dtype=object)
    import xgboost

    params, weights = class_weights("balanced", "xgboost", xgboost.XGBClassifier, "multiclass", y, encoded=True)
    assert params == {}
    np.testing.assert_allclose(weights, compute_sample_weight("balanced", y))
    params, weights = class_weights({"C": 3, "a": 0.5}, "lightgbm", xgboost.XGBClassifier, "binary", y, encoded=True)
    np.testing.assert_array_equal(weights, [0.5, 1, 1, 3, 3, 3])


def test_bad_class_weights_are_refused() -> None:
    y = np.array([True, False, False])
    with pytest.raises(ConfigError, match="names 'maybe', which is not a class.*Classes: False, True"):
        class_weights({"maybe": 2.0}, "x", LinearRegression, "binary", y)
    with pytest.raises(ConfigError, match="must be > 0"):
        class_weights({"true": 0}, "x", LinearRegression, "binary", y)
    with pytest.raises(ConfigError, match="'balance' is not understood.*class_weight: balanced"):
        class_weights("balance", "x", LinearRegression, "binary", y)
    with pytest.raises(ConfigError, match="applies to classification"):
        class_weights("balanced", "ridge", LinearRegression, "regression", y)

    class NoWeights:
        def fit(self, x: Any, y: Any) -> None: ...

    with pytest.raises(ConfigError, match="'plugin' takes neither class_weight nor sample_weight"):
        class_weights("balanced", "plugin", NoWeights, "binary", y)
