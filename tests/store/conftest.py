"""The store suites' backends: SQLite and PostgreSQL with a local artifact folder, and — for the tests a module
names in ``WITH_S3`` (``True``: all of them; artifacts, check, store, model safety) — SQLite with the artifacts in
a fresh S3 bucket. PostgreSQL × S3 is left out: the two are independent and each is covered on its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loopline.store import Store

from ._raw import Raw


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        params = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
        with_s3 = getattr(metafunc.module, "WITH_S3", False)  # True, or the names of the tests that touch artifacts
        if with_s3 is True or metafunc.function.__name__ in (with_s3 or ()):
            params.append(pytest.param("s3", marks=pytest.mark.s3))
        metafunc.parametrize("backend", params)


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty metadata store: a SQLite file, or a fresh PostgreSQL schema."""
    if backend != "postgres":
        return f"sqlite:///{tmp_path / 'db' / 'loopline.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def artifact_location(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the artifacts go: ``tmp_path/artifacts``, or a fresh bucket on the S3 test server."""
    return str(request.getfixturevalue("s3_url")) if backend == "s3" else str(tmp_path / "artifacts")


@pytest.fixture
def store(store_url: str, artifact_location: str) -> Iterator[Store]:
    """An opened (migrated) store on each backend."""
    opened = Store.open(store_url, artifact_location)
    yield opened
    opened.close()


@pytest.fixture
def raw(store: Store, monkeypatch: pytest.MonkeyPatch) -> Raw:
    """The objects under the store's artifact root, reached around the store (to break things on purpose)."""
    return Raw(store.artifacts.location, monkeypatch)
