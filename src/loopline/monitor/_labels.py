"""Labels of served predictions: what a label must be for a model, and labels from a dataset matched by key.

A label fits a model when it is one of the classifier's classes (the class itself, or its text as the service's
``probabilities`` keys name it: ``"True"`` for ``True``, and ``"true"`` too), or a finite number for a regression.

A label *source* (``monitor.labels`` in a pipeline file: :class:`~loopline.core.config.LabelSourceConfig`) is a
dataset of outcomes with a key, a label and an event time. :func:`match_label_source` gives each logged
prediction the outcome of its key that happened first at or after the prediction was made (an outcome observed
before a prediction cannot be what it predicted). Keys compare as text (``42`` matches ``"42"``; use integer or
string keys, not floats). The key must be a field of the model's input schema: the service logs only those.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from loopline.core.errors import DataError

if TYPE_CHECKING:
    from loopline.core.config import LabelSourceConfig

LabelValue = str | int | float | bool
_TIME = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class LabelMatch:
    """Labels found in a source for logged predictions: ``labels`` has ``prediction_id``, ``label`` and
    ``event_time``; ``predictions`` were looked up, ``matched`` got a label; ``skipped_rows`` of the source had
    a null key, label or time and were left out."""

    labels: pl.DataFrame
    predictions: int
    matched: int
    skipped_rows: int


def conform_label(value: Any, task: str, classes: Sequence[Any] | None) -> LabelValue:
    """``value`` as a label of a model of ``task`` with ``classes``: the class itself for a classifier (its text
    is accepted too), a float for a regression. Raises DataError saying what is wrong and how to fix it."""
    if task == "regression":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise DataError(
                f"{value!r} is not a finite number.", hint="A regression's label is its true value, e.g. 12.5."
            )
        return float(value)
    known = list(classes or [])
    for cls in known:
        if _kind(cls) == _kind(value) and cls == value:
            return _plain(cls)
    if isinstance(value, str):
        for cls in known:
            if str(cls) == value or (isinstance(cls, bool | np.bool_) and str(cls).lower() == value.lower()):
                return _plain(cls)
    shown = ", ".join(repr(_plain(c)) for c in known[:20])
    raise DataError(
        f"{value!r} is not a class of this model.",
        hint=f"Send one of its classes: {shown}{' ...' if len(known) > 20 else ''}.",
    )


def match_label_source(predictions: pl.DataFrame, source: pl.DataFrame, config: LabelSourceConfig) -> LabelMatch:
    """Give each prediction (``prediction_id``, ``created_at`` and the key field) the first outcome of its key
    in ``source`` whose event time is at or after ``created_at`` (see the module doc). Predictions without one
    are left out of ``labels``."""
    key, label, when = config.key, config.label, config.time
    for column, where, fix in (
        (key, source, "the dataset's key column"),
        (label, source, "the dataset's label column"),
        (when, source, "the dataset's event-time column"),
    ):
        _require(where, column, f"dataset {config.dataset!r}", fix)
    _require(predictions, key, "the logged inputs", "a field of the model's input schema (only those are logged)")
    outcomes = source.select(
        pl.col(key).cast(pl.String).alias("_key"), pl.col(label).alias("label"), _utc(source, when).alias("event_time")
    )
    usable = outcomes.drop_nulls()
    asked = predictions.select(
        "prediction_id", pl.col(key).cast(pl.String).alias("_key"), pl.col("created_at").cast(_TIME)
    ).filter(pl.col("_key").is_not_null())
    joined = asked.sort("created_at").join_asof(
        usable.sort("event_time"),
        left_on="created_at",
        right_on="event_time",
        by="_key",
        strategy="forward",
        check_sortedness=False,  # both sides sorted on time just above; polars cannot check it per key
    )
    found = joined.filter(pl.col("event_time").is_not_null()).select("prediction_id", "label", "event_time")
    return LabelMatch(found, predictions.height, found.height, outcomes.height - usable.height)


def _require(frame: pl.DataFrame, column: str, where: str, what: str) -> None:
    if column not in frame.columns:
        from loopline.core.errors import did_you_mean

        hint = did_you_mean(column, frame.columns) or f"Name {what}; columns: {', '.join(frame.columns[:20])}."
        raise DataError(f"column {column!r} is not in {where}.", hint=hint)


def _utc(frame: pl.DataFrame, column: str) -> pl.Expr:
    dtype = frame.schema[column]
    if isinstance(dtype, pl.Datetime):
        return pl.col(column).dt.replace_time_zone("UTC") if dtype.time_zone is None else pl.col(column).cast(_TIME)
    if dtype == pl.Date:
        return pl.col(column).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    raise DataError(
        f"the event-time column {column!r} is {dtype}, not a date or timestamp.",
        hint="Parse it when ingesting (a datetime column), or name another column as `time`.",
    )


def _kind(value: Any) -> tuple[bool, bool]:
    return isinstance(value, bool), isinstance(value, str)


def _plain(value: Any) -> LabelValue:
    """A numpy scalar class as its Python value (bundles may hold numpy types)."""
    item = getattr(value, "item", None)
    result = item() if callable(item) else value
    if not isinstance(result, str | int | float | bool):
        raise DataError(f"the class {result!r} cannot be a JSON label.", hint="Train on str, int or bool classes.")
    return result
