"""``loopline sources PIPELINE`` in the foreground (SIGTERM stops it cleanly, exit 0) and
``loopline sources status PIPELINE [--json]`` from another process; bad arguments get a clear exit 2."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from loopline.cli import app

runner = CliRunner()

PIPELINE = """
name: feeds
steps:
  events:
    type: ingest
    batch_seconds: 0.2
    source: {{type: redis, stream: {stream}, schema: {{k: int}}}}
  broken:
    type: ingest
    follow: true
    source: {{type: file, path: bad.csv}}
"""


def status_json(home: Path, *args: str) -> list[dict[str, Any]]:
    result = runner.invoke(app, ["sources", "status", "pipeline.yaml", "--home", str(home), "--json", *args])
    assert result.exit_code == 0, result.output
    data: list[dict[str, Any]] = json.loads(result.stdout)
    return data


@pytest.mark.slow
def test_sources_runs_in_the_foreground_and_sigterm_stops_every_source_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    stream = f"llcli{uuid.uuid4().hex[:10]}"
    client = redis.Redis()
    for k in range(300):
        client.xadd(stream, {"data": json.dumps({"k": k})})
    Path("pipeline.yaml").write_text(PIPELINE.format(stream=stream))
    Path("bad.csv").write_text('a,b\n1,"never closed\n')
    home = tmp_path / "home"
    command = [sys.executable, "-m", "loopline.cli", "sources", "pipeline.yaml", "--home", str(home)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            states = {s["source"]: s for s in status_json(home)}
            if states["events"]["rows"] == 300 and states["broken"]["state"] == "failed":
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no progress: {states}\n{proc.stderr.read() if proc.stderr else ''}")
            time.sleep(0.3)
        assert states["events"]["state"] == "running" and states["events"]["rate"] > 0
        assert "closing quote" in states["broken"]["last_error"]

        table = runner.invoke(app, ["sources", "status", "pipeline.yaml", "--home", str(home)])
        assert table.exit_code == 0 and "events" in table.output and "failed" in table.output

        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "every source committed its last batch" in err
        after = {s["source"]: s for s in status_json(home)}
        assert (after["events"]["state"], after["events"]["rows"]) == ("stopped", 300)
        assert client.xpending(stream, "loopline")["pending"] == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        client.delete(stream)


def test_a_pipeline_without_continuous_sources_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("pipeline.yaml").write_text("name: p\nsteps:\n  once:\n    type: ingest\n    source: {type: file, path: x}\n")
    result = runner.invoke(app, ["sources", "pipeline.yaml", "--home", str(tmp_path / "home")])
    assert result.exit_code == 2
    assert "has no continuous source" in result.output and "follow: true" in result.output
    assert status_json(tmp_path / "home") == []  # nothing to report is not an error


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sources", "pipeline.yaml", "extra"], "unexpected argument 'extra'"),
        (["sources", "status", "missing.yaml"], "does not exist"),
        (["sources", "missing.yaml"], "does not exist"),
    ],
)
def test_bad_arguments_exit_2_with_the_fix(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [*args, "--home", str(tmp_path / "home")])
    assert result.exit_code == 2 and message in result.output


@pytest.mark.slow
def test_children_of_a_killed_supervisor_stop_by_themselves_with_their_batch_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psutil

    monkeypatch.chdir(tmp_path)
    stream = f"llorphan{uuid.uuid4().hex[:10]}"
    client = redis.Redis()
    client.xadd(stream, {"data": json.dumps({"k": 0})})
    Path("pipeline.yaml").write_text(PIPELINE.format(stream=stream))
    Path("bad.csv").write_text("a,b\n1,2\n")
    home = tmp_path / "home"
    command = [sys.executable, "-m", "loopline.cli", "sources", "pipeline.yaml", "--home", str(home)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not all(s["rows"] > 0 and s["pid"] for s in status_json(home)):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the sources did not start: {status_json(home)}")
            time.sleep(0.3)
        children = [psutil.Process(s["pid"]) for s in status_json(home)]
        proc.kill()
        proc.wait(10)
        gone, alive = psutil.wait_procs(children, timeout=15)
        assert alive == [] and len(gone) == 2  # no orphan keeps ingesting
        assert client.xpending(stream, "loopline")["pending"] == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        client.delete(stream)
