from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import make_url

import loopline.store
from loopline.core.errors import StoreError
from loopline.store import Store
from loopline.store._engine import masked
from loopline.store._migrate import current_revision, head_revision
from loopline.store._tables import metadata

from ._raw import Raw
from ._workers import open_and_register

WITH_S3 = {"test_open_twice_is_idempotent_and_keeps_data"}  # the others touch no artifact


def test_public_names_are_sorted_and_exported() -> None:
    assert loopline.store.__all__ == sorted(loopline.store.__all__)
    assert all(hasattr(loopline.store, name) for name in loopline.store.__all__)


def test_open_twice_is_idempotent_and_keeps_data(store_url: str, artifact_location: str) -> None:
    with Store.open(store_url, artifact_location) as first:
        digest = first.artifacts.put_bytes(b"kept")
        first.runs.create_run("p", "h", {}, {})
    with Store.open(store_url, artifact_location) as second, second.engine.connect() as conn:
        assert current_revision(conn) == head_revision() == "0017"
        assert [run.pipeline for run in second.runs.list()] == ["p"]
        assert second.artifacts.get_bytes(digest) == b"kept"


def test_migrations_match_the_table_definitions(store: Store) -> None:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = [d for d in compare_metadata(context, metadata) if "loopline_alembic_version" not in str(d)]
    assert diff == []


def test_open_defaults_to_loopline_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LOOPLINE_STORE_URL", raising=False)
    with Store.open() as store:
        digest = store.artifacts.put_bytes(b"x")
    assert (tmp_path / "home" / "loopline.db").is_file()
    assert (tmp_path / "home" / "artifacts" / digest[:2] / digest).is_file()
    assert store.local_dir == tmp_path / "home"


@pytest.mark.s3
def test_loopline_artifacts_url_puts_the_artifacts_in_object_storage(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, s3_url: str
) -> None:
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LOOPLINE_STORE_URL", raising=False)
    monkeypatch.setenv("LOOPLINE_ARTIFACTS_URL", s3_url)
    with Store.open() as store:
        digest = store.artifacts.put_bytes(b"shared")
        assert store.artifacts.location == s3_url and s3_url in repr(store)
        assert store.local_dir == tmp_path / "home"  # local state stays on this machine
    assert (tmp_path / "home" / "loopline.db").is_file() and not (tmp_path / "home" / "artifacts").exists()
    assert Raw(s3_url, monkeypatch).names() == [f"{digest[:2]}/{digest}"]


def test_local_dir_is_the_folder_above_a_local_artifact_folder_unless_given(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with Store.open(url, tmp_path / "state" / "artifacts") as store:
        assert store.local_dir == tmp_path / "state"
    with Store.open(url, tmp_path / "state" / "artifacts", local_dir=tmp_path / "spool") as store:
        assert store.local_dir == tmp_path / "spool"


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    names = ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
    with Store.open(f"sqlite:///{tmp_path / 'a' / 'b' / 'x.db'}", tmp_path) as store, store.engine.connect() as conn:
        pragmas = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar() for name in names}
    assert pragmas == {"journal_mode": "wal", "busy_timeout": 30000, "foreign_keys": 1, "synchronous": 1}


def test_connection_failure_masks_the_password(tmp_path: Path) -> None:
    url = "postgresql+psycopg://loop:s3cr3t-pw@127.0.0.1:1/loopline"
    with pytest.raises(StoreError, match=r"cannot open the metadata store at .*loop:\*\*\*@127\.0\.0\.1:1") as info:
        Store.open(url, tmp_path)
    assert "s3cr3t-pw" not in str(info.value)
    assert "LOOPLINE_STORE_URL" in str(info.value)


def test_masked_hides_the_password() -> None:
    assert masked(make_url("postgresql+psycopg://u:secret@h/db")) == "postgresql+psycopg://u:***@h/db"


@pytest.mark.parametrize(
    ("url", "message"),
    [("mysql://u@h/db", "unsupported store backend 'mysql'"), ("not a url", "store URL cannot be parsed")],
)
def test_unsupported_urls_are_refused(url: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=message):
        Store.open(url, tmp_path)


def test_two_processes_open_a_fresh_store_and_register_concurrently(store_url: str, artifact_location: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results: Any = ctx.Queue()
    count = 5
    workers = [
        ctx.Process(target=open_and_register, args=(store_url, artifact_location, barrier, count, results))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    errors = [detail for status, detail in outcomes if status == "error"]
    assert errors == []
    versions = sorted(v for _, landed in outcomes for v in landed)
    assert versions == list(range(1, 2 * count + 1))
    with Store.open(store_url, artifact_location) as store:
        assert [m.version for m in store.models.list("concurrent")] == versions
