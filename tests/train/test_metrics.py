from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from loopline.bundle._metrics import expected_calibration_error
from loopline.core.errors import ConfigError, DataError
from loopline.train import METRIC_DIRECTION, compute_metrics


def test_binary_metrics_use_the_second_class_as_positive() -> None:
    truth = np.array(["no", "yes", "yes", "no", "yes"])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9]])
    prediction = np.array(["no", "yes", "no", "yes", "yes"])
    got = compute_metrics("binary", truth, prediction, proba, classes=["no", "yes"])
    assert list(got) == ["accuracy", "ece", "f1", "log_loss", "pr_auc", "roc_auc"]
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(truth == "yes", proba[:, 1]))
    assert got["pr_auc"] == pytest.approx(skm.average_precision_score(truth == "yes", proba[:, 1]))
    assert got["f1"] == pytest.approx(skm.f1_score(truth, prediction, pos_label="yes"))
    assert got["accuracy"] == pytest.approx(0.6)
    assert got["log_loss"] == pytest.approx(skm.log_loss(truth == "yes", proba[:, 1]))
    assert all(type(v) is float for v in got.values())


def test_auc_is_left_out_when_one_class_is_present() -> None:
    got = compute_metrics("binary", [True, True], [True, False], [[0.2, 0.8], [0.6, 0.4]], classes=[False, True])
    assert "roc_auc" not in got and "pr_auc" not in got
    assert got["accuracy"] == 0.5 and "log_loss" in got


def test_multiclass_and_regression_metrics() -> None:
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    got = compute_metrics("multiclass", [0, 1, 1], [0, 1, 2], proba, classes=[0, 1, 2])
    assert list(got) == ["accuracy", "ece", "f1_macro", "log_loss"]  # class 2 never occurs: no AUC
    assert got["accuracy"] == pytest.approx(2 / 3)
    reg = compute_metrics("regression", [1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    expected = {"mae": 2 / 3, "mape": 2 / 9, "r2": skm.r2_score([1, 2, 3], [1, 2, 5]), "rmse": np.sqrt(4 / 3)}
    assert reg == pytest.approx(expected)
    assert list(reg) == ["mae", "mape", "r2", "rmse"]
    assert "log_loss" not in compute_metrics("multiclass", [0, 1], [0, 1])


def test_every_metric_has_a_direction() -> None:
    produced = {"accuracy", "ece", "f1", "log_loss", "pr_auc", "roc_auc", "f1_macro", "rmse", "mae", "mape", "r2"}
    assert set(METRIC_DIRECTION) == produced
    assert METRIC_DIRECTION["roc_auc"] and not METRIC_DIRECTION["log_loss"] and not METRIC_DIRECTION["rmse"]
    assert not METRIC_DIRECTION["ece"] and not METRIC_DIRECTION["mape"]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown task 'binry'.*Did you mean 'binary'"):
        compute_metrics("binry", [0], [0])
    with pytest.raises(DataError, match=r"target values \['cat'\] were not seen"):
        compute_metrics("multiclass", ["cat", "dog"], ["dog", "dog"], classes=["dog", "emu"])
    with pytest.raises(DataError, match="zero rows"):
        compute_metrics("regression", [], [])
    with pytest.raises(DataError, match="exactly two classes"):
        compute_metrics("binary", [0, 1, 2], [0, 1, 2])


def test_metrics_equal_scikit_learn_on_random_inputs() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 300)
    proba = rng.dirichlet([1.0, 1.0, 1.0], 300)
    prediction = proba.argmax(axis=1)
    got = compute_metrics("multiclass", truth, prediction, proba, classes=[0, 1, 2])
    assert list(got) == ["accuracy", "ece", "f1_macro", "log_loss", "roc_auc"]
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(truth, proba, multi_class="ovr", average="macro"))
    assert got["f1_macro"] == pytest.approx(skm.f1_score(truth, prediction, average="macro"))
    assert got["log_loss"] == pytest.approx(skm.log_loss(truth, proba))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(truth, prediction))
    y, p = rng.normal(size=200) + 5, rng.normal(size=200) + 5
    reg = compute_metrics("regression", y, p)
    assert reg["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert reg["mae"] == pytest.approx(skm.mean_absolute_error(y, p))
    assert reg["r2"] == pytest.approx(skm.r2_score(y, p))
    assert reg["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, p))
    assert all(type(v) is float for v in [*got.values(), *reg.values()])


def test_multiclass_auc_follows_the_given_class_order() -> None:
    rng = np.random.default_rng(1)
    truth = rng.choice(["b", "a", "c"], 100)
    proba = rng.dirichlet([1.0, 1.0, 1.0], 100)  # columns in the order c, a, b
    labels = np.array(["c", "a", "b"])
    got = compute_metrics("multiclass", truth, labels[proba.argmax(axis=1)], proba, classes=list(labels))
    expected = skm.roc_auc_score(truth, proba[:, [1, 2, 0]], multi_class="ovr", labels=["a", "b", "c"])
    assert got["roc_auc"] == pytest.approx(expected)


def test_ece_is_near_zero_when_calibrated_and_large_when_not() -> None:
    rng = np.random.default_rng(2)
    score = rng.random(200_000)
    calibrated = rng.random(score.size) < score  # a row with probability p is positive with chance p
    assert expected_calibration_error(calibrated, score) < 0.01
    overconfident = np.where(score > 0.5, 0.99, 0.01)  # same outcomes, claimed with near certainty
    assert expected_calibration_error(calibrated, overconfident) > 0.2
    # by hand: bins [0.1, 0.2) holds two rows (one right, p 0.15 each) and [0.9, 1] two (both right, p 0.95)
    assert expected_calibration_error([1, 0, 1, 1], [0.15, 0.15, 0.95, 1.0]) == pytest.approx(
        0.5 * abs(0.5 - 0.15) + 0.5 * abs(1.0 - 0.975)
    )
    binary = compute_metrics("binary", calibrated.astype(int), (score > 0.5).astype(int), score, classes=[0, 1])
    assert binary["ece"] < 0.01


def test_mape_skips_rows_whose_truth_is_zero() -> None:
    got = compute_metrics("regression", [0.0, 2.0, 4.0], [1.0, 1.0, 5.0])
    assert got["mape"] == pytest.approx((0.5 + 0.25) / 2)
    assert "mape" not in compute_metrics("regression", [0.0, 0.0], [1.0, 0.0])


def test_log_loss_follows_the_given_class_order() -> None:
    proba = np.array([[0.9, 0.1], [0.2, 0.8]])  # columns: yes, no
    got = compute_metrics("binary", ["yes", "no"], ["yes", "no"], proba, classes=["yes", "no"])
    assert got["log_loss"] == pytest.approx(-np.log([0.9, 0.8]).mean())
