"""Drift of a model's outputs: its predictions (and a classifier's probabilities) against those it gave on the
validation split, and the labels that arrive against the training labels.

The train step profiles them with :func:`profile_outputs` into the model's :class:`ReferenceProfile`
(``outputs`` and ``labels``). :func:`prediction_drift` and :func:`target_drift` compare a window with them by
the same registered tests, ``auto`` choice, Holm correction and statuses as the features: a predicted class
and a classifier's label are categorical, a probability, a regression's prediction and its label numeric.
A profile stored before outputs were profiled reports each of them as ``"not available"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from loopline.core.config import DriftConfig
from loopline.core.errors import DataError
from loopline.monitor._drift import drift_report
from loopline.monitor._profile import SAMPLE_SIZE, NumericProfile, ReferenceProfile
from loopline.monitor._report import NOT_AVAILABLE, DriftReport, FeatureDrift

PREDICTION = "prediction"
"""The column of the predictions (a class, or a regression's number)."""

LABEL = "label"
"""The column of the labels."""

PROBABILITY_PREFIX = "probability:"
"""Column ``probability:{class}``: a classifier's probability of that class (``str(class)``, as served)."""

MAX_PROBABILITY_CLASSES = 20
"""Most per-class probability columns a multi-class profile keeps (the first classes, in the model's order)."""

__all__ = ["LABEL", "PREDICTION", "PROBABILITY_PREFIX", "prediction_drift", "profile_outputs", "target_drift"]


def profile_outputs(
    profile: ReferenceProfile,
    scores: Mapping[str, np.ndarray],
    labels: pl.Series,
    *,
    classes: Sequence[Any] | None,
    sample: int = SAMPLE_SIZE,
    seed: int = 0,
) -> ReferenceProfile:
    """``profile`` with the model's output distributions and the training labels' distribution.

    ``scores`` is the model's ``predict_table`` on the validation split (``prediction`` and, for a classifier,
    ``probability`` with one column per class of ``classes``); ``labels`` the training split's target. A
    binary classifier keeps the probability of its positive class (the last), a multi-class one each class's.
    """
    frame = pl.DataFrame({PREDICTION: pl.Series(PREDICTION, scores[PREDICTION])})
    probability = scores.get("probability")
    if classes is not None and probability is not None:
        kept = [len(classes) - 1] if len(classes) == 2 else list(range(min(len(classes), MAX_PROBABILITY_CLASSES)))
        frame = frame.with_columns(
            pl.Series(f"{PROBABILITY_PREFIX}{classes[i]}", probability[:, i], dtype=pl.Float64) for i in kept
        )
    probabilities = [name for name in frame.columns if name != PREDICTION]
    classifier = classes is not None
    outputs = ReferenceProfile.from_frame(
        frame,
        numeric=probabilities if classifier else [PREDICTION],
        categorical=[PREDICTION] if classifier else [],
        sample=sample,
        seed=seed,
    )
    target = labels.alias(LABEL).to_frame()
    label_profile = ReferenceProfile.from_frame(
        target,
        numeric=[] if classifier else [LABEL],
        categorical=[LABEL] if classifier else [],
        sample=sample,
        seed=seed,
    )
    return profile.with_outputs(outputs, label_profile)


def prediction_drift(
    profile: ReferenceProfile, predictions: pl.DataFrame | pl.Series, *, config: DriftConfig = DriftConfig()
) -> DriftReport:
    """Drift of the predictions in ``predictions`` against the model's predictions on its validation split.

    ``predictions``: a Series of predictions, or a frame with a ``prediction`` column and optionally
    ``probability:{class}`` columns (those the profile holds are compared too; absent ones are skipped).
    A report over the output columns, each with its test and status (``"not enough data"`` on small windows);
    one ``"not available"`` row when the profile has no output distributions (stored before them).
    DataError when the frame has no ``prediction`` column.
    """
    frame = predictions.alias(PREDICTION).to_frame() if isinstance(predictions, pl.Series) else predictions
    if PREDICTION not in frame.columns:
        raise DataError(
            f"the predictions have no column {PREDICTION!r}.",
            column=PREDICTION,
            hint=f"Pass the prediction log's {PREDICTION!r} column (or a Series of predictions).",
        )
    return _compare(profile.outputs, frame, PREDICTION, config)


def target_drift(
    profile: ReferenceProfile, labels: pl.DataFrame | pl.Series, *, config: DriftConfig = DriftConfig()
) -> DriftReport:
    """Drift of the arrived ``labels`` (a Series, or a frame with a ``label`` column) against the training labels.

    A report over the one column ``label`` (categorical for a classifier, numeric for a regression), with the
    statuses of :func:`prediction_drift`; ``"not available"`` for a profile stored before label distributions.
    """
    frame = labels.alias(LABEL).to_frame() if isinstance(labels, pl.Series) else labels
    if LABEL not in frame.columns:
        raise DataError(
            f"the labels have no column {LABEL!r}.",
            column=LABEL,
            hint=f"Pass a Series of labels, or a frame with a {LABEL!r} column (the feedback's labels).",
        )
    return _compare(profile.labels, frame, LABEL, config)


def _compare(reference: ReferenceProfile | None, frame: pl.DataFrame, main: str, config: DriftConfig) -> DriftReport:
    if reference is None:
        return _not_available(main, frame.height, config)
    names = [name for name in reference.columns if name in frame.columns]
    kinds = {name: reference.columns[name] for name in names}
    numeric = [name for name, column in kinds.items() if isinstance(column, NumericProfile)]
    categorical = [name for name in names if name not in numeric]
    current = frame.select(names)
    if numeric:  # a classifier's int or bool labels arrive as numbers: compare them as the profile holds them
        current = current.with_columns(pl.col(numeric).cast(pl.Float64, strict=False))
    return drift_report(reference, current, numeric=numeric, categorical=categorical, config=config)


def _not_available(name: str, rows: int, config: DriftConfig) -> DriftReport:
    feature = FeatureDrift(
        feature=name,
        kind="categorical",
        psi=0.0,
        test="",
        statistic=0.0,
        p_value=None,
        drifted=False,
        n_reference=0,
        n_current=rows,
        reason="the reference profile has no output distributions (stored before them): retrain to record them",
        status=NOT_AVAILABLE,
    )
    return DriftReport([feature], [], False, config)
