"""``loopline loop PIPELINE`` supervises the pipeline's continuous sources while it runs (a real Redis stream): the
loop ingests while it ticks, each tick event records the sources' state, SIGTERM stops the loop and its sources
cleanly (batch committed and acknowledged); ``--no-sources`` leaves them alone, its ticks still record their
state (stopped)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from loopline.store import Store
from loopline.store.loop import LoopStore

PIPELINE = """
name: feeds
steps:
  events:
    type: ingest
    batch_seconds: 0.2
    source: {{type: redis, stream: {stream}, schema: {{k: int}}}}
monitor:
  model: feeds-model
  loop: {{interval: 1s, window: null}}
"""


def wait_for(what: str, check: Callable[[], bool], proc: subprocess.Popen[str], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"no {what} after {timeout} s (exit {proc.returncode}):\n{err}")
        time.sleep(0.3)


def test_the_loop_ingests_its_continuous_sources_while_it_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url, artifacts = f"sqlite:///{tmp_path / 'loopline.db'}", tmp_path / "artifacts"
    monkeypatch.setenv("LOOPLINE_STORE_URL", url)
    monkeypatch.setenv("LOOPLINE_ARTIFACTS_URL", str(artifacts))
    stream = f"llloop{uuid.uuid4().hex[:10]}"
    client = redis.Redis()
    for k in range(300):
        client.xadd(stream, {"data": json.dumps({"k": k})})
    Path("pipeline.yaml").write_text(PIPELINE.format(stream=stream))
    store = Store.open(url, artifacts)
    loops = LoopStore(store.engine)
    epoch = datetime(2000, 1, 1, tzinfo=UTC)

    def loop(*options: str) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "loopline.cli", "loop", "pipeline.yaml", "--home", str(tmp_path / "h")]
        return subprocess.Popen([*command, *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def ticks_with(state: str) -> list[object]:
        found = [e.details.get("sources") for e in loops.events("feeds", kinds=("tick",), limit=200)]
        return [s for s in found if s and s[0].get("state") == state]  # type: ignore[index]

    try:
        proc = loop()
        try:
            wait_for("rows ingested", lambda: store.datasets.rows_since("events", epoch) == 300, proc)
            wait_for("a tick that saw the source running", lambda: bool(ticks_with("running")), proc)
            sources = ticks_with("running")[0]
            assert sources[0]["source"] == "events" and sources[0]["error"] is None  # type: ignore[index]
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            assert "supervising its continuous sources (events)" in out
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert client.xpending(stream, "loopline")["pending"] == 0  # every batch committed, then acknowledged

        for k in range(300, 350):
            client.xadd(stream, {"data": json.dumps({"k": k})})
        quiet = loop("--no-sources")
        try:
            wait_for("a tick that saw the source stopped", lambda: bool(ticks_with("stopped")), quiet)
            quiet.send_signal(signal.SIGTERM)
            _, err = quiet.communicate(timeout=60)
            assert quiet.returncode == 0, err
        finally:
            if quiet.poll() is None:
                quiet.kill()
                quiet.communicate()
        assert store.datasets.rows_since("events", epoch) == 300  # the new messages wait in the stream
    finally:
        store.close()
        client.delete(stream)


def test_a_cron_tick_catches_its_sources_up_once_and_no_sources_says_it_reads_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from loopline.cli import app

    monkeypatch.chdir(tmp_path)
    url, artifacts = f"sqlite:///{tmp_path / 'loopline.db'}", tmp_path / "artifacts"
    monkeypatch.setenv("LOOPLINE_STORE_URL", url)
    monkeypatch.setenv("LOOPLINE_ARTIFACTS_URL", str(artifacts))
    stream = f"llonce{uuid.uuid4().hex[:10]}"
    client = redis.Redis()
    runner = CliRunner()
    home = ["--home", str(tmp_path / "h")]
    try:
        for k in range(120):
            client.xadd(stream, {"data": json.dumps({"k": k})})
        Path("pipeline.yaml").write_text(PIPELINE.format(stream=stream))
        result = runner.invoke(app, ["loop", "pipeline.yaml", "--once", "--json", *home])
        assert result.exit_code == 0, result.output
        found = json.loads(result.output)
        assert [(s["step"], s["state"], s["rows"]) for s in found["sources"]] == [("events", "caught up", 120)]
        tick = found["events"][0]
        assert tick["kind"] == "tick" and tick["details"]["catch_up"][0]["rows"] == 120
        for k in range(120, 150):
            client.xadd(stream, {"data": json.dumps({"k": k})})
        result = runner.invoke(app, ["loop", "pipeline.yaml", "--once", *home])
        assert result.exit_code == 0, result.output
        assert "one catch-up pass of its continuous sources (at most 0:05:00)" in result.output
        assert "events -> events: caught up (30 rows in" in result.output
        client.xadd(stream, {"data": json.dumps({"k": 150})})
        result = runner.invoke(app, ["loop", "pipeline.yaml", "--once", "--no-sources", *home])
        assert "--no-sources: its continuous sources are not read this tick" in result.output
        with Store.open(url, artifacts) as store:
            assert sorted(store.datasets.read("events")["k"].to_list()) == list(range(150))
        result = runner.invoke(app, ["loop", "pipeline.yaml", "--once", "--catch-up", "soon", *home])
        assert result.exit_code == 2 and "invalid --catch-up: 'soon' is not a duration" in result.output
    finally:
        client.delete(stream)
