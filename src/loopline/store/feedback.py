"""Feedback: ground-truth labels of served predictions, stored apart and joined to the prediction log on read.

Labels arrive late, for some predictions only, or never; one may arrive before the service's asynchronous
prediction log has flushed its prediction into the ``predictions`` table. So a label is never checked against
that table: it is stored under (model name, prediction id) and joined when read. Sending the same label again
changes nothing; a different label for the same prediction replaces it and records when (``updated_at``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import Engine, and_, exists, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from loopline.core.errors import DataError
from loopline.store._db import reading, utcnow, writing
from loopline.store._tables import feedback, label_syncs, predictions

LabelValue = str | int | float | bool
"""A label: one JSON scalar (a class of a classifier, or a finite number for a regression)."""

PROBABILITY_PREFIX = "probability:"
"""Column ``probability:{class}`` of :meth:`FeedbackRepository.labelled`: the served probability of that class
(the class as the service's output names it: ``str(class)``)."""

SHADOW_ID_SUFFIX = ":shadow"
"""A shadow challenger's logged answer has the id of the answer the client got plus this (see loopline.serve)."""
DEFAULT_CHUNK_ROWS = 10_000
_IN_CHUNK = 500  # ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits


@dataclass(frozen=True)
class Label:
    """The ground truth of one prediction; ``event_time`` is when the labelled outcome happened, if known."""

    prediction_id: str
    label: LabelValue
    event_time: datetime | None = None


@dataclass(frozen=True)
class FeedbackReceipt:
    """What one :meth:`FeedbackRepository.put` did: ``received`` distinct prediction ids (a repeated id counts
    once, its last label wins), of which ``stored`` were new, ``updated`` replaced a different label and
    ``unchanged`` repeated the label already stored. Everything counted is committed."""

    received: int
    stored: int
    updated: int
    unchanged: int


@dataclass(frozen=True)
class LabelCoverage:
    """Predictions of a model in a time range, and how many of them have a label."""

    predicted: int
    labelled: int

    @property
    def ratio(self) -> float | None:
        """labelled / predicted (None without predictions)."""
        return self.labelled / self.predicted if self.predicted else None


@dataclass(frozen=True)
class LabelSync:
    """How far a model's label dataset was synced: its parts up to ``seq``, ``rows`` read in all, when."""

    seq: int
    rows: int
    synced_at: datetime


class FeedbackRepository:
    """Labels of served predictions; safe across threads and processes (each call is one transaction)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put(self, model_name: str, labels: Sequence[Label], *, source: str) -> FeedbackReceipt:
        """Store ``labels`` of ``model_name``'s predictions, all or none, from ``source`` (``"http"``, a file
        name, ``"dataset:NAME"``). A label whose prediction is not logged (yet) is stored all the same.

        Raises DataError naming the index of a label that is not a JSON scalar (or not finite) or whose id is
        empty or longer than 64 characters.
        """
        latest = {item.prediction_id: item for item in _checked(labels)}
        if not latest:
            return FeedbackReceipt(0, 0, 0, 0)
        with writing(self.engine) as conn:
            existing = _existing_labels(conn, model_name, list(latest))
            new = [item for pid, item in latest.items() if pid not in existing]
            changed = [item for pid, item in latest.items() if pid in existing and not _same(existing[pid], item.label)]
            now = utcnow()
            rows = [
                {
                    "model_name": model_name,
                    "prediction_id": item.prediction_id,
                    "label": item.label,
                    "source": source[:200],
                    "received_at": now,
                    "updated_at": None,
                    "event_time": item.event_time,
                }
                for item in [*new, *changed]
            ]
            if rows:
                conn.execute(_upsert(conn, now), rows)
        return FeedbackReceipt(len(latest), len(new), len(changed), len(latest) - len(new) - len(changed))

    def get(self, model_name: str, prediction_ids: Sequence[str]) -> dict[str, Label]:
        """The stored labels of these ids (ids without one are left out)."""
        found: dict[str, Label] = {}
        with reading(self.engine) as conn:
            for chunk in _chunks(list(prediction_ids)):
                stmt = select(feedback.c.prediction_id, feedback.c.label, feedback.c.event_time).where(
                    feedback.c.model_name == model_name, feedback.c.prediction_id.in_(chunk)
                )
                found.update(
                    {r.prediction_id: Label(r.prediction_id, r.label, r.event_time) for r in conn.execute(stmt)}
                )
        return found

    def sync_position(self, model_name: str, dataset: str) -> LabelSync | None:
        """How far ``model_name``'s label dataset was synced (None: never)."""
        stmt = select(label_syncs).where(label_syncs.c.model_name == model_name, label_syncs.c.dataset == dataset)
        with reading(self.engine) as conn:
            row = conn.execute(stmt).first()
        return None if row is None else LabelSync(int(row.seq), int(row.rows), row.synced_at)

    def set_sync_position(self, model_name: str, dataset: str, seq: int, rows: int) -> LabelSync:
        """Record that ``dataset``'s parts up to ``seq`` were synced (``rows`` read this time, added up)."""
        key = and_(label_syncs.c.model_name == model_name, label_syncs.c.dataset == dataset)
        with writing(self.engine) as conn:
            now = utcnow()
            before = conn.execute(select(label_syncs.c.rows).where(key)).scalar_one_or_none()
            total = int(before or 0) + rows
            values = {"seq": seq, "rows": total, "synced_at": now}
            if before is None:
                conn.execute(label_syncs.insert().values(model_name=model_name, dataset=dataset, **values))
            else:
                conn.execute(label_syncs.update().where(key).values(**values))
        return LabelSync(seq, total, now)

    def count(self, model_name: str) -> int:
        """How many labels are stored for ``model_name``."""
        stmt = select(func.count()).select_from(feedback).where(feedback.c.model_name == model_name)
        with reading(self.engine) as conn:
            return int(conn.execute(stmt).scalar_one())

    def unmatched(self, model_name: str) -> int:
        """How many labels of ``model_name`` have no logged prediction (not flushed yet, or never logged)."""
        matched = exists().where(
            predictions.c.model_name == feedback.c.model_name, predictions.c.prediction_id == feedback.c.prediction_id
        )
        stmt = select(func.count()).select_from(feedback).where(feedback.c.model_name == model_name, ~matched)
        with reading(self.engine) as conn:
            return int(conn.execute(stmt).scalar_one())

    def coverage(self, model_name: str, start: datetime, end: datetime) -> LabelCoverage:
        """Predictions of ``model_name`` answered in [start, end) and how many of them have a label (a shadow's
        rows are not answers: they are left out)."""
        stmt = (
            select(func.count(), func.count(feedback.c.prediction_id))
            .select_from(_joined())
            .where(*_in_range(model_name, start, end, shadows=False))
        )
        with reading(self.engine) as conn:
            predicted, labelled = conn.execute(stmt).one()
        return LabelCoverage(int(predicted), int(labelled))

    def changed_at(self, model_name: str, start: datetime, end: datetime) -> datetime | None:
        """When a label of a prediction of ``model_name`` made in [start, end) last arrived or changed (None:
        no label yet): a window's realised figures that include this time are up to date."""
        stamp = func.max(func.coalesce(feedback.c.updated_at, feedback.c.received_at, type_=_STAMP), type_=_STAMP)
        stmt = select(stamp).select_from(_joined()).where(*_in_range(model_name, start, end, shadows=False))
        with reading(self.engine) as conn:
            value = conn.execute(stmt).scalar_one()
        return value if isinstance(value, datetime) else None

    def labelled(
        self,
        model_name: str,
        start: datetime,
        end: datetime,
        *,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        inputs: bool = True,
        shadows: bool = False,
    ) -> Iterator[pl.DataFrame]:
        """The predictions of ``model_name`` made in [start, end), oldest first, joined with their labels, as
        frames of at most ``chunk_rows`` rows (each chunk is one short read: memory stays bounded).

        Columns: the logged input fields (unless ``inputs`` is False), ``prediction_id``, ``created_at``,
        ``model_version``, ``prediction``, one ``probability:{class}`` per class of a classifier, ``label``
        (null when none has arrived), ``label_received_at`` and ``label_event_time``. An input field named like
        one of the others is shadowed by it. No frame is yielded when there are no predictions. A shadow
        challenger's rows (ids ending in :data:`SHADOW_ID_SUFFIX`, never returned to a client) are left out unless
        ``shadows``.
        """
        if chunk_rows < 1:
            raise DataError(f"chunk_rows is {chunk_rows}; it must be at least 1.", hint="Use e.g. 10000.")
        after: tuple[datetime, str] | None = None
        while True:
            rows = self._page(model_name, start, end, after, chunk_rows, shadows)
            if not rows:
                return
            yield _frame(rows, inputs)
            if len(rows) < chunk_rows:
                return
            after = (rows[-1]["created_at"], rows[-1]["prediction_id"])

    def _page(
        self,
        model_name: str,
        start: datetime,
        end: datetime,
        after: tuple[datetime, str] | None,
        limit: int,
        shadows: bool,
    ) -> list[Any]:
        cols = [
            predictions.c.prediction_id,
            predictions.c.created_at,
            predictions.c.model_version,
            predictions.c.inputs,
            predictions.c.output,
            feedback.c.label,
            feedback.c.received_at.label("label_received_at"),
            feedback.c.event_time.label("label_event_time"),
        ]
        stmt = select(*cols).select_from(_joined()).where(*_in_range(model_name, start, end, shadows=shadows))
        if after is not None:
            created, pid = after
            stmt = stmt.where(
                or_(
                    predictions.c.created_at > created,
                    and_(predictions.c.created_at == created, predictions.c.prediction_id > pid),
                )
            )
        stmt = stmt.order_by(predictions.c.created_at, predictions.c.prediction_id).limit(limit)
        with reading(self.engine) as conn:
            return list(conn.execute(stmt).mappings().all())


def _joined() -> Any:
    return predictions.outerjoin(
        feedback,
        and_(
            feedback.c.model_name == predictions.c.model_name, feedback.c.prediction_id == predictions.c.prediction_id
        ),
    )


def _in_range(model_name: str, start: datetime, end: datetime, *, shadows: bool) -> list[Any]:
    where = [predictions.c.model_name == model_name, predictions.c.created_at >= start, predictions.c.created_at < end]
    if not shadows:
        where.append(predictions.c.prediction_id.not_like(f"%{SHADOW_ID_SUFFIX}"))
    return where


_META = ("prediction_id", "created_at", "model_version", "prediction", "label", "label_received_at", "label_event_time")
_TIME = pl.Datetime("us", "UTC")
_STAMP = feedback.c.received_at.type


def _frame(rows: list[Any], inputs: bool) -> pl.DataFrame:
    records = []
    for row in rows:
        output = row["output"]
        record: dict[str, Any] = dict(row["inputs"]) if inputs else {}
        record.update({name: row[name] for name in _META if name != "prediction"})
        record["prediction"] = output.get("prediction")
        for key, value in (output.get("probabilities") or {}).items():
            record[PROBABILITY_PREFIX + str(key)] = value
        records.append(record)
    frame = pl.DataFrame(records, infer_schema_length=None, strict=False)
    return frame.with_columns(pl.col("label_received_at", "label_event_time").cast(_TIME))


def _checked(labels: Sequence[Label]) -> list[Label]:
    for index, item in enumerate(labels):
        pid, value = item.prediction_id, item.label
        if not isinstance(pid, str) or not 0 < len(pid) <= 64:
            raise DataError(
                f"label {index}: the prediction id {pid!r} must be a string of 1 to 64 characters.",
                hint="Send the prediction_id the service answered with the prediction.",
            )
        if not isinstance(value, str | int | float | bool) or (isinstance(value, float) and not math.isfinite(value)):
            raise DataError(
                f"label {index} ({pid}): {value!r} is not a label; a label is one string, number or boolean.",
                hint="Send the class for a classifier, a finite number for a regression.",
            )
    return list(labels)


def _same(stored: Any, given: LabelValue) -> bool:
    """Equal as JSON values: True is not 1, but 1 is 1.0."""
    return _kind(stored) == _kind(given) and stored == given


def _kind(value: Any) -> tuple[bool, bool]:
    return isinstance(value, bool), isinstance(value, str)


def _existing_labels(conn: Connection, model_name: str, ids: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for chunk in _chunks(ids):
        stmt = select(feedback.c.prediction_id, feedback.c.label).where(
            feedback.c.model_name == model_name, feedback.c.prediction_id.in_(chunk)
        )
        found.update({pid: label for pid, label in conn.execute(stmt)})
    return found


def _upsert(conn: Connection, now: datetime) -> Any:
    """Insert; on an id already labelled, replace label, source and event time and set ``updated_at``
    (``received_at`` keeps the first arrival)."""
    stmt: Any
    if conn.dialect.name == "postgresql":
        stmt = postgresql.insert(feedback)
    elif conn.dialect.name == "sqlite":
        stmt = sqlite.insert(feedback)
    else:  # pragma: no cover - _engine builds SQLite and PostgreSQL only
        raise NotImplementedError(conn.dialect.name)
    replace = {name: stmt.excluded[name] for name in ("label", "source", "event_time")}
    return stmt.on_conflict_do_update(
        index_elements=["model_name", "prediction_id"], set_={**replace, "updated_at": now}
    )


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(ids), _IN_CHUNK):
        yield ids[i : i + _IN_CHUNK]
