"""Realised performance: the model's metrics on the predictions of a window that have a label.

The frame is what :meth:`loopline.store.FeedbackRepository.labelled` gives: ``prediction``, ``label`` (null
where none arrived), ``probability:{class}`` columns for a classifier, and the logged inputs (to slice by).
The metrics are the bundle's own (:func:`loopline.bundle.compute_metrics`), so a window reads like training.
With fewer than ``min_labels`` labelled rows the figures carry no metrics and say ``not_enough_labels``: a
number from a handful of labels would mislead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from loopline.bundle import compute_metrics
from loopline.core.errors import DataError
from loopline.monitor._estimation import EstimatedPerformance, PerformanceEstimator

PROBABILITY_PREFIX = "probability:"
MIN_LABELS = 30
"""Labelled rows below which no metric is reported (per window, and per slice)."""

ENOUGH = "ok"
NOT_ENOUGH = "not_enough_labels"


@dataclass(frozen=True)
class PerformanceFigures:
    """Realised metrics of one set of predictions: ``labelled`` of ``predicted`` have a label (``coverage``
    is their ratio, None without predictions); ``metrics`` is empty unless ``status`` is ``"ok"``.
    ``positives``: the labelled rows of a binary model's positive class (its second class; None for other
    tasks), what the sampling error of a score such as ROC AUC is computed from."""

    predicted: int
    labelled: int
    coverage: float | None
    metrics: dict[str, float]
    status: str
    positives: int | None = None


@dataclass(frozen=True)
class SliceFigures:
    """The figures of the rows whose ``column`` is ``value``."""

    column: str
    value: Any
    figures: PerformanceFigures


@dataclass(frozen=True)
class RealisedPerformance:
    """The realised performance of a window, overall and per slice (when asked)."""

    overall: PerformanceFigures
    slices: tuple[SliceFigures, ...] = ()


def realised_performance(
    frame: pl.DataFrame,
    task: str,
    classes: Sequence[Any] | None = None,
    *,
    slice_by: Sequence[str] = (),
    min_labels: int = MIN_LABELS,
) -> RealisedPerformance:
    """The metrics of ``frame``'s labelled rows for a model of ``task`` with ``classes``, overall and for each
    value of each column in ``slice_by`` (nulls form their own slice). Raises DataError naming a missing column."""
    if min_labels < 1:
        raise DataError(f"min_labels is {min_labels}; it must be at least 1.", hint="Use e.g. 30.")
    for column in ("prediction", "label", *slice_by):
        if column not in frame.columns:
            raise DataError(
                f"column {column!r} is not in the predictions frame.",
                hint="Pass the frame of FeedbackRepository.labelled (slice by a logged input field).",
            )
    overall = performance_figures(frame, task, classes, min_labels=min_labels)
    slices = [
        SliceFigures(column, part[column][0], performance_figures(part, task, classes, min_labels=min_labels))
        for column in slice_by
        for part in frame.partition_by(column, maintain_order=True)
    ]
    return RealisedPerformance(overall, tuple(slices))


def performance_figures(
    frame: pl.DataFrame, task: str, classes: Sequence[Any] | None = None, *, min_labels: int = MIN_LABELS
) -> PerformanceFigures:
    """The figures of one frame (no slicing): see :func:`realised_performance`."""
    labelled = frame.filter(pl.col("label").is_not_null())
    predicted = frame.height
    coverage = labelled.height / predicted if predicted else None
    truth = _values(labelled["label"], task)
    positives = _positives(truth, task, classes)
    if labelled.height < min_labels:
        return PerformanceFigures(predicted, labelled.height, coverage, {}, NOT_ENOUGH, positives)
    prediction = _values(labelled["prediction"], task)
    metrics = compute_metrics(task, truth, prediction, _probability(labelled, task, classes), classes=classes)
    return PerformanceFigures(predicted, labelled.height, coverage, metrics, ENOUGH, positives)


def _positives(truth: np.ndarray, task: str, classes: Sequence[Any] | None) -> int | None:
    """How many of ``truth`` are a binary model's positive class (``classes[1]``); None for other tasks."""
    if task != "binary" or classes is None or len(classes) != 2:
        return None
    return int(np.count_nonzero(truth == classes[1]))


def _values(column: pl.Series, task: str) -> np.ndarray:
    if task == "regression":
        return column.cast(pl.Float64).to_numpy()
    return column.to_numpy()


def _probability(frame: pl.DataFrame, task: str, classes: Sequence[Any] | None) -> np.ndarray | None:
    """The served probabilities in the order of ``classes`` (binary: the positive class's), or None."""
    if task == "regression" or not classes:
        return None
    names = [PROBABILITY_PREFIX + str(c) for c in classes]
    if not set(names) <= set(frame.columns):
        return None
    matrix = frame.select(names).cast(pl.Float64).to_numpy()
    if np.isnan(matrix).any():
        return None
    return matrix[:, 1] if task == "binary" else matrix


def fit_estimator(reference: pl.DataFrame, classes: Sequence[Any], **options: Any) -> PerformanceEstimator:
    """A :class:`PerformanceEstimator` fitted on the labelled rows of ``reference`` (a frame of
    :meth:`~loopline.store.FeedbackRepository.labelled` for a binary classifier with ``classes``, negative then
    positive, or a multi-class one with its classes in the model's order: one ``probability:{class}`` column
    each); ``options`` go to the estimator (``calibration``, ``draws``, ``level``, ``seed``)."""
    if len(classes) > 2:
        labelled = reference.filter(pl.col("label").is_not_null())
        matrix = _class_matrix(labelled, classes)
        return PerformanceEstimator(**options).fit(matrix, _indices(labelled["label"], classes, "label"))
    column = _positive_column(reference, classes)
    labelled = reference.filter(pl.col("label").is_not_null())
    positive = labelled["label"].to_numpy() == classes[1]
    return PerformanceEstimator(**options).fit(labelled[column].cast(pl.Float64).to_numpy(), positive)


def estimated_performance(
    estimator: PerformanceEstimator, frame: pl.DataFrame, classes: Sequence[Any]
) -> EstimatedPerformance:
    """The estimated performance of every prediction of ``frame`` (labelled or not), from the served
    probability of the positive class (a multi-class model: of every class) and the served class."""
    if "prediction" not in frame.columns:
        raise DataError(
            "column 'prediction' is not in the predictions frame.", hint="Pass FeedbackRepository.labelled's frame."
        )
    if len(classes) > 2:
        said = _indices(frame["prediction"], classes, "prediction")
        return estimator.estimate(_class_matrix(frame, classes), said)
    column = _positive_column(frame, classes)
    predicted = frame["prediction"].to_numpy() == classes[1]
    return estimator.estimate(frame[column].cast(pl.Float64).to_numpy(), predicted)


def _class_matrix(frame: pl.DataFrame, classes: Sequence[Any]) -> np.ndarray:
    """The served probabilities of every class, in the order of ``classes`` (rows x classes)."""
    names = [PROBABILITY_PREFIX + str(c) for c in classes]
    missing = [name for name in names if name not in frame.columns or frame[name].null_count()]
    if missing:
        raise DataError(
            f"the predictions have no probability for {missing[0]!r} (of {len(classes)} classes).",
            hint="Estimation needs the served probabilities of every class: serve a probabilistic classifier.",
        )
    return frame.select(names).cast(pl.Float64).to_numpy()


def _indices(values: pl.Series, classes: Sequence[Any], what: str) -> np.ndarray:
    """The position of each value in ``classes`` (matched as text, as labels and predictions are logged)."""
    position = {str(c): i for i, c in enumerate(classes)}
    found = [position.get(str(v)) for v in values.to_list()]
    unknown = next((v for v, i in zip(values.to_list(), found, strict=True) if i is None), None)
    if unknown is not None or None in found:
        raise DataError(
            f"{what} {unknown!r} is not one of the model's classes ({', '.join(map(str, classes))}).",
            hint="Send labels spelt as the model's classes.",
        )
    return np.asarray(found, dtype=np.int64)


def _positive_column(frame: pl.DataFrame, classes: Sequence[Any]) -> str:
    if len(classes) != 2:
        raise DataError(
            f"performance estimation needs a binary classifier; this model has {len(classes)} classes.",
            hint="Watch its realised performance (labels) instead.",
        )
    column = PROBABILITY_PREFIX + str(classes[1])
    if column not in frame.columns or frame[column].null_count():
        raise DataError(
            f"the predictions have no probability of the positive class {classes[1]!r} ({column!r}).",
            hint="Estimation needs the served probabilities: serve the model with a probabilistic estimator.",
        )
    return column
