"""Metrics of a model on labelled rows, and which direction is better for each."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from loopline.core.errors import ConfigError, DataError, did_you_mean
from loopline.train._lazy import load

if TYPE_CHECKING:
    from types import ModuleType

TASKS = ("binary", "multiclass", "regression")

METRIC_DIRECTION: dict[str, bool] = {
    "accuracy": True,
    "f1": True,
    "f1_macro": True,
    "log_loss": False,
    "mae": False,
    "pr_auc": True,
    "r2": True,
    "rmse": False,
    "roc_auc": True,
}
"""True when a higher value of the metric is better."""


def compute_metrics(
    task: str,
    y_true: Any,
    prediction: Any,
    probability: Any = None,
    *,
    classes: Sequence[Any] | None = None,
) -> dict[str, float]:
    """Metrics for one task, as plain floats.

    binary: roc_auc, pr_auc, log_loss, f1, accuracy; multiclass: accuracy, f1_macro,
    log_loss; regression: rmse, mae, r2. ``probability`` is (n, k) in the order of
    ``classes`` (sorted labels when omitted). Probability metrics are left out when
    ``probability`` is None, and metrics undefined on the rows (AUC with one class
    present, r2 with fewer than two rows) are left out rather than reported as NaN.
    """
    skm = _sklearn_metrics()
    truth, predicted = np.asarray(y_true), np.asarray(prediction)
    if truth.shape[0] == 0:
        raise DataError("cannot compute metrics on zero rows.", hint="Score a non-empty table.")
    if task == "regression":
        return _regression(truth.astype(np.float64), predicted.astype(np.float64))
    if task not in TASKS:
        hint = did_you_mean(task, TASKS) or f"Use one of: {', '.join(TASKS)}."
        raise ConfigError(f"unknown task {task!r}.", key="task", hint=hint)
    labels = list(classes) if classes is not None else sorted(set(truth.tolist()) | set(predicted.tolist()))
    _check_labels(truth, labels)
    result = {"accuracy": float(skm.accuracy_score(truth, predicted))}
    proba = None if probability is None else np.asarray(probability, dtype=np.float64)
    if task == "binary":
        result.update(_binary(truth, predicted, proba, labels))
    else:
        result["f1_macro"] = float(skm.f1_score(truth, predicted, average="macro", labels=labels, zero_division=0))
    if proba is not None:
        result["log_loss"] = float(skm.log_loss(truth, _two_columns(proba), labels=labels))
    return dict(sorted(result.items()))


def _sklearn_metrics() -> ModuleType:
    module: ModuleType = load("sklearn.metrics")  # imported on use, to keep `import loopline.train` light
    return module


def _regression(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    skm = _sklearn_metrics()
    result = {
        "mae": float(skm.mean_absolute_error(truth, predicted)),
        "rmse": float(np.sqrt(skm.mean_squared_error(truth, predicted))),
    }
    if truth.shape[0] >= 2:
        result["r2"] = float(skm.r2_score(truth, predicted))
    return dict(sorted(result.items()))


def _binary(truth: np.ndarray, predicted: np.ndarray, proba: np.ndarray | None, labels: list[Any]) -> dict[str, float]:
    if len(labels) != 2:
        raise DataError(
            f"binary metrics need exactly two classes, got {len(labels)}: {labels[:5]}.",
            hint="Use task 'multiclass', or pass classes=[negative, positive].",
        )
    skm = _sklearn_metrics()
    positive = labels[1]
    result = {"f1": float(skm.f1_score(truth, predicted, pos_label=positive, labels=labels, zero_division=0))}
    is_positive = truth == positive
    if proba is not None and 0 < is_positive.sum() < is_positive.size:
        score = proba[:, 1] if proba.ndim == 2 else proba
        ranking: dict[str, Callable[..., Any]] = {
            "roc_auc": skm.roc_auc_score,
            "pr_auc": skm.average_precision_score,
        }
        result.update({name: float(fn(is_positive, score)) for name, fn in ranking.items()})
    return result


def _two_columns(proba: np.ndarray) -> np.ndarray:
    return np.column_stack([1.0 - proba, proba]) if proba.ndim == 1 else proba


def _check_labels(truth: np.ndarray, labels: list[Any]) -> None:
    unseen = sorted({str(v) for v in truth.tolist()} - {str(c) for c in labels})
    if unseen:
        raise DataError(
            f"target values {unseen[:5]} were not seen when the model was trained (classes: {labels[:10]}).",
            hint="Train on data that contains every class, or drop these rows before scoring.",
        )
