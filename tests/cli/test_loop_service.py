"""``loopline loop`` end to end on a small CSV pipeline: one tick records tick/trigger/retrain/gate, history lists
them, the cooldown holds, two loops at once start one retrain, a killed loop's retrain is resumed by the next, and
SIGTERM ends the long-lived loop with exit 0 and its lease released (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from loopline.cli import app
from loopline.run._lease import retrain_lease_name
from loopline.store import PredictionRow, Store
from loopline.store.loop import LoopEvent, LoopStore

from ._wait_step import register

HERE = Path(__file__).parent
END = "2013-07-01"

PIPELINE = """
name: loopy
params: {start: "2013-01-01", valid_from: "2013-03-01", test_from: "2013-03-16", end: "2013-04-01"}
steps:
  events:
    type: ingest
    source: {type: file, path: "data/*.csv"}
  window:
    type: derive
    inputs: [events]
    parse_dates: [at]
    window: {column: at, start: "${params.start}", end: "${params.end}"}
  split:
    type: split
    inputs: [window]
    target: y
    method: time
    time_column: at
    valid_from: "${params.valid_from}"
    test_from: "${params.test_from}"
  lin:
    type: train
    inputs: [split.train, split.valid, split.test]
    target: y
    numeric: [x]
    categorical: [g]
    estimator: logistic_regression
  best: {type: select, inputs: [lin, split.test], model: loopy, metric: roc_auc}
  hold: {type: wait_test, started: started, release: release}   # holds every run until `release` exists
monitor:
  model: loopy
  loop: {cooldown: 6h, retrain_every: 1s, min_new_rows: 1000000}
"""

LOOPLINE = f"""
import sys
sys.path.insert(0, {str(HERE)!r})
import _wait_step
_wait_step.register()
from loopline.cli import app
app(sys.argv[1:], prog_name="loopline")
"""


def hourly() -> pl.DataFrame:
    """Hourly rows of 2013's first half; the label leans on ``g`` more as the months pass."""
    start = datetime(2013, 1, 1)
    hours = 181 * 24
    rng = np.random.default_rng(11)
    x, g = rng.normal(size=hours), rng.choice(["a", "b"], hours)
    trend = np.linspace(0.0, 2.0, hours)
    y = x * (2.0 - trend) + (g == "a") * trend * 1.5 + rng.normal(scale=0.8, size=hours) > 0.4
    at = [(start + timedelta(hours=i)).isoformat() for i in range(hours)]
    return pl.DataFrame({"at": at, "x": x, "g": g, "y": y})


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_url: str) -> Iterator[Path]:
    """A pipeline trained once (v1 in production) whose served traffic drifted on ``x``."""
    register()
    (tmp_path / "data").mkdir()
    hourly().write_csv(tmp_path / "data" / "part-1.csv")
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / ".loopline"))
    monkeypatch.setenv("LOOPLINE_STORE_URL", store_url)
    monkeypatch.setenv("LOOPLINE_ARTIFACTS_URL", str(tmp_path / "artifacts"))
    (tmp_path / "release").touch()
    result = CliRunner().invoke(app, ["run", "pipeline.yaml"])
    assert result.exit_code == 0, result.output
    with opened() as store:
        assert store.models.production("loopy").version == 1  # type: ignore[union-attr]
        store.predictions.append(drifted_traffic())
    (tmp_path / "release").unlink()
    (tmp_path / "started").unlink()
    yield tmp_path


def opened() -> Store:
    return Store.open(os.environ["LOOPLINE_STORE_URL"], os.environ["LOOPLINE_ARTIFACTS_URL"])


def drifted_traffic() -> list[PredictionRow]:
    rng = np.random.default_rng(5)
    now = datetime.now(UTC)
    inputs = [{"x": float(rng.normal(2.0)), "g": str(rng.choice(["a", "b"]))} for _ in range(300)]
    return [PredictionRow(f"p{i}", "loopy", 1, now, row, {"label": True}, 1.0) for i, row in enumerate(inputs)]


def events(kinds: tuple[str, ...] | None = None) -> list[LoopEvent]:
    with opened() as store:
        return list(reversed(LoopStore(store.engine).events("loopy", limit=500, kinds=kinds)))


def lease_holder() -> Any:
    with opened() as store:
        return LoopStore(store.engine).holder(retrain_lease_name("loopy"))


def loop_once(*args: str) -> Any:
    result = CliRunner().invoke(app, ["loop", "pipeline.yaml", "--once", "--end", END, "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output[result.output.index("{") :])


def spawn(project: Path, *args: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", LOOPLINE, "loop", "pipeline.yaml", "--end", END, *args]
    return subprocess.Popen(command, cwd=project, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(child: subprocess.Popen[bytes], timeout: float = 180) -> tuple[int, str, str]:
    """Wait for ``child`` to end; its exit code, stdout and stderr (its pipes closed)."""
    out, err = child.communicate(timeout=timeout)
    return child.returncode, out.decode(), err.decode()[-3000:]


def wait_for(condition: Any, child: subprocess.Popen[bytes] | None = None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if child is not None and child.poll() is not None:
            raise AssertionError(f"the loop ended early: {finish(child)[2]}")
        if time.monotonic() > deadline:
            if child is not None:
                child.kill()
                finish(child)
            raise AssertionError("timed out")
        time.sleep(0.1)


def test_once_records_tick_trigger_retrain_gate_and_history_lists_them(project: Path) -> None:
    (project / "release").touch()
    tick = loop_once()
    assert tick["outcome"] == "retrained"
    kinds = [e["kind"] for e in tick["events"]]
    assert kinds[:3] == ["tick", "trigger", "trigger"] and kinds[3:5] == ["retrain", "gate"]
    reasons = {e["details"].get("trigger"): e["reason"] for e in tick["events"] if e["kind"] == "trigger"}
    # the train step records feature importance: drift on x is weighed by it (x carries most of it)
    assert reasons["drift"].startswith("1 feature(s) drifted (x), ")
    assert "of the model's feature importance >= 20%" in reasons["drift"]
    assert reasons["schedule"] == "retrain every 1s; none recorded yet"
    retrain = next(e for e in tick["events"] if e["kind"] == "retrain")
    assert retrain["details"]["triggers"] == ["drift", "schedule"] and retrain["details"]["end"].startswith(END)
    gate = next(e for e in tick["events"] if e["kind"] == "gate")
    assert gate["details"]["model"] == "loopy" and gate["details"]["best"] >= 2
    assert ("promotion" in kinds) == gate["details"]["promote"]
    assert lease_holder() is None

    history = CliRunner().invoke(app, ["loop", "history", "pipeline.yaml", "--json", "--limit", "3"])
    assert history.exit_code == 0, history.output
    listed = json.loads(history.output)
    assert [e["id"] for e in listed] == [e["id"] for e in reversed(tick["events"])][:3]
    table = CliRunner().invoke(app, ["loop", "history", "loopy"])
    assert table.exit_code == 0 and "loop events of loopy" in table.output and "retrain" in table.output

    time.sleep(1.1)  # the schedule (every 1s) fires again, but the cooldown (6h) holds
    again = loop_once()
    assert again["outcome"] == "cooldown"
    skip = again["events"][-1]
    assert skip["kind"] == "skip" and re.match(r"cooldown: last retrain 0\.0\dh ago, cooldown 6h: wait", skip["reason"])
    assert len(events(("retrain",))) == 1
    forced = loop_once("--force")
    assert forced["outcome"] == "retrained" and len(events(("retrain",))) == 2


def test_two_loops_at_once_start_exactly_one_retrain(project: Path) -> None:
    first, second = spawn(project, "--once"), spawn(project, "--once")
    try:
        wait_for(lambda: first.poll() is not None or second.poll() is not None)  # the one without the lease ends
        assert (project / "started").exists()  # the other is inside its retrain
    finally:
        (project / "release").touch()
    for child in (first, second):
        code, _, err = finish(child)
        assert code == 0, err
    assert len(events(("retrain",))) == 1 and len(events(("gate",))) == 1
    (skip,) = [e for e in events(("skip",))]
    assert skip.reason.startswith("another loop is retraining (pid ")
    assert lease_holder() is None


def test_a_killed_loops_lease_lapses_and_the_next_loop_resumes_its_retrain(project: Path) -> None:
    child = spawn(project, "--interval", "1h")
    wait_for(lambda: (project / "started").exists(), child)
    child.kill()  # kill -9 in the middle of the retrain's run
    finish(child, 30)
    holder = lease_holder()
    assert holder is not None and holder.owner_pid == child.pid
    with opened() as store:
        (stale,) = [r for r in store.runs.list(pipeline="loopy") if r.status == "stale"]
    (project / "release").touch()
    tick = loop_once()
    assert tick["outcome"] == "retrained"
    resume = next(e for e in tick["events"] if e["details"].get("trigger") == "resume")
    assert resume["reason"].startswith(f"the loop that was retraining is gone (pid {child.pid} on ")
    retrain = next(e for e in tick["events"] if e["kind"] == "retrain")
    assert retrain["details"]["resume"] == stale.run_id and retrain["reason"].startswith(f"resume run {stale.run_id}")
    with opened() as store:
        assert store.runs.get(stale.run_id).status == "succeeded"
    assert lease_holder() is None and len(events(("gate",))) == 1


def test_sigterm_ends_the_long_lived_loop_after_its_tick_with_exit_0(project: Path) -> None:
    child = spawn(project, "--interval", "1h")
    wait_for(lambda: (project / "started").exists(), child)  # inside the retrain, holding the lease
    assert lease_holder() is not None
    child.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    (project / "release").touch()  # the tick finishes its retrain, then the loop ends
    code, _, err = finish(child, 120)
    assert code == 0, err
    assert lease_holder() is None and [e.kind for e in events()][-1] in (
        "gate",
        "probation",
    )  # a promotion opens a probation

    idle = spawn(project, "--interval", "1h")  # no trigger fires now (cooldown): it ticks, then sleeps
    wait_for(lambda: len(events(("tick",))) == 2, idle)
    idle.send_signal(signal.SIGTERM)
    code, out, err = finish(idle, 30)
    assert code == 0 and "stopped after 1 tick(s)" in out, err


def test_bad_options_and_a_pipeline_without_monitor_are_clear_errors(project: Path) -> None:
    bad = CliRunner().invoke(app, ["loop", "pipeline.yaml", "--interval", "soon"])
    assert bad.exit_code == 2 and "invalid --interval" in bad.output and "is not a duration" in bad.output
    both = CliRunner().invoke(app, ["loop", "pipeline.yaml", "--interval", "1m", "--schedule", "* * * * *"])
    assert both.exit_code == 2 and "not both" in both.output
    cron = CliRunner().invoke(app, ["loop", "pipeline.yaml", "--schedule", "every hour"])
    assert cron.exit_code == 2 and "is not a cron schedule" in cron.output
    assert CliRunner().invoke(app, ["loop", "history"]).exit_code == 2
    (project / "plain.yaml").write_text(PIPELINE.split("monitor:")[0])
    plain = CliRunner().invoke(app, ["loop", "plain.yaml", "--once"])
    assert plain.exit_code == 2 and "has no 'monitor:' section" in plain.output
    empty = CliRunner().invoke(app, ["loop", "history", "nothing-here"])
    assert empty.exit_code == 0 and "no loop events for 'nothing-here'" in empty.output
