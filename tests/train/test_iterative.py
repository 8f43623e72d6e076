"""Round-by-round training: early stopping on the validation split, time budgets, learning curves."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import log_loss

from loopline.core.errors import ConfigError
from loopline.train import TrainResult, train_candidate

BOOSTERS = ["lightgbm", "xgboost"]


@pytest.fixture(scope="module")
def easy() -> tuple[pl.DataFrame, pl.DataFrame]:
    """A target one feature decides, plus noise: a booster converges within a few dozen rounds."""
    rng = np.random.default_rng(3)
    n = 1200
    frame = pl.DataFrame({"x": rng.normal(size=n), "noise": rng.normal(size=n)})
    flip = rng.random(n) < 0.05
    frame = frame.with_columns(y=(pl.col("x") > 0) ^ pl.Series(flip))
    return frame[:900], frame[900:]


def _train(data: tuple[pl.DataFrame, pl.DataFrame], estimator: str, **options: Any) -> TrainResult:
    params = options.pop("params", {})
    return train_candidate(
        data[0],
        data[1],
        target="y",
        numeric=["x", "noise"],
        categorical=[],
        estimator=estimator,
        params=params,
        **options,
    )


@pytest.mark.parametrize("estimator", BOOSTERS)
def test_early_stopping_converges_before_max_iterations(
    easy: tuple[pl.DataFrame, pl.DataFrame], estimator: str
) -> None:
    result = _train(
        easy, estimator, params={"n_estimators": 1000, "learning_rate": 0.3}, early_stopping={"patience": 5}
    )
    log = result.training
    assert log["stopped"] == "converged" and log["max_iterations"] == 1000
    assert log["iterations"] < 1000
    assert log["iterations"] == log["best_iteration"] + 5  # the best round, then `patience` rounds without gain
    assert len(log["learning_curve"]["valid"]) == len(log["learning_curve"]["train"]) == log["iterations"]
    assert log["metric"] in ("binary_logloss", "logloss")
    valid = log["learning_curve"]["valid"]
    assert min(valid) == valid[log["best_iteration"] - 1] and min(valid) < valid[0]
    assert result.bundle.metadata["training"] == log
    assert result.bundle.metadata["fit_options"]["early_stopping"] == {"patience": 5, "metric": "auto"}


@pytest.mark.parametrize("estimator", BOOSTERS)
def test_max_iterations_when_patience_is_never_hit(easy: tuple[pl.DataFrame, pl.DataFrame], estimator: str) -> None:
    result = _train(easy, estimator, params={"n_estimators": 15, "learning_rate": 0.05}, early_stopping={})
    log = result.training
    assert log["stopped"] == "max_iterations"
    assert log["iterations"] == 15 and len(log["learning_curve"]["valid"]) == 15


@pytest.mark.parametrize("estimator", BOOSTERS)
def test_a_tiny_time_budget_stops_training(easy: tuple[pl.DataFrame, pl.DataFrame], estimator: str) -> None:
    result = _train(easy, estimator, params={"n_estimators": 5000, "learning_rate": 0.01}, time_budget_s=1e-6)
    log = result.training
    assert log["stopped"] == "time_budget"
    assert log["iterations"] == log["best_iteration"] == 1 == len(log["learning_curve"]["valid"])
    assert result.bundle.predict_table(easy[1])["probability"].shape == (300, 2)


@pytest.mark.parametrize("estimator", BOOSTERS)
def test_without_options_the_curve_is_still_recorded(easy: tuple[pl.DataFrame, pl.DataFrame], estimator: str) -> None:
    log = _train(easy, estimator, params={"n_estimators": 12}).training
    assert log["stopped"] == "max_iterations" and log["best_iteration"] == 12
    assert len(log["learning_curve"]["train"]) == 12
    assert log["learning_curve"]["train"][-1] < log["learning_curve"]["train"][0]


def test_a_chosen_metric_is_watched(easy: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    log = _train(easy, "lightgbm", params={"n_estimators": 300}, early_stopping={"patience": 10, "metric": "auc"})
    assert log.training["metric"] == "auc"
    valid = log.training["learning_curve"]["valid"]
    assert max(valid) == valid[log.training["best_iteration"] - 1]


def test_hist_gradient_boosting_watches_the_validation_split(easy: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    result = _train(
        easy, "hist_gradient_boosting", params={"max_iter": 500, "learning_rate": 0.3}, early_stopping={"patience": 5}
    )
    log = result.training
    assert log["stopped"] == "converged" and log["iterations"] < 500 and log["metric"] == "loss"
    assert len(log["learning_curve"]["valid"]) == log["iterations"]
    valid = easy[1]
    final = log_loss(valid["y"].to_numpy(), result.bundle.predict_table(valid)["probability"][:, 1])
    assert log["learning_curve"]["valid"][-1] == pytest.approx(final)  # watched on the given split, not a fraction


def test_estimators_that_cannot_are_refused(easy: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    with pytest.raises(ConfigError, match="'random_forest' does not train in rounds.*early_stopping"):
        _train(easy, "random_forest", early_stopping={"patience": 3})
    with pytest.raises(ConfigError, match="time_budget_s is not supported by 'hist_gradient_boosting'"):
        _train(easy, "hist_gradient_boosting", time_budget_s=5.0)
    with pytest.raises(ConfigError, match="unknown early_stopping option 'patient'.*Did you mean 'patience'"):
        _train(easy, "lightgbm", early_stopping={"patient": 3})
    with pytest.raises(ConfigError, match="metric 'rmse' does not apply to task 'binary'.*logloss"):
        _train(easy, "lightgbm", early_stopping={"metric": "rmse"})
    with pytest.raises(ConfigError, match="patience must be a whole number"):
        _train(easy, "xgboost", early_stopping={"patience": 0})


@pytest.mark.parametrize("estimator", ["lightgbm", "xgboost", "hist_gradient_boosting", "random_forest"])
def test_same_config_data_and_seed_give_the_same_metrics(
    halves: tuple[pl.DataFrame, pl.DataFrame], estimator: str
) -> None:
    def train() -> TrainResult:
        return train_candidate(
            *halves,
            target="species",
            numeric=["bill_length_mm", "bill_depth_mm", "flipper_length_mm"],
            categorical=["island"],
            estimator=estimator,
            params={"max_iter": 50} if estimator == "hist_gradient_boosting" else {"n_estimators": 50},
            early_stopping={"patience": 5} if estimator != "random_forest" else None,
            seed=13,
        )

    first, second = train(), train()
    assert first.metrics == second.metrics
    assert first.training["learning_curve"] == second.training["learning_curve"]
    np.testing.assert_array_equal(
        first.bundle.predict_table(halves[1])["probability"], second.bundle.predict_table(halves[1])["probability"]
    )


def test_hist_gradient_boosting_before_scikit_learn_1_6_is_told_to_upgrade(
    easy: tuple[pl.DataFrame, pl.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    def old_fit(self: Any, X: Any, y: Any, sample_weight: Any = None) -> Any:
        raise AssertionError("not reached")

    monkeypatch.setattr(HistGradientBoostingClassifier, "fit", old_fit)
    with pytest.raises(ConfigError, match=r"needs scikit-learn 1.6.*pip install -U 'scikit-learn>=1.6'"):
        _train(easy, "hist_gradient_boosting", early_stopping={"patience": 3})
