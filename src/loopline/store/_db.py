"""Transaction helpers shared by the repositories."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from loopline.core.diskspace import disk_full_as_error
from loopline.core.errors import StoreError
from loopline.store._engine import READONLY_OPTION, masked


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads only: one consistent snapshot that never blocks writers."""
    with engine.connect() as conn:
        conn = conn.execution_options(**{READONLY_OPTION: True})
        with conn.begin():
            yield conn


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction, committed when the block ends and rolled back on error. A full disk (SQLite's
    "database or disk is full", PostgreSQL's disk_full) is raised as DiskFullError naming the database."""
    with disk_full_as_error(where(engine)), engine.begin() as conn:
        yield conn


def where(engine: Engine) -> str:
    """The database file (SQLite) or the URL without its password: what a message names."""
    url = engine.url
    return str(url.database) if url.get_backend_name() == "sqlite" and url.database else masked(url)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def upsert(conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """Insert ``rows``, replacing the non-key columns of rows whose ``keys`` already exist."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        stmt: Any = postgresql.insert(table)
    elif conn.dialect.name == "sqlite":
        stmt = sqlite.insert(table)
    else:  # pragma: no cover - _engine only builds SQLite and PostgreSQL engines
        raise NotImplementedError(conn.dialect.name)
    replace = {col.name: stmt.excluded[col.name] for col in table.columns if col.name not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=replace), rows)


def check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise StoreError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise StoreError(f"unknown {what} {value!r}", hint=f"Use one of: {', '.join(sorted(choices))}.")
