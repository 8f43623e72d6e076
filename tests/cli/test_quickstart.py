"""The README's main job, end to end: `loopline quickstart` (and its MQTT variant on the local broker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopline.cli import app
from loopline.store import Store

pytestmark = pytest.mark.slow


def run_quickstart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / ".loopline"))
    monkeypatch.delenv("LOOPLINE_STORE_URL", raising=False)
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
    root = tmp_path / ".loopline" / "quickstart"
    with Store.open(f"sqlite:///{root / 'loopline.db'}", root / "artifacts") as store:
        versions = store.models.list("flights-delay")
        assert len(versions) == 4 and [v.stage for v in versions].count("production") == 1
        events = store.models.events("flights-delay")
        assert events[0]["reason"] == "no production model yet"
        assert store.predictions.count("flights-delay") >= 2200
        assert store.datasets.version("flights").rows == 336_776
        assert store.datasets.version("weather").rows == 26_115


def test_quickstart_runs_the_whole_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_the_loop(tmp_path, run_quickstart(tmp_path, monkeypatch))
    # every model names the dataset versions it was trained on
    home = str(tmp_path / ".loopline" / "quickstart")
    result = CliRunner().invoke(app, ["models", "show", "flights-delay", "--version", "1", "--home", home, "--json"])
    assert result.exit_code == 0, result.output
    lineage = {d["dataset"]: d for d in json.loads(result.output)["data_versions"]}
    assert lineage["flights"]["version"] == 1 and lineage["flights"]["rows"] == 336_776
    assert lineage["weather"]["rows"] == 26_115


def test_quickstart_with_weather_stations_on_mqtt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    output = run_quickstart(tmp_path, monkeypatch, "--mqtt", "mqtt://127.0.0.1:1883")
    assert "26,115 weather messages published and ingested" in output
    check_the_loop(tmp_path, output)
