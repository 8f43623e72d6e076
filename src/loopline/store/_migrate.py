"""Bring a store's schema to the newest migration, safely when several processes open it at once.

The migration runs inside one write transaction: on SQLite ``BEGIN IMMEDIATE`` holds the database's write
lock, on PostgreSQL a transaction-level advisory lock is taken first. A second process waits, then finds
the schema already at head and does nothing.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from loopline.store._tables import VERSION_TABLE

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# An arbitrary constant that names loopline's migration lock among PostgreSQL advisory locks.
_PG_LOCK_KEY = 0x6C6F6F706C696E65 & 0x7FFFFFFFFFFFFFFF


def alembic_config() -> Config:
    """An Alembic config pointing at the migrations shipped in this package (no ini file)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_table", VERSION_TABLE)
    return config


def head_revision() -> str | None:
    """The newest migration's revision id."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at, or None for an empty database."""
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade(engine: Engine) -> None:
    """Migrate the database behind ``engine`` to head; a no-op when it is already there."""
    head = head_revision()
    with engine.connect() as conn:
        if current_revision(conn) == head:
            return
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
