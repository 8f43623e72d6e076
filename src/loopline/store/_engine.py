"""Engine creation for the metadata store: SQLite (embedded default) and PostgreSQL (psycopg 3).

SQLite connections get WAL journaling, a 30 s busy timeout, ``synchronous=NORMAL`` and foreign keys.
loopline emits ``BEGIN IMMEDIATE`` itself, so every SQLite write transaction holds the write lock from its
first statement: read-then-write sequences (next model version, promotion) cannot interleave across
processes. Connections marked with the ``READONLY_OPTION`` execution option begin a plain (deferred)
transaction instead, so readers never wait for writers under WAL.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from loopline.core.errors import MissingExtraError, StoreError

BUSY_TIMEOUT_MS = 30_000
READONLY_OPTION = "loopline_readonly"
_SQLITE_PRAGMAS = (
    f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)


def parse_url(url: str) -> URL:
    """Parse a store URL; a bare ``postgresql://`` URL gets the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            "the store URL cannot be parsed",
            hint="Use sqlite:///path/to/loopline.db or postgresql+psycopg://user:password@host/db.",
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def masked(url: URL) -> str:
    """The URL as text with its password replaced by ``***``: safe for messages and logs."""
    return url.render_as_string(hide_password=True)


def create_store_engine(url: URL) -> Engine:
    """An engine for ``url``, configured for loopline's concurrency model."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    if url.get_backend_name() != "postgresql":
        raise StoreError(
            f"unsupported store backend {url.get_backend_name()!r} in {masked(url)}",
            hint="Use a sqlite:/// or postgresql+psycopg:// URL.",
        )
    try:
        return create_engine(url, pool_pre_ping=True)
    except ModuleNotFoundError:
        raise MissingExtraError("psycopg", "postgres") from None
    except NoSuchModuleError:
        raise StoreError(
            f"no SQLAlchemy driver for {url.drivername!r}",
            hint="Use postgresql+psycopg:// and pip install 'loopline[postgres]'.",
        ) from None


def _sqlite_engine(url: URL) -> Engine:
    kwargs: dict[str, Any] = {}
    if url.database in (None, "", ":memory:"):
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    else:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module; _on_sqlite_begin emits BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        _enable_wal(cursor)
    finally:
        cursor.close()


def _enable_wal(cursor: Any) -> None:
    """Switch to WAL (persistent in the file). The switch needs the file to itself and SQLite does not
    apply busy_timeout to it, so two processes opening a fresh store at once retry here."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _on_sqlite_begin(conn: Connection) -> None:
    readonly = conn.get_execution_options().get(READONLY_OPTION, False)
    conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")
