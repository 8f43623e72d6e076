"""Feature importance per input feature: permutation importance of the whole bundle on the validation split.

The fitted bundle (transform chain, preprocessor and estimator together) is scored as one model, so a feature
is an input column as the model takes it, whatever it expands into: a one-hot encoded column, an ordinal one
and a hashed text column each get one weight. scikit-learn's :func:`~sklearn.inspection.permutation_importance`
shuffles each column ``repeats`` times among at most ``rows`` validation rows (a sample seeded by the train
step's seed) and records the mean drop of the metric, in the metric's direction. The columns are shuffled as
row indices and gathered from the polars frame, so every column keeps its type (dates, text, categories).

The predictions run in the calling thread, under the train step's thread limit. The drops, clipped at 0 and
divided by their sum, are the weights the loop's drift trigger weighs drifted features by.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from loopline.bundle import METRIC_DIRECTION, ModelBundle, compute_metrics, target_values
from loopline.core.records import FeatureImportance

IMPORTANCE_ROWS = 2_000
"""Validation rows the permutation importance reads by default (a seeded sample of larger splits)."""

IMPORTANCE_REPEATS = 2
"""Shuffles per feature by default: each adds one prediction of ``rows`` rows per feature."""

AUTO_METRICS = {"binary": ("roc_auc", "log_loss"), "multiclass": ("log_loss", "accuracy"), "regression": ("rmse",)}
"""``metric: auto`` per task: the first one defined on the validation rows (AUC needs both classes)."""


def feature_importance(
    bundle: ModelBundle,
    valid: pl.DataFrame | None,
    features: Sequence[str],
    *,
    metric: str = "auto",
    rows: int = IMPORTANCE_ROWS,
    repeats: int = IMPORTANCE_REPEATS,
    seed: int = 0,
) -> FeatureImportance:
    """The permutation importance of each of ``features`` (input columns of ``bundle``) on ``valid``.

    ``valid`` holds the input columns and the bundle's target, as the train step received it. Skipped, with the
    reason in :attr:`FeatureImportance.skipped`, when there are no validation rows or ``metric`` is undefined
    on them (AUC on one class); weights are equal, with a ``note``, when no shuffle lowers the score.
    """
    started = time.perf_counter()
    if valid is None or valid.height == 0:
        return FeatureImportance(skipped="no validation rows to measure it on")
    sample = valid if valid.height <= rows else valid.sample(n=rows, seed=seed)
    truth = target_values(sample, bundle.target)
    frame = sample.select(features)
    baseline = compute_metrics(bundle.task, truth, **_predict(bundle, frame), classes=bundle.classes)
    chosen = _metric(bundle.task, metric, baseline)
    if chosen is None:
        known = ", ".join(sorted(baseline))
        return FeatureImportance(skipped=f"metric {metric!r} is not defined on the validation rows ({known} are)")
    drop, std = _permute(bundle, _Scorer(frame, chosen), truth, repeats, seed)
    weights, note = normalised(drop)
    return FeatureImportance(
        weights=weights,
        metric=chosen,
        baseline=baseline[chosen],
        rows=sample.height,
        repeats=repeats,
        drop=drop,
        std=std,
        seconds=time.perf_counter() - started,
        note=note.format(metric=chosen),
    )


def normalised(drop: dict[str, float]) -> tuple[dict[str, float], str]:
    """Weights from score drops: negatives clipped to 0, divided by their sum (all 0: equal weights, and a note
    saying so, with a ``{metric}`` placeholder)."""
    clipped = {name: max(value, 0.0) for name, value in drop.items()}
    total = sum(clipped.values())
    if total > 0:
        return {name: value / total for name, value in clipped.items()}, ""
    equal = 1.0 / len(drop) if drop else 0.0
    return dict.fromkeys(drop, equal), "shuffling no feature lowered {metric}: equal weights"


class _Scorer:
    """scikit-learn's scorer protocol over a matrix of row indices: column j of ``index`` says which row of
    input column j each scored row takes (shuffled for the column being permuted)."""

    def __init__(self, frame: pl.DataFrame, metric: str) -> None:
        self.frame = frame
        self.metric = metric

    def __call__(self, fitted: _Fitted, index: np.ndarray, truth: np.ndarray) -> float:
        bundle = fitted.bundle
        gathered = self.frame.select(
            pl.col(name).gather(index[:, position]) for position, name in enumerate(self.frame.columns)
        )
        out = _predict(bundle, gathered)
        direct = _direct(bundle, self.metric)
        if direct is not None:
            value = direct(truth, out)
        else:
            value = compute_metrics(bundle.task, truth, **out, classes=bundle.classes).get(self.metric, float("nan"))
        return value if METRIC_DIRECTION[self.metric] else -value


def _direct(bundle: ModelBundle, metric: str) -> Callable[[np.ndarray, dict[str, Any]], float] | None:
    """scikit-learn's function for a metric ``auto`` picks, called as :func:`compute_metrics` calls it, without
    the rest of the metric set (which costs more than the predictions of a cheap model); None for the others."""
    from sklearn import metrics as skm

    classes = bundle.classes or []
    if metric == "rmse" and bundle.task == "regression":
        return lambda truth, out: float(np.sqrt(skm.mean_squared_error(truth.astype(np.float64), out["prediction"])))
    if metric == "roc_auc" and bundle.task == "binary" and len(classes) == 2:
        return lambda truth, out: float(skm.roc_auc_score(truth == classes[1], out["probability"][:, 1]))
    if metric == "log_loss" and len(classes) >= 2:
        order = sorted(range(len(classes)), key=lambda i: classes[i])
        labels = [classes[i] for i in order]
        return lambda truth, out: float(skm.log_loss(truth, out["probability"][:, order], labels=labels))
    return None


class _Fitted:
    """The bundle as scikit-learn's inspection functions take a model: an object with ``fit`` (never called,
    the bundle is fitted; scikit-learn only checks that it is there)."""

    def __init__(self, bundle: ModelBundle) -> None:
        self.bundle = bundle

    def fit(self, *_: Any) -> _Fitted:
        return self


def _predict(bundle: ModelBundle, frame: pl.DataFrame) -> dict[str, Any]:
    out = bundle.predict_table(frame)
    return {"prediction": out["prediction"], "probability": out.get("probability")}


def _permute(
    bundle: ModelBundle, scorer: _Scorer, truth: np.ndarray, repeats: int, seed: int
) -> tuple[dict[str, float], dict[str, float]]:
    """The mean and standard deviation of each column's score drop over ``repeats`` shuffles."""
    from sklearn.inspection import permutation_importance

    names = scorer.frame.columns
    index = np.tile(np.arange(scorer.frame.height, dtype=np.int64)[:, None], (1, len(names)))
    result = permutation_importance(_Fitted(bundle), index, truth, scoring=scorer, n_repeats=repeats, random_state=seed)
    means, stds = result["importances_mean"], result["importances_std"]
    return (
        {name: float(value) for name, value in zip(names, means, strict=True)},
        {name: float(value) for name, value in zip(names, stds, strict=True)},
    )


def _metric(task: str, metric: str, baseline: dict[str, float]) -> str | None:
    """The metric to score by: ``metric`` itself, or ``auto``'s first one defined on the rows; None if none is."""
    candidates = AUTO_METRICS.get(task, ()) if metric == "auto" else (metric,)
    return next((name for name in candidates if name in baseline and np.isfinite(baseline[name])), None)
