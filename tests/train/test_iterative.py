"""Round-by-round training: early stopping on the validation split, time budgets, learning curves."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import log_loss

from loopline.core.errors import ConfigError
from loopline.train import TrainResult, TrainSpec, train_candidate

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
        TrainSpec.parse(
            {"target": "y", "numeric": ["x", "noise"], "estimator": estimator, "params": params, **options}
        ),
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
def test_asked_for_without_early_stopping_the_curve_is_recorded(
    easy: tuple[pl.DataFrame, pl.DataFrame], estimator: str
) -> None:
    log = _train(easy, estimator, params={"n_estimators": 12}, learning_curve=True).training
    assert log["stopped"] == "max_iterations" and log["best_iteration"] == 12 and log["watched"] == "valid"
    assert len(log["learning_curve"]["train"]) == len(log["learning_curve"]["valid"]) == 12
    assert log["learning_curve"]["train"][-1] < log["learning_curve"]["train"][0]


@pytest.mark.parametrize("estimator", BOOSTERS)
def test_without_options_the_fit_is_the_bare_fit(easy: tuple[pl.DataFrame, pl.DataFrame], estimator: str) -> None:
    """No per-round scoring unasked: the same model as the library's own fit, rounds counted, no curve."""
    result = _train(easy, estimator, params={"n_estimators": 12})
    log = result.training
    assert (log["stopped"], log["iterations"], log["best_iteration"], log["learning_curve"]) == (
        "max_iterations",
        12,
        12,
        None,
    )
    watched = _train(easy, estimator, params={"n_estimators": 12}, learning_curve=True)
    np.testing.assert_array_equal(
        result.bundle.predict_table(easy[1])["probability"], watched.bundle.predict_table(easy[1])["probability"]
    )


def test_train_metrics_and_curve_use_a_seeded_sample_of_training_rows(
    easy: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    train = easy[0]
    sampled = _train(easy, "lightgbm", params={"n_estimators": 20}, learning_curve=True, train_metrics_rows=300)
    full = _train(easy, "lightgbm", params={"n_estimators": 20}, learning_curve=True, train_metrics_rows=None)
    assert sampled.training["train_metrics_rows"] == 300 and full.training["train_metrics_rows"] == train.height
    assert sampled.metrics["valid"] == full.metrics["valid"]  # validation always scores every row
    truth = train["y"].to_numpy()
    probability = full.bundle.predict_table(train)["probability"][:, 1]
    assert full.metrics["train"]["log_loss"] == pytest.approx(log_loss(truth, probability))
    rows = np.sort(np.random.default_rng(0).choice(train.height, size=300, replace=False))
    assert sampled.metrics["train"]["log_loss"] == pytest.approx(log_loss(truth[rows], probability[rows]))
    assert sampled.training["learning_curve"]["train"][-1] == pytest.approx(log_loss(truth[rows], probability[rows]))
    with pytest.raises(ConfigError, match=r"'train_metrics_rows': Input should be greater than or equal to 1"):
        _train(easy, "lightgbm", train_metrics_rows=0)


def test_hist_gradient_boosting_records_its_internal_holdout_curve() -> None:
    rng = np.random.default_rng(5)
    n = 12_500  # above 10,000 rows scikit-learn early-stops on its own 10% holdout by default
    frame = pl.DataFrame({"x": rng.normal(size=n), "noise": rng.normal(size=n)})
    frame = frame.with_columns(y=pl.col("x") + pl.col("noise") > 0)
    log = _train((frame[:12_000], frame[12_000:]), "hist_gradient_boosting", params={"max_iter": 30}).training
    assert log["watched"] == "internal_holdout" and log["metric"] == "loss"
    assert len(log["learning_curve"]["valid"]) == len(log["learning_curve"]["train"]) == log["iterations"]


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
    with pytest.raises(ConfigError, match="unknown key 'early_stopping.patient'.*Did you mean 'patience'"):
        _train(easy, "lightgbm", early_stopping={"patient": 3})
    with pytest.raises(ConfigError, match="metric 'rmse' does not apply to task 'binary'.*logloss"):
        _train(easy, "lightgbm", early_stopping={"metric": "rmse"})
    with pytest.raises(ConfigError, match=r"'early_stopping.patience': Input should be greater than or equal to 1"):
        _train(easy, "xgboost", early_stopping={"patience": 0})


@pytest.mark.parametrize("estimator", ["lightgbm", "xgboost", "hist_gradient_boosting", "random_forest"])
def test_same_config_data_and_seed_give_the_same_metrics(
    halves: tuple[pl.DataFrame, pl.DataFrame], estimator: str
) -> None:
    def train() -> TrainResult:
        return train_candidate(
            *halves,
            TrainSpec(
                target="species",
                numeric=["bill_length_mm", "bill_depth_mm", "flipper_length_mm"],
                categorical=["island"],
                estimator=estimator,
                params={"max_iter": 50} if estimator == "hist_gradient_boosting" else {"n_estimators": 50},
                early_stopping={"patience": 5} if estimator != "random_forest" else None,
                seed=13,
            ),
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
