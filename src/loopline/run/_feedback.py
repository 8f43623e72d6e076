"""Labels into the store from outside the service: a file of labels, or a pipeline's label source.

:func:`load_label_file` reads a CSV, Parquet or JSON Lines file (or ``dataset:NAME``) with an id and a label
column, in chunks, and stores each chunk (one transaction each; loading the same file again is harmless).
:func:`sync_label_source` gives the logged predictions of a model the outcomes of the dataset that the pipeline's
``monitor.labels`` names (:func:`loopline.monitor.match_label_source`: by key, the first outcome at or after the
prediction); predictions that already have a label, from any source, keep it.

Each label is checked against the model's production bundle (:func:`loopline.monitor.conform_label`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from loopline.core.errors import DataError, NotFoundError, did_you_mean
from loopline.monitor import conform_label, match_label_source
from loopline.run._evaluate import load_bundle
from loopline.run._score_input import open_input

if TYPE_CHECKING:
    from pathlib import Path

    from loopline.core.config import LabelSourceConfig
    from loopline.store import FeedbackReceipt, Label, Store

CHUNK_ROWS = 10_000
_ALL_FROM = datetime(1970, 1, 1, tzinfo=UTC)
_ALL_UNTIL = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class LabelLoad:
    """What a load or a sync stored: ``rows`` read (file) or predictions looked at (sync); ``skipped`` rows
    had no label (file) or found none (sync); the rest went to the store as ``stored`` new, ``updated`` and
    ``unchanged`` labels."""

    model: str
    source: str
    rows: int
    skipped: int
    stored: int
    updated: int
    unchanged: int


def load_label_file(
    store: Store,
    model: str,
    path: str | Path,
    *,
    id_column: str,
    label_column: str,
    event_time_column: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> LabelLoad:
    """Store the labels of ``path`` for ``model``. A row without a label is skipped and counted; a row without
    an id, or whose label does not fit the model, stops the load with a DataError naming the row (the chunks
    before it are stored: loading again after the fix is harmless)."""
    task, classes = _model_kind(store, model)
    source = open_input(store, path, text_columns=[id_column])
    columns = [c for c in (id_column, label_column, event_time_column) if c is not None]
    for column in columns:
        if column not in source.schema:
            hint = did_you_mean(column, source.schema) or f"Columns: {', '.join(list(source.schema)[:20])}."
            raise DataError(f"column {column!r} is not in {source.label}.", file=source.label, hint=hint)
    totals = _Totals()
    for chunk in source.chunks(columns, chunk_rows):
        labels = _labels_of(chunk, id_column, label_column, event_time_column, task, classes, totals.rows)
        totals.add(chunk.height, chunk.height - len(labels), store.feedback.put(model, labels, source=source.label))
    return totals.result(model, source.label)


def sync_label_source(
    store: Store,
    model: str,
    config: LabelSourceConfig,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> LabelLoad:
    """Label ``model``'s unlabelled predictions made in [since, until) (default: all) from the dataset
    ``config`` names, matched by key and event time; returns what was stored."""
    task, classes = _model_kind(store, model)
    outcomes = store.datasets.read(config.dataset)
    name = f"dataset:{config.dataset}"
    totals = _Totals()
    for chunk in store.feedback.labelled(model, since or _ALL_FROM, until or _ALL_UNTIL, chunk_rows=chunk_rows):
        waiting = chunk.filter(pl.col("label").is_null())
        if waiting.height == 0:
            continue
        match = match_label_source(waiting, outcomes, config)
        labels = _labels_of(match.labels, "prediction_id", "label", "event_time", task, classes, totals.rows)
        totals.add(waiting.height, waiting.height - len(labels), store.feedback.put(model, labels, source=name))
    return totals.result(model, name)


class _Totals:
    def __init__(self) -> None:
        self.rows = self.skipped = self.stored = self.updated = self.unchanged = 0

    def add(self, rows: int, skipped: int, receipt: FeedbackReceipt) -> None:
        self.rows += rows
        self.skipped += skipped
        self.stored += receipt.stored
        self.updated += receipt.updated
        self.unchanged += receipt.unchanged

    def result(self, model: str, source: str) -> LabelLoad:
        return LabelLoad(model, source, self.rows, self.skipped, self.stored, self.updated, self.unchanged)


def _model_kind(store: Store, model: str) -> tuple[str, list[Any] | None]:
    """The task and classes of ``model``'s production version: what a label must fit."""
    production = store.models.production(model)
    if production is None:
        hint = did_you_mean(model, store.models.names()) or "Promote a version first: `loopline models promote`."
        raise NotFoundError(f"model {model!r} has no production version to check labels against.", hint=hint)
    bundle = load_bundle(store, production)
    return bundle.task, bundle.classes


def _labels_of(
    frame: pl.DataFrame,
    id_column: str,
    label_column: str,
    time_column: str | None,
    task: str,
    classes: list[Any] | None,
    offset: int,
) -> list[Label]:
    from loopline.store import Label

    ids = frame[id_column].cast(pl.String).to_list()
    values = frame[label_column].to_list()
    times = frame[time_column].to_list() if time_column is not None else [None] * frame.height
    labels = []
    for index, (pid, value, when) in enumerate(zip(ids, values, times, strict=True)):
        if value is None:
            continue
        row = offset + index + 1
        if not pid:
            raise DataError(
                f"row {row}: the id column {id_column!r} is empty.", hint="Give every labelled row its prediction id."
            )
        try:
            labels.append(Label(pid, conform_label(value, task, classes), _utc(when, row)))
        except DataError as exc:
            raise DataError(f"row {row}, column {label_column!r}: {exc.message}", hint=exc.hint) from None
    return labels


def _utc(value: Any, row: int) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # not ISO 8601: refused below, naming the row
            value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise DataError(
            f"row {row}: the event time {value!r} is not a timestamp.",
            hint="Write event times as ISO 8601 timestamps (2025-03-01T12:00:00Z).",
        )
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
