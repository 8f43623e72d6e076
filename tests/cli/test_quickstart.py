"""The README's main job, end to end: `loopline quickstart` (and its MQTT variant on the local broker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopline.cli import app
from loopline.cli._quickstart import open_quickstart_store
from loopline.core import parse_pipeline
from loopline.core.errors import ConfigError
from loopline.core.settings import Settings
from loopline.store import Store

QUICKSTART = parse_pipeline(
    (Path(__file__).parents[2] / "src" / "loopline" / "templates" / "quickstart.yaml").read_text(),
    source="quickstart.yaml",
)


def default_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A fresh folder with no LOOPLINE_* settings: the store is ./.loopline, as for a new user."""
    monkeypatch.chdir(tmp_path)
    for name in ("LOOPLINE_HOME", "LOOPLINE_STORE_URL", "LOOPLINE_ARTIFACTS_URL"):
        monkeypatch.delenv(name, raising=False)
    return Settings.from_env()


def run_quickstart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    default_home(tmp_path, monkeypatch)
    result = CliRunner().invoke(app, ["quickstart", *args])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def check_the_loop(tmp_path: Path, output: str) -> None:
    assert "drift:" in output and "temp" in output  # summer weather drifts from winter's
    assert "retrain: yes" in output
    report = (tmp_path / "loopline-report.html").read_text()
    assert report.count("<img") >= 3 and "temp" in report
    # one latency per side, each labelled; the console shows the client side with the report's percentiles
    assert "Server-side: model time per prediction" in report and "Client-side: round trip per request" in report
    assert "served traffic: client-side round trip per request" in output and "p95 ms" in output
    root = tmp_path / ".loopline"  # the default store: what `loopline models list` opens
    assert f"the models are in the store at {root}" in output
    with Store.open(f"sqlite:///{root / 'loopline.db'}", root / "artifacts") as store:
        versions = store.models.list("flights-delay")
        # two candidates per run; the retrain's winner refitted on train + valid is the fifth, in production
        assert len(versions) == 5 and [v.stage for v in versions].count("production") == 1
        assert versions[-1].stage == "production" and versions[-1].typed_config.refit is not None
        events = store.models.events("flights-delay")
        assert events[0]["reason"] == "no production model yet"
        assert store.predictions.count("flights-delay") >= 2200
        assert store.datasets.version("flights").rows == 336_776
        assert store.datasets.version("weather").rows == 26_115


@pytest.mark.slow
def test_quickstart_runs_the_whole_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_the_loop(tmp_path, run_quickstart(tmp_path, monkeypatch))
    # what a user types next, in the same folder, finds the quickstart's models
    listed = CliRunner().invoke(app, ["models", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [m["version"] for m in json.loads(listed.output) if m["name"] == "flights-delay"] == [1, 2, 3, 4, 5]
    # every model names the dataset versions it was trained on
    result = CliRunner().invoke(app, ["models", "show", "flights-delay", "--version", "1", "--json"])
    assert result.exit_code == 0, result.output
    lineage = {d["dataset"]: d for d in json.loads(result.output)["data_versions"]}
    assert lineage["flights"]["version"] == 1 and lineage["flights"]["rows"] == 336_776
    assert lineage["weather"]["rows"] == 26_115


@pytest.mark.slow
def test_quickstart_with_weather_stations_on_mqtt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    output = run_quickstart(tmp_path, monkeypatch, "--mqtt", "mqtt://127.0.0.1:1883")
    assert "26,115 weather messages published and ingested" in output
    check_the_loop(tmp_path, output)


def test_the_quickstart_uses_the_default_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = default_home(tmp_path, monkeypatch)
    with open_quickstart_store(settings, QUICKSTART) as store:
        assert store.artifacts.location == str(tmp_path / ".loopline" / "artifacts")
        store.runs.create_run("flights-delay", "hash", {}, {})  # an earlier quickstart
    with open_quickstart_store(settings, QUICKSTART) as store:  # run again: it starts from an empty store
        assert store.runs.list() == []


def test_the_quickstart_never_empties_a_store_holding_other_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = default_home(tmp_path, monkeypatch)
    with Store.open(settings.store_url, settings.artifacts) as store:
        store.runs.create_run("churn", "hash", {}, {})
    with pytest.raises(ConfigError, match=r"already holds pipelines: churn.*--home \.loopline-quickstart"):
        open_quickstart_store(settings, QUICKSTART)
    with Store.open(settings.store_url, settings.artifacts) as store:
        assert [run.pipeline for run in store.runs.list()] == ["churn"]
