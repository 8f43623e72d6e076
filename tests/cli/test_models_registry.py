"""`loopline models alias|unalias|archive|history|gc` and promote/rollback through aliases, on SQLite and
PostgreSQL, with real (servable) bundles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests._candidates import register
from typer.testing import CliRunner

from loopline.bundle import verify_bundle
from loopline.cli import app
from loopline.store import Store

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / ".loopline"))
    monkeypatch.setenv("LOOPLINE_STORE_URL", store_url)
    monkeypatch.delenv("LOOPLINE_ACTOR", raising=False)
    with Store.open(store_url, tmp_path / ".loopline" / "artifacts") as store:
        for c in (0.1, 0.5, 1.0, 2.0):
            register(store, {"C": c})
    return tmp_path


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def fails(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 1, result.output
    return " ".join(result.output.split())


def listed() -> list[tuple[int, str, list[str]]]:
    return [(v["version"], v["stage"], v["aliases"]) for v in json.loads(invoke("models", "list", "churn", "--json"))]


def history() -> list[dict[str, Any]]:
    return list(json.loads(invoke("models", "history", "churn", "--json")))


def test_aliases_promote_and_rollback_from_the_command_line(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    invoke("models", "promote", "churn", "1")
    assert "churn@staging -> v2" in invoke("models", "alias", "churn", "2", "staging", "--reason", "try it")
    monkeypatch.setenv("LOOPLINE_ACTOR", "ci-job-7")
    invoke("models", "alias", "churn", "3", "production", "--reason", "gate passed")  # the same as promote
    assert listed() == [
        (1, "archived", []),
        (2, "candidate", ["staging"]),
        (3, "production", ["production"]),
        (4, "candidate", []),
    ]
    assert "v3 — production @production" in invoke("models", "show", "churn", "--version", "3")
    assert "another change came first" in fails("models", "promote", "churn", "4", "--expect", "1")
    assert "v1 is back in production" in invoke("models", "rollback", "churn", "--reason", "latency")
    trail = history()
    assert [(e["action"], e["alias"], e["from_version"], e["to_version"]) for e in trail] == [
        ("promote", "production", None, 1),
        ("alias", "staging", None, 2),
        ("promote", "production", 1, 3),
        ("rollback", "production", 3, 1),
    ]
    assert [e["actor"] for e in trail][2:] == ["ci-job-7", "ci-job-7"]
    assert trail[1]["reason"] == "try it" and trail[0]["actor"]  # the OS user
    text = invoke("models", "history", "churn")
    assert "rollback" in text and "ci-job-7" in text and "latency" in text


def test_unalias_and_refusals(home: Path) -> None:
    invoke("models", "promote", "churn", "1")
    invoke("models", "alias", "churn", "2", "shadow")
    assert "churn@shadow removed (it pointed at v2)" in invoke("models", "unalias", "churn", "shadow")
    assert "production alias of model 'churn' cannot be removed" in fails("models", "unalias", "churn", "production")
    assert "'Bad' is not an alias name" in fails("models", "alias", "churn", "2", "Bad")
    assert "model 'churn' has no version 9" in fails("models", "alias", "churn", "9", "staging")
    assert "alias production points at it" in fails("models", "archive", "churn", "1")
    result = runner.invoke(app, ["models", "gc", "churn", "--older-than", "soon"])
    assert result.exit_code == 2 and "--older-than: 'soon' is not a duration" in result.output


def test_gc_deletes_archived_versions_and_the_served_model_still_loads(home: Path) -> None:
    for version in ("1", "2", "3"):
        invoke("models", "promote", "churn", version)
    invoke("models", "archive", "churn", "4", "--reason", "never used")
    plan = json.loads(invoke("models", "gc", "churn", "--keep", "1", "--dry-run", "--json"))
    assert (plan["removed"], plan["kept"], plan["dry_run"]) == ([1, 2], [4], True)
    assert [v for v, _, _ in listed()] == [1, 2, 3, 4]
    recent = json.loads(invoke("models", "gc", "churn", "--keep", "0", "--older-than", "30d", "--json"))
    assert recent["removed"] == []  # archived a moment ago
    text = invoke("models", "gc", "churn", "--keep", "1", "--grace", "0", "--reason", "tidy")
    assert "deleted v1, v2" in text and "kept by the retention rule: v4" in text
    assert listed() == [(3, "production", ["production"]), (4, "archived", [])]
    gone = [e for e in history() if e["action"] == "gc"]
    assert [(e["from_version"], e["reason"]) for e in gone] == [(1, "tidy"), (2, "tidy")]
    assert all(e["details"]["artifacts"] for e in gone)  # each had a bundle of its own
    with Store.open(f"{_url()}", home / ".loopline" / "artifacts") as store:
        production = store.models.production("churn")
        assert production is not None and production.version == 3
        verify_bundle(store.artifacts.get_bytes(production.bundle_digest))
        for event in gone:
            assert not any(store.artifacts.exists(d) for d in event["details"]["artifacts"])
        assert store.check().missing == []


def _url() -> str:
    import os

    return os.environ["LOOPLINE_STORE_URL"]
