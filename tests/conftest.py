"""Shared fixtures: a store on SQLite and on the machine's PostgreSQL (store and runner suites).

PostgreSQL: one throw-away database per test session (created and dropped here), one fresh schema per
test. An unreachable server fails the postgres tests; it never skips them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

from loopline.store import Store

PG_URL_ENV = "LOOPLINE_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def pg_database() -> Iterator[URL]:
    """A fresh PostgreSQL database for this session, dropped at the end."""
    admin_url = make_url(os.environ.get(PG_URL_ENV, DEFAULT_PG_URL))
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"loopline_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except OperationalError as exc:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL is unreachable at {admin_url.render_as_string(hide_password=True)}: "
            f"{str(exc.orig).strip().splitlines()[0]}. Start the server or point {PG_URL_ENV} at one.",
            pytrace=False,
        )
    try:
        yield admin_url.set(database=name)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def pg_engine(pg_database: URL) -> Iterator[Engine]:
    """An AUTOCOMMIT engine on the session's database, for creating schemas."""
    engine = create_engine(pg_database, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def pg_schema_url(pg_database: URL, pg_engine: Engine) -> str:
    """A URL whose connections use a new, empty schema."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with pg_engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = pg_database.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'loopline.db'}"
    pg_database: URL = request.getfixturevalue("pg_database")
    return pg_schema_url(pg_database, request.getfixturevalue("pg_engine"))


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    """An opened (migrated) store on each backend."""
    opened = Store.open(store_url, tmp_path / "artifacts")
    yield opened
    opened.close()
