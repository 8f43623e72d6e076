"""Labels into the store from outside the service: a file of labels, or a pipeline's label source.

:func:`load_label_file` reads a CSV, Parquet or JSON Lines file (or ``dataset:NAME``) with an id and a label
column, in chunks, and stores each chunk (one transaction each; loading the same file again is harmless).
:func:`sync_label_source` gives the logged predictions of a model the outcomes of the dataset that the pipeline's
``monitor.labels`` names (:func:`loopline.monitor.match_label_source`: by key, the first outcome at or after the
prediction); predictions that already have a label, from any source, keep it. The loop's tick syncs
incrementally: only the outcome rows committed since its last sync (the position is stored in the store).

Each label is checked against the model's production bundle (:func:`loopline.monitor.conform_label`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
SYNC_OVERLAP = timedelta(minutes=1)
"""An incremental sync re-reads the parts committed within this before its last sync: an outcome committed
while the service's asynchronous log had not yet flushed its prediction still finds it."""


@dataclass(frozen=True)
class LabelLoad:
    """What a load or a sync stored: ``rows`` read (file) or predictions looked at (sync); ``skipped`` rows
    had no label (file) or found none (sync); the rest went to the store as ``stored`` new, ``updated`` and
    ``unchanged`` labels. ``outcomes``: the label dataset's rows read (a sync; an incremental one reads the new
    rows only)."""

    model: str
    source: str
    rows: int
    skipped: int
    stored: int
    updated: int
    unchanged: int
    outcomes: int = 0


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
    incremental: bool = False,
    overlap: timedelta | None = None,
) -> LabelLoad:
    """Label ``model``'s unlabelled predictions made in [since, until) (default: all) from the dataset
    ``config`` names, matched by key and event time; returns what was stored.

    ``incremental`` (the loop's tick): read only the outcome rows committed since the last incremental sync
    (the dataset parts after the position the store records, and those committed within ``overlap``, default
    :data:`SYNC_OVERLAP`, before it), then move the position. A late outcome (a label that arrives days after
    its prediction, within [since, until)) is in a new part, so it still attaches; the outcomes of earlier parts
    have matched every prediction they could already. Positions move only after the labels are stored: a sync
    that fails reads the same parts again (storing a label twice is harmless).
    """
    task, classes = _model_kind(store, model)
    name = f"dataset:{config.dataset}"
    overlap = SYNC_OVERLAP if overlap is None else overlap
    position = store.feedback.sync_position(model, config.dataset) if incremental else None
    upto = None
    if incremental:
        new = store.datasets.read_new(
            config.dataset, position.seq if position else 0, position.synced_at - overlap if position else None
        )
        outcomes, upto = new.frame, new.upto_seq
    else:
        outcomes = store.datasets.read(config.dataset)
    totals = _Totals()
    chunks = store.feedback.labelled(model, since or _ALL_FROM, until or _ALL_UNTIL, chunk_rows=chunk_rows)
    for chunk in chunks if outcomes.height else ():  # no new outcome: no prediction to read
        waiting = chunk.filter(pl.col("label").is_null())
        if waiting.height == 0:
            continue
        match = match_label_source(waiting, outcomes, config)
        labels = _labels_of(match.labels, "prediction_id", "label", "event_time", task, classes, totals.rows)
        totals.add(waiting.height, waiting.height - len(labels), store.feedback.put(model, labels, source=name))
    if upto is not None:
        store.feedback.set_sync_position(model, config.dataset, upto, outcomes.height)
    return dataclasses.replace(totals.result(model, name), outcomes=outcomes.height)


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
