"""Metrics of a model on labelled rows, and which direction is better for each."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from loopline.bundle._lazy import load
from loopline.core.errors import ConfigError, DataError, did_you_mean

if TYPE_CHECKING:
    from types import ModuleType

TASKS = ("binary", "multiclass", "regression")

ECE_BINS = 10
"""Equal-width probability bins of the expected calibration error."""

METRIC_DIRECTION: dict[str, bool] = {
    "accuracy": True,
    "ece": False,
    "f1": True,
    "f1_macro": True,
    "log_loss": False,
    "mae": False,
    "mape": False,
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
    """Metrics for one task, as plain floats under sorted keys.

    binary: roc_auc, pr_auc, log_loss, f1, accuracy, ece; multiclass: accuracy,
    f1_macro, log_loss, roc_auc (one-vs-rest, macro-averaged), ece; regression:
    rmse, mae, r2, mape. ``probability`` is (n, k) in the order of ``classes``
    (sorted labels when omitted; a binary one may be the positive column alone).

    ``ece`` is the expected calibration error over ``ECE_BINS`` equal-width bins
    of [0, 1] (the last one closed): the row-weighted mean of |observed rate -
    mean probability| per bin; binary uses the positive class's probability and
    whether the row is positive, multiclass the top class's probability and
    whether the top class is right. 0 is perfectly calibrated, 1 the worst.
    ``mape`` is mean(|truth - prediction| / |truth|) as a fraction, over the rows
    whose truth is not zero (a percentage error there is undefined); it is left
    out when every truth is zero.

    Probability metrics are left out when ``probability`` is None, and metrics
    undefined on the rows are left out rather than reported as NaN: AUC with one
    class present (multiclass: any class absent, or rows that do not sum to 1),
    r2 with fewer than two rows.
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
            result.update(_multiclass_proba(truth, proba, labels))
    if proba is not None:
        ordered_proba, ordered_labels = _sorted_classes(_two_columns(proba), labels)
        result["log_loss"] = float(skm.log_loss(truth, ordered_proba, labels=ordered_labels))
    return dict(sorted(result.items()))


def expected_calibration_error(correct: Any, confidence: Any, bins: int = ECE_BINS) -> float:
    """Expected calibration error of ``confidence`` (probabilities) against ``correct`` (0/1 outcomes).

    The rows fall into ``bins`` equal-width bins of [0, 1] (the last closed); the
    result is the sum over bins of (rows in bin / rows) * |mean outcome - mean confidence|.
    """
    outcome, score = np.asarray(correct, dtype=np.float64), np.asarray(confidence, dtype=np.float64)
    which = np.clip((score * bins).astype(np.int64), 0, bins - 1)
    gaps = np.abs(np.bincount(which, outcome, minlength=bins) - np.bincount(which, score, minlength=bins))
    return float(gaps.sum() / outcome.size)


def _sklearn_metrics() -> ModuleType:
    module: ModuleType = load("sklearn.metrics")  # imported on use, to keep `import loopline.bundle` light
    return module


def _regression(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    skm = _sklearn_metrics()
    result = {
        "mae": float(skm.mean_absolute_error(truth, predicted)),
        "rmse": float(np.sqrt(skm.mean_squared_error(truth, predicted))),
    }
    if truth.shape[0] >= 2:
        result["r2"] = float(skm.r2_score(truth, predicted))
    nonzero = truth != 0
    if nonzero.any():
        result["mape"] = float(np.mean(np.abs(truth[nonzero] - predicted[nonzero]) / np.abs(truth[nonzero])))
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
    score = None if proba is None else proba[:, 1] if proba.ndim == 2 else proba
    if score is not None:
        result["ece"] = expected_calibration_error(is_positive, score)
    if score is not None and 0 < is_positive.sum() < is_positive.size:
        ranking: dict[str, Callable[..., Any]] = {
            "roc_auc": skm.roc_auc_score,
            "pr_auc": skm.average_precision_score,
        }
        result.update({name: float(fn(is_positive, score)) for name, fn in ranking.items()})
    return result


def _multiclass_proba(truth: np.ndarray, proba: np.ndarray, labels: list[Any]) -> dict[str, float]:
    correct = np.asarray(labels, dtype=object)[proba.argmax(axis=1)] == truth.astype(object)
    result = {"ece": expected_calibration_error(correct.astype(bool), proba.max(axis=1))}
    if len(labels) > 2 and set(labels) <= set(truth.tolist()) and np.allclose(proba.sum(axis=1), 1.0):
        sorted_proba, sorted_labels = _sorted_classes(proba, labels)
        skm = _sklearn_metrics()
        auc = skm.roc_auc_score(truth, sorted_proba, multi_class="ovr", average="macro", labels=sorted_labels)
        result["roc_auc"] = float(auc)
    return result


def _sorted_classes(proba: np.ndarray, labels: list[Any]) -> tuple[np.ndarray, list[Any]]:
    """Probability columns and labels in sorted label order, the order scikit-learn's metrics assume."""
    order = sorted(range(len(labels)), key=lambda i: labels[i])
    return proba[:, order], [labels[i] for i in order]


def _two_columns(proba: np.ndarray) -> np.ndarray:
    return np.column_stack([1.0 - proba, proba]) if proba.ndim == 1 else proba


def _check_labels(truth: np.ndarray, labels: list[Any]) -> None:
    unseen = sorted({str(v) for v in truth.tolist()} - {str(c) for c in labels})
    if unseen:
        raise DataError(
            f"target values {unseen[:5]} were not seen when the model was trained (classes: {labels[:10]}).",
            hint="Train on data that contains every class, or drop these rows before scoring.",
        )
