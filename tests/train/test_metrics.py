from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from loopline.core.errors import ConfigError, DataError
from loopline.train import METRIC_DIRECTION, compute_metrics


def test_binary_metrics_use_the_second_class_as_positive() -> None:
    truth = np.array(["no", "yes", "yes", "no", "yes"])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9]])
    prediction = np.array(["no", "yes", "no", "yes", "yes"])
    got = compute_metrics("binary", truth, prediction, proba, classes=["no", "yes"])
    assert list(got) == ["accuracy", "f1", "log_loss", "pr_auc", "roc_auc"]
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(truth == "yes", proba[:, 1]))
    assert got["pr_auc"] == pytest.approx(skm.average_precision_score(truth == "yes", proba[:, 1]))
    assert got["f1"] == pytest.approx(skm.f1_score(truth, prediction, pos_label="yes"))
    assert got["accuracy"] == pytest.approx(0.6)
    assert all(type(v) is float for v in got.values())


def test_auc_is_left_out_when_one_class_is_present() -> None:
    got = compute_metrics("binary", [True, True], [True, False], [[0.2, 0.8], [0.6, 0.4]], classes=[False, True])
    assert "roc_auc" not in got and "pr_auc" not in got
    assert got["accuracy"] == 0.5 and "log_loss" in got


def test_multiclass_and_regression_metrics() -> None:
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    got = compute_metrics("multiclass", [0, 1, 1], [0, 1, 2], proba, classes=[0, 1, 2])
    assert list(got) == ["accuracy", "f1_macro", "log_loss"]
    assert got["accuracy"] == pytest.approx(2 / 3)
    reg = compute_metrics("regression", [1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    assert reg == pytest.approx({"mae": 2 / 3, "r2": skm.r2_score([1, 2, 3], [1, 2, 5]), "rmse": np.sqrt(4 / 3)})
    assert "log_loss" not in compute_metrics("multiclass", [0, 1], [0, 1])


def test_every_metric_has_a_direction() -> None:
    produced = {"accuracy", "f1", "log_loss", "pr_auc", "roc_auc", "f1_macro", "rmse", "mae", "r2"}
    assert set(METRIC_DIRECTION) == produced
    assert METRIC_DIRECTION["roc_auc"] and not METRIC_DIRECTION["log_loss"] and not METRIC_DIRECTION["rmse"]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown task 'binry'.*Did you mean 'binary'"):
        compute_metrics("binry", [0], [0])
    with pytest.raises(DataError, match=r"target values \['cat'\] were not seen"):
        compute_metrics("multiclass", ["cat", "dog"], ["dog", "dog"], classes=["dog", "emu"])
    with pytest.raises(DataError, match="zero rows"):
        compute_metrics("regression", [], [])
    with pytest.raises(DataError, match="exactly two classes"):
        compute_metrics("binary", [0, 1, 2], [0, 1, 2])
