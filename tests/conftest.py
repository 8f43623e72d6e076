"""Shared fixtures: a store on SQLite and on the machine's PostgreSQL (store and runner suites), and a fresh
bucket on the S3-compatible server (moto) for the object-storage artifact store.

PostgreSQL: one throw-away database per test session (created and dropped here), one fresh schema per
test. S3: one fresh bucket per test, emptied and removed afterwards. An unreachable server fails the tests
that need it; it never skips them.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from tests._floor import COUNT_FILE_ENV, FLOOR_ENV, floor_error

from loopline.store import Store

PG_URL_ENV = "LOOPLINE_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

S3_ENDPOINT_ENV = "LOOPLINE_TEST_S3_ENDPOINT"
DEFAULT_S3_ENDPOINT = "http://127.0.0.1:5555"  # scripts/services.sh starts moto's server there

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Stop a run that collected fewer tests than ``LOOPLINE_MIN_TESTS`` (set by CI only; see tests/_floor.py),
    and record how many it collected in ``LOOPLINE_COLLECTED_FILE`` (CI checks that a session ran at all)."""
    collected = len(session.items)
    error = floor_error(collected, os.environ.get(FLOOR_ENV))
    if error is not None:
        pytest.exit(error, returncode=pytest.ExitCode.USAGE_ERROR)
    if count_file := os.environ.get(COUNT_FILE_ENV):
        Path(count_file).write_text(f"{collected}\n")


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


@pytest.fixture
def pg_url(pg_database: URL, pg_engine: Engine) -> str:
    """The URL of a fresh, empty PostgreSQL schema."""
    return pg_schema_url(pg_database, pg_engine)


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


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    """The S3-compatible server of the tests (``LOOPLINE_TEST_S3_ENDPOINT``), checked reachable."""
    endpoint = os.environ.get(S3_ENDPOINT_ENV, DEFAULT_S3_ENDPOINT)
    parts = urlsplit(endpoint)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=5).close()
    except OSError as exc:
        pytest.fail(
            f"The S3-compatible server is unreachable at {endpoint}: {exc}. Start it with `bash scripts/services.sh` "
            f"(moto's server on 127.0.0.1:5555, installed by `bash scripts/setup.sh --dev`) or point "
            f"{S3_ENDPOINT_ENV} at one.",
            pytrace=False,
        )
    return endpoint


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The environment an S3 client reads: test credentials and the endpoint (inherited by child processes)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "loopline-test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "loopline-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    return s3_endpoint


@pytest.fixture
def s3_url(s3_env: str) -> Iterator[str]:
    """``s3://<fresh bucket>/artifacts`` on the test server; the bucket is removed afterwards."""
    import fsspec

    fs = fsspec.filesystem("s3", use_listings_cache=False)
    bucket = f"loopline-test-{uuid.uuid4().hex[:16]}"
    fs.mkdir(bucket)
    try:
        yield f"s3://{bucket}/artifacts"
    finally:
        fs.rm(bucket, recursive=True)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a real filesystem that fills up (mounting it needs root, as the test machines and CI run)."""
    import subprocess

    folder = tmp_path / "tiny"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}): run the disk-full tests as root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)
