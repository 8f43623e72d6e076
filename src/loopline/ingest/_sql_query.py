"""SQL text for the database sources: checked identifiers, keyset predicates, safe values.

Identifiers (table, columns) must match a strict pattern and are then quoted for the dialect, so a
name can never carry SQL. Values of a position travel as bound parameters where the driver binds
them (SQLAlchemy, ADBC, DuckDB); connectorx cannot bind, so for it :func:`literal` renders them
from their Python type only (numbers re-rendered, timestamps re-formatted from a parsed datetime,
strings with their quotes and backslashes escaped and NUL refused).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pyarrow as pa

from loopline.core.errors import ConfigError, DataError
from loopline.ingest._sql_guard import check_query

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

#: ``bind(name, value) -> SQL`` returns a placeholder (and records the value) or a safe literal.
Binder = Callable[[str, Any], str]


def check_identifier(name: str, key: str) -> str:
    """``name`` if it is a plain identifier (letters, digits, underscore); a ConfigError otherwise."""
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise ConfigError(
            f"{key} {name!r} is not a plain identifier.",
            key=key,
            hint="Use letters, digits and underscores only (schema.table for a table); "
            "for anything else write a `query:` instead.",
        )
    return name


def check_table(name: str) -> list[str]:
    """The parts of ``table`` (``name`` or ``schema.name``), each a checked identifier."""
    parts = name.split(".") if isinstance(name, str) else [name]
    if not 1 <= len(parts) <= 2:
        raise ConfigError(f"table {name!r} has too many dots.", key="table", hint="Write `table` or `schema.table`.")
    return [check_identifier(part, "table") for part in parts]


@dataclass(frozen=True)
class Dialect:
    """How one database spells quoted names and literals."""

    name: str
    quote_char: str = '"'
    backslash_escapes: bool = False
    #: the dialect :func:`~loopline.ingest._sql_guard.check_query` parses a query in (None: generic)
    sqlglot: str | None = None

    def quote(self, name: str) -> str:
        """``name`` (already checked) in identifier quotes."""
        q = self.quote_char
        return f"{q}{name.replace(q, q + q)}{q}"

    def table(self, parts: list[str]) -> str:
        return ".".join(self.quote(part) for part in parts)


POSTGRES = Dialect("postgres", sqlglot="postgres")
MYSQL = Dialect("mysql", quote_char="`", backslash_escapes=True, sqlglot="mysql")
SQLITE = Dialect("sqlite", sqlglot="sqlite")
DUCKDB = Dialect("duckdb", sqlglot="duckdb")


def literal(value: Any, dialect: Dialect) -> str:
    """``value`` as a SQL literal that cannot break out of its quotes."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise DataError(f"position value {value!r} is not a finite number.")
        return repr(float(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise DataError(f"position value {value!r} is not a finite number.")
        return str(value)
    if isinstance(value, datetime):
        return _quoted(_timestamp_text(value, dialect), dialect)
    if isinstance(value, date | time):
        return _quoted(value.isoformat(), dialect)
    if isinstance(value, str):
        return _quoted(value, dialect)
    raise DataError(f"position value {value!r} has an unsupported type {type(value).__name__}.")


def _timestamp_text(value: datetime, dialect: Dialect) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
        if dialect is POSTGRES:
            return value.isoformat(sep=" ")
        value = value.replace(tzinfo=None)
    return value.isoformat(sep=" ", timespec="microseconds")


def _quoted(text: str, dialect: Dialect) -> str:
    if "\x00" in text:
        raise DataError("a position value holds a NUL character.")
    if dialect.backslash_escapes:
        text = text.replace("\\", "\\\\")
    return "'" + text.replace("'", "''") + "'"


def keyset_sql(
    source: str,
    dialect: Dialect,
    *,
    watermark: str | None,
    key: str | None,
    after: tuple[Any, Any] | None,
    limit: int | None,
    bind: Binder,
) -> str:
    """``SELECT * FROM source`` after ``(watermark, key) = after``, ordered, at most ``limit`` rows.

    With a watermark, rows whose watermark is NULL are never read (they cannot be ordered).
    """
    order = [c for c in (watermark, key) if c is not None]
    where: list[str] = [f"{dialect.quote(c)} IS NOT NULL" for c in order]
    if after is not None:
        where.append(_after(order, after, dialect, bind))
    sql = f"SELECT * FROM {source}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if order:
        sql += " ORDER BY " + ", ".join(dialect.quote(c) for c in order)
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return sql


def _after(order: list[str], after: tuple[Any, Any], dialect: Dialect, bind: Binder) -> str:
    """Strictly after ``after`` in (first, second) order; written so that an index on ``first`` is used."""
    first = dialect.quote(order[0])
    if len(order) == 1:
        return f"{first} > {bind('w', after[0])}"
    second = dialect.quote(order[1])
    w1, w2, k = bind("w", after[0]), bind("w2", after[0]), bind("k", after[1])
    return f"{first} >= {w1} AND ({first} > {w2} OR {second} > {k})"


def ties_sql(source: str, dialect: Dialect, *, watermark: str, value: Any, bind: Binder) -> str:
    """Every row whose watermark equals ``value`` (completes a batch cut inside a tie, without a key)."""
    return f"SELECT * FROM {source} WHERE {dialect.quote(watermark)} = {bind('w', value)}"


def source_sql(table: str | None, query: str | None, dialect: Dialect) -> str:
    """The FROM item: a quoted table, or the user's query, checked to be one read-only SELECT, as a derived table.

    The query stands on lines of its own, so that a trailing ``--`` comment cannot swallow the closing parenthesis.
    """
    if table is not None:
        return dialect.table(check_table(table))
    if query is None:
        raise ConfigError("give `table` or `query`.", key="table")
    return f"(\n{check_query(query, dialect.sqlglot)}\n) AS _ll_src"


# -- position values -------------------------------------------------------------------------------------------


def to_json(value: Any) -> Any:
    """A watermark or key value as JSON (timestamps as ISO strings in UTC)."""
    if isinstance(value, datetime):
        value = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        raise DataError("a binary column cannot be a watermark or a key.")
    return value


def from_json(value: Any, arrow_type: pa.DataType | None) -> Any:
    """A position value back as the Python type of its column (``arrow_type``; None: as stored)."""
    if value is None or arrow_type is None:
        return value
    try:
        if pa.types.is_timestamp(arrow_type) and isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed if arrow_type.tz else parsed.astimezone(UTC).replace(tzinfo=None)
        if pa.types.is_date(arrow_type) and isinstance(value, str):
            return date.fromisoformat(value)
        if pa.types.is_decimal(arrow_type):
            return Decimal(str(value))
        if pa.types.is_integer(arrow_type) and not isinstance(value, bool):
            return int(value)
        if pa.types.is_floating(arrow_type):
            return float(value)
    except (TypeError, ValueError) as exc:
        raise DataError(f"position value {value!r} does not fit its column of type {arrow_type}: {exc}.") from None
    return value
