"""The prediction log: every served prediction, for monitoring drift, accuracy and latency, and the counts of the
requests the service failed (``ErrorCount``), for the error rate."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import Engine, Table, Text, and_, cast, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from loopline.store._db import reading, writing
from loopline.store._tables import predictions, serve_errors

_META_SCHEMA: dict[str, Any] = {
    "prediction_id": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "model_version": pl.Int64,
    "latency_ms": pl.Float64,
    "prediction": pl.Null,
}


@dataclass(frozen=True)
class PredictionRow:
    """One logged prediction: the input record, the model's output and how long it took."""

    prediction_id: str
    model_name: str
    model_version: int
    created_at: datetime
    inputs: dict[str, Any]
    output: dict[str, Any]
    latency_ms: float


PROBABILITY_PREFIX = "probability:"
"""Column ``probability:{class}`` of :meth:`PredictionLog.read_chunks`: the served probability of that class."""

ERROR_KINDS = ("input", "model")
"""The kinds of failed requests: ``input`` (4xx: the request failed validation), ``model`` (5xx: the model raised)."""


@dataclass(frozen=True)
class ErrorCount:
    """``count`` requests to ``model_name`` v``model_version`` that failed with ``kind`` (one of
    :data:`ERROR_KINDS`) and ``cause`` (e.g. ``validation``, ``http_400``, ``ValueError``), the first at
    ``created_at``: one flush's tally, ``error_id`` unique per tally (loading it twice stores it once)."""

    error_id: str
    model_name: str
    model_version: int
    kind: str
    cause: str
    created_at: datetime
    count: int


class PredictionLog:
    """Append-only log of predictions; safe across threads and processes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def append(self, rows: list[PredictionRow]) -> None:
        """Insert ``rows`` in one transaction (all or none)."""
        if not rows:
            return
        with writing(self.engine) as conn:
            conn.execute(insert(predictions), _values(rows))

    def append_new(self, rows: list[PredictionRow], errors: Sequence[ErrorCount] = ()) -> None:
        """Insert, in one transaction, the ``rows`` whose ``prediction_id`` is not logged yet (and the ``errors``
        whose ``error_id`` is not stored yet).

        Rows already in the log (same id) are left as they are, so repeating a call inserts nothing
        twice: a loader that crashed after the commit can simply load the same rows again.
        """
        if not rows and not errors:
            return
        with writing(self.engine) as conn:
            if rows:
                conn.execute(_insert_ignoring(conn, predictions, "prediction_id"), _values(rows))
            if errors:
                values = [{name: getattr(e, name) for name in ErrorCount.__dataclass_fields__} for e in errors]
                conn.execute(_insert_ignoring(conn, serve_errors, "error_id"), values)

    def error_counts(
        self,
        model_name: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        version: int | None = None,
    ) -> dict[str, int]:
        """How many requests to ``model_name`` (``version`` only, when given) failed with
        ``start <= created_at < end``, by kind (a kind without failures is absent)."""
        table = serve_errors
        stmt = select(table.c.kind, func.sum(table.c.count)).where(table.c.model_name == model_name)
        if start is not None:
            stmt = stmt.where(table.c.created_at >= start)
        if end is not None:
            stmt = stmt.where(table.c.created_at < end)
        if version is not None:
            stmt = stmt.where(table.c.model_version == version)
        with reading(self.engine) as conn:
            return {str(kind): int(n) for kind, n in conn.execute(stmt.group_by(table.c.kind)) if n}

    def prediction_count(self, model_name: str, start: datetime, end: datetime, *, version: int | None = None) -> int:
        """How many predictions of ``model_name`` (``version`` only, when given) were logged with
        ``start <= created_at < end``."""
        c = predictions.c
        stmt = select(func.count()).where(c.model_name == model_name, c.created_at >= start, c.created_at < end)
        if version is not None:
            stmt = stmt.where(c.model_version == version)
        with reading(self.engine) as conn:
            return int(conn.execute(stmt).scalar_one())

    def read(self, model_name: str, *, since: datetime | None = None, version: int | None = None) -> pl.DataFrame:
        """One row per prediction, oldest first: the input fields as columns, then ``prediction_id``,
        ``created_at``, ``model_version``, ``latency_ms`` and ``prediction`` (``output["prediction"]``).

        An input field named like one of those five columns is shadowed by it.
        """
        stmt = select(predictions).where(predictions.c.model_name == model_name)
        if since is not None:
            stmt = stmt.where(predictions.c.created_at >= since)
        if version is not None:
            stmt = stmt.where(predictions.c.model_version == version)
        stmt = stmt.order_by(predictions.c.created_at, predictions.c.prediction_id)
        with reading(self.engine) as conn:
            rows = conn.execute(stmt).mappings().all()
        if not rows:
            return pl.DataFrame(schema=_META_SCHEMA)
        records = [
            {
                **row["inputs"],
                "prediction_id": row["prediction_id"],
                "created_at": row["created_at"],
                "model_version": row["model_version"],
                "latency_ms": row["latency_ms"],
                "prediction": row["output"].get("prediction"),
            }
            for row in rows
        ]
        return pl.DataFrame(records, infer_schema_length=None, strict=False)

    def read_chunks(
        self,
        model_name: str,
        fields: Sequence[str],
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        after: tuple[datetime, str] | None = None,
        chunk_rows: int = 5000,
        probabilities: Sequence[str] = (),
    ) -> Iterator[pl.DataFrame]:
        """The predictions of ``model_name`` in order of ``(created_at, prediction_id)``, ``chunk_rows`` at a time.

        Each frame holds ``prediction_id``, ``created_at``, ``model_version``, ``latency_ms``, ``prediction`` and
        the input ``fields`` (an absent field is null), nothing else: the JSON of the inputs and the output is
        fetched as text and decoded a chunk at a time by polars.
        ``start``/``end`` keep ``start <= created_at < end``; ``after`` keeps the rows after that
        ``(created_at, prediction_id)``. ``probabilities``: classes (as served, ``str(class)``) whose probability
        (``output["probabilities"][class]``) comes as a Float64 column ``probability:{class}`` after
        ``prediction`` (null for a row logged without it, e.g. by a regressor or before probabilities were logged).
        The query walks the ``(model_name, created_at)`` index and the rows are
        fetched as they are consumed, so memory holds one chunk whatever the size of the log.
        """
        columns = [
            predictions.c.prediction_id,
            predictions.c.created_at,
            predictions.c.model_version,
            predictions.c.latency_ms,
            cast(predictions.c.output, Text).label("output"),  # the JSON texts, decoded a chunk at a time below
            cast(predictions.c.inputs, Text).label("inputs"),
        ]
        stmt = select(*columns).where(predictions.c.model_name == model_name)
        if start is not None:
            stmt = stmt.where(predictions.c.created_at >= start)
        if end is not None:
            stmt = stmt.where(predictions.c.created_at < end)
        if after is not None:
            at, last_id = after
            stmt = stmt.where(
                predictions.c.created_at >= at,
                or_(
                    predictions.c.created_at > at,
                    and_(predictions.c.created_at == at, predictions.c.prediction_id > last_id),
                ),
            )
        stmt = stmt.order_by(predictions.c.created_at, predictions.c.prediction_id)
        names = [*(name for name in _META_SCHEMA if name != "prediction"), "output", "inputs"]
        with reading(self.engine) as conn, conn.execution_options(yield_per=chunk_rows).execute(stmt) as result:
            # the result is closed with the block, also when the caller stops early (a server-side cursor on PG)
            for rows in result.partitions():
                frame = pl.DataFrame(
                    [tuple(row) for row in rows], schema=names, orient="row", infer_schema_length=None, strict=False
                )
                yield _with_fields(frame, fields, probabilities)

    def input_values(
        self, model_name: str, field: str, *, start: datetime, end: datetime, limit: int
    ) -> tuple[list[Any], bool]:
        """The input ``field`` of the first ``limit`` predictions of ``model_name`` with ``start <= created_at <
        end`` (in log order; None where a row lacks it), extracted by the database, and whether more rows lie in
        that span. One indexed query that reads ``limit + 1`` rows at most, whatever the size of the span."""
        c = predictions.c
        stmt = (
            select(c.inputs[field])
            .where(c.model_name == model_name, c.created_at >= start, c.created_at < end)
            .order_by(c.created_at, c.prediction_id)
            .limit(limit + 1)
        )
        with reading(self.engine) as conn:
            values = list(conn.execute(stmt).scalars())
        return values[:limit], len(values) > limit

    def first_at(self, model_name: str, *, since: datetime | None = None) -> datetime | None:
        """When the oldest prediction of ``model_name`` (at or after ``since``) was made; None without one."""
        stmt = select(func.min(predictions.c.created_at)).where(predictions.c.model_name == model_name)
        if since is not None:
            stmt = stmt.where(predictions.c.created_at >= since)
        with reading(self.engine) as conn:
            value: datetime | None = conn.execute(stmt).scalar_one()  # min() keeps the column's type: UTC-aware
        return value

    def count(self, model_name: str) -> int:
        """How many predictions are logged for ``model_name``."""
        stmt = select(func.count()).select_from(predictions).where(predictions.c.model_name == model_name)
        with reading(self.engine) as conn:
            return int(conn.execute(stmt).scalar_one())


def _with_fields(frame: pl.DataFrame, fields: Sequence[str], probabilities: Sequence[str] = ()) -> pl.DataFrame:
    """``frame`` with its ``output`` and ``inputs`` JSON texts replaced by ``prediction``, the ``probability:{class}``
    columns of ``probabilities`` and the columns ``fields`` (a field no row holds is a null column; a field of mixed
    types becomes text)."""
    outputs = _outputs(frame.get_column("output"), probabilities)
    inputs = _decoded(frame.get_column("inputs"), fields)
    return pl.concat([frame.drop("output", "inputs"), outputs, inputs], how="horizontal")


def _outputs(texts: pl.Series, probabilities: Sequence[str]) -> pl.DataFrame:
    """``prediction`` and one Float64 ``probability:{class}`` column per class of ``probabilities``."""
    if not probabilities:
        return _decoded(texts, ["prediction"])
    decoded = _decoded(texts, ["prediction", "probabilities"])
    nested = decoded.get_column("probabilities")
    held = {f.name for f in nested.dtype.fields} if isinstance(nested.dtype, pl.Struct) else set()
    columns = [decoded.get_column("prediction")]
    for key in probabilities:
        name = PROBABILITY_PREFIX + key
        if key in held:
            columns.append(nested.struct.field(key).cast(pl.Float64, strict=False).alias(name))
        else:
            columns.append(pl.Series(name, [None] * len(texts), dtype=pl.Float64))
    return pl.DataFrame(columns)


def _decoded(texts: pl.Series, fields: Sequence[str]) -> pl.DataFrame:
    """The ``fields`` of JSON objects, decoded at once by polars; by Python's json module when a text holds what
    polars refuses (``NaN``, ``Infinity``: SQLite keeps them as Python wrote them)."""
    try:
        decoded = texts.str.json_decode(infer_schema_length=None)
    except pl.exceptions.ComputeError:
        objects = [json.loads(text) if text else {} for text in texts]
        records = [[o.get(name) if isinstance(o, dict) else None for name in fields] for o in objects]
        return pl.DataFrame(records, schema=list(fields), orient="row", infer_schema_length=None, strict=False)
    present = {f.name for f in decoded.dtype.fields} if isinstance(decoded.dtype, pl.Struct) else set()
    return pl.DataFrame(
        [
            decoded.struct.field(name).alias(name) if name in present else pl.Series(name, [None] * len(texts))
            for name in fields
        ]
    )


def _values(rows: list[PredictionRow]) -> list[dict[str, Any]]:
    return [{name: getattr(row, name) for name in PredictionRow.__dataclass_fields__} for row in rows]


def _insert_ignoring(conn: Connection, table: Table, key: str) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=[key])
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=[key])
    raise NotImplementedError(conn.dialect.name)  # pragma: no cover - _engine builds SQLite and PostgreSQL only
