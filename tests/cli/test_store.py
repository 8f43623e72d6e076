"""`loopline store check [--fix] [--json]` on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from tests._candidates import stub_candidate
from typer.testing import CliRunner

from loopline.cli import app
from loopline.store import ModelVersion, Store

runner = CliRunner()


def candidate(store: Store) -> ModelVersion:
    return store.models.register_candidate("churn", stub_candidate(b"bundle", pl.DataFrame({"x": [1.0]})))


def age_everything(root: Path) -> None:
    past = time.time() - 2 * 3600
    for path in root.rglob("*"):
        os.utime(path, (past, past))


def temp_file(folder: Path, name: str) -> None:
    (folder / name).write_bytes(b"half a blob")


@pytest.fixture
def home(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("LOOPLINE_STORE_URL", store_url)
    yield tmp_path / "home"


def open_home(home: Path, store_url: str) -> Store:
    return Store.open(store_url, home / "artifacts")


def test_check_of_a_consistent_store_exits_0(home: Path, store_url: str) -> None:
    with open_home(home, store_url) as store:
        candidate(store)
    result = runner.invoke(app, ["store", "check", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert "2 artifacts, 2 referenced" in result.output and "the store is consistent" in result.output


def test_check_reports_then_fix_removes_old_debris_only(home: Path, store_url: str) -> None:
    with open_home(home, store_url) as store:
        model = candidate(store)
        orphan = store.artifacts.put_bytes(b"orphan")
        temp_file(store.artifacts.root, ".tmp-killed.part")
        age_everything(store.artifacts.root)
        young = store.artifacts.put_bytes(b"young orphan")

    found = runner.invoke(app, ["store", "check", "--home", str(home)])
    assert found.exit_code == 1
    assert "stale" in found.output and "young: kept" in found.output and "store check --fix" in found.output

    fixed = runner.invoke(app, ["store", "check", "--fix", "--json", "--home", str(home)])
    assert fixed.exit_code == 1, fixed.output  # the young orphan is still there
    report = json.loads(fixed.output)
    assert report["clean"] is False
    assert [(f["path"], f["removed"]) for f in report["temp_files"]] == [(".tmp-killed.part", True)]
    assert sorted((Path(f["path"]).name, f["removed"], f["kept"]) for f in report["orphans"]) == sorted(
        [(orphan, True, False), (young, False, True)]
    )
    with open_home(home, store_url) as store:
        assert store.artifacts.get_bytes(model.bundle_digest) == b"bundle"
        assert not store.artifacts.exists(orphan) and store.artifacts.exists(young)


def test_young_temp_files_and_orphans_are_not_called_consistent(home: Path, store_url: str) -> None:
    """A writer killed a minute ago leaves young debris: the check says what it found and exits 1."""
    with open_home(home, store_url) as store:
        candidate(store)
        store.artifacts.put_bytes(b"orphan")
        temp_file(store.artifacts.root, ".tmp-killed.part")
    found = runner.invoke(app, ["store", "check", "--home", str(home)])
    assert found.exit_code == 1, found.output
    text = " ".join(found.output.split())
    assert "the store is consistent" not in text
    assert "the store is not consistent: 1 temp file, 1 orphan" in text
    assert "2 files younger than --grace-minutes" in text and "--fix --grace-minutes 0" in text
    as_json = runner.invoke(app, ["store", "check", "--json", "--home", str(home)])
    assert as_json.exit_code == 1 and json.loads(as_json.output)["clean"] is False
    fixed = runner.invoke(app, ["store", "check", "--fix", "--grace-minutes", "0", "--home", str(home)])
    assert fixed.exit_code == 0, fixed.output
    assert "the store is consistent" in fixed.output


def test_grace_minutes_0_removes_young_orphans_too(home: Path, store_url: str) -> None:
    with open_home(home, store_url) as store:
        orphan = store.artifacts.put_bytes(b"orphan")
    result = runner.invoke(app, ["store", "check", "--fix", "--grace-minutes", "0", "--home", str(home)])
    assert result.exit_code == 0, result.output
    with open_home(home, store_url) as store:
        assert not store.artifacts.exists(orphan)


def test_corrupted_artifact_exits_1_with_the_fix(home: Path, store_url: str) -> None:
    with open_home(home, store_url) as store:
        model = candidate(store)
        store.artifacts.path(model.bundle_digest).write_bytes(b"bit rot")
    result = runner.invoke(app, ["store", "check", "--fix", "--home", str(home)])
    assert result.exit_code == 1
    assert "corrupted artifacts" in result.output and "models churn v1 bundle" in result.output
    assert "loopline run --no-cache" in result.output
    with open_home(home, store_url) as store:
        assert store.artifacts.path(model.bundle_digest).read_bytes() == b"bit rot"
