"""``loopline runs`` and resuming: stale runs (their process killed), the live-run guard, the run tables."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopline.cli import app

from ._wait_step import register

runner = CliRunner()
HERE = Path(__file__).parent

WAITING = """
name: waits
steps:
  hold: {type: wait_test, started: started, release: release, value: 7}
"""

LOOPLINE = f"""
import sys
sys.path.insert(0, {str(HERE)!r})
import _wait_step
_wait_step.register()
from loopline.cli import app
app(sys.argv[1:], prog_name="loopline")
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    register()
    (tmp_path / "pipeline.yaml").write_text(WAITING)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / ".loopline"))
    monkeypatch.delenv("LOOPLINE_STORE_URL", raising=False)
    monkeypatch.delenv("LOOPLINE_ARTIFACTS_URL", raising=False)
    yield tmp_path


def start_run(project: Path) -> subprocess.Popen[bytes]:
    """A real ``loopline run pipeline.yaml`` in its own process, held inside its step until ``release`` exists."""
    child = subprocess.Popen(
        [sys.executable, "-c", LOOPLINE, "run", "pipeline.yaml"],
        cwd=project,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not (project / "started").exists():
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            raise AssertionError(f"the run never reached its step: {child.communicate()[1].decode()}")
        time.sleep(0.05)
    return child


def listed() -> list[dict[str, object]]:
    result = runner.invoke(app, ["runs", "list", "--json"])
    assert result.exit_code == 0, result.output
    runs: list[dict[str, object]] = json.loads(result.output)
    return runs


def test_a_killed_run_shows_stale_and_resumes_and_a_live_one_is_refused(project: Path) -> None:
    child = start_run(project)
    try:
        [run] = listed()
        run_id = str(run["run_id"])
        assert (run["status"], run["owner_pid"]) == ("running", child.pid)
        refused = runner.invoke(app, ["run", "--resume", run_id])
        assert refused.exit_code == 1
        assert f"run {run_id} is still running (pid {child.pid} on" in refused.output
        assert "`stale`" in refused.output
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate()  # reaps it and closes its pipe
    assert [r["status"] for r in listed()] == ["stale"]
    shown = runner.invoke(app, ["runs", "list"])
    assert run_id in shown.output and "stale" in shown.output  # the whole id, which --resume takes
    assert unspaced(f"owner gone: pid {child.pid} on") in cells(shown.output)
    (project / "release").touch()
    resumed = runner.invoke(app, ["run", "--resume", run_id, "--json"])
    assert resumed.exit_code == 0, resumed.output
    out = json.loads(resumed.output)
    assert (out["run_id"], out["status"], out["steps"]["hold"]["status"]) == (run_id, "succeeded", "succeeded")
    assert [r["status"] for r in listed()] == ["succeeded"]


def cells(output: str) -> str:
    """A rich table's text in reading order, box drawing and all white space removed (a long word folds)."""
    return "".join(re.sub(r"[\u2500-\u257f]", " ", output).split())


def unspaced(text: str) -> str:
    return "".join(text.split())


def test_run_tables_show_whole_run_ids_and_wrap_long_errors_instead_of_cutting_them(project: Path) -> None:
    missing = "a-file-with-a-long-name-that-makes-the-error-message-long-" * 2 + ".csv"
    (project / "pipeline.yaml").write_text(f"name: toolong\nsteps:\n  data: {{type: file, path: {missing}}}\n")
    ran = runner.invoke(app, ["run", "pipeline.yaml"])
    assert ran.exit_code == 1
    [run] = listed()
    error = str(run["error"])
    assert len(error) > 150 and error.endswith("(relative paths start at the current directory).")
    step_error = error.removeprefix("data: ")
    assert unspaced(step_error) in cells(ran.output)
    shown = runner.invoke(app, ["runs", "list"]).output
    assert unspaced(error) in cells(shown)
    assert any(str(run["run_id"]) in line for line in shown.splitlines())  # on one line, uncut
    assert unspaced(step_error) in cells(runner.invoke(app, ["runs", "show", str(run["run_id"])]).output)


TWO_FILES = """
name: two
steps:
  first: {type: file, path: first.csv}
  second: {type: file, path: %s}
  both: {type: union, inputs: [first, second]}
"""


def failed_on_a_typo(project: Path) -> str:
    (project / "first.csv").write_text("v\n1\n2\n")
    (project / "second.csv").write_text("v\n3\n")
    (project / "pipeline.yaml").write_text(TWO_FILES % "secnod.csv")
    failed = runner.invoke(app, ["run", "pipeline.yaml", "--json"])
    assert failed.exit_code == 1 and "secnod.csv" in json.loads(failed.output)["error"]
    return str(json.loads(failed.output)["run_id"])


def test_resume_runs_the_fixed_config_of_the_steps_that_did_not_succeed_and_says_so(project: Path) -> None:
    run_id = failed_on_a_typo(project)
    (project / "pipeline.yaml").write_text(TWO_FILES % "second.csv")  # the typo fixed
    resumed = runner.invoke(app, ["run", "--resume", run_id])
    assert resumed.exit_code == 0, resumed.output
    assert f"resuming run {run_id} with {project / 'pipeline.yaml'}" in resumed.output
    assert "changed since the run, now run with their new config: second" in resumed.output
    run = json.loads(runner.invoke(app, ["runs", "show", run_id, "--json"]).output)
    assert run["status"] == "succeeded" and run["spec"]["steps"]["second"]["path"] == "second.csv"
    assert {s["step"]: s["config"].get("path") for s in run["steps"]}["second"] == "second.csv"


def test_resume_refuses_when_a_step_that_succeeded_changed(project: Path) -> None:
    run_id = failed_on_a_typo(project)
    (project / "other.csv").write_text("v\n9\n")
    edited = (TWO_FILES % "second.csv").replace("path: first.csv", "path: other.csv")
    (project / "pipeline.yaml").write_text(edited)
    refused = runner.invoke(app, ["run", "--resume", run_id])
    assert refused.exit_code == 2  # a config error
    message = unspaced(refused.output)
    assert unspaced(f"cannot resume run {run_id}") in message and unspaced("'first' (path)") in message
    assert unspaced("Start a new run instead") in message
    run = json.loads(runner.invoke(app, ["runs", "show", run_id, "--json"]).output)
    assert run["status"] == "failed" and run["spec"]["steps"]["first"]["path"] == "first.csv"  # left as it was


def test_resume_without_the_file_uses_the_config_the_run_stored(project: Path) -> None:
    run_id = failed_on_a_typo(project)
    (project / "pipeline.yaml").unlink()
    (project / "secnod.csv").write_text("v\n3\n")  # the cause fixed outside the pipeline
    resumed = runner.invoke(app, ["run", "--resume", run_id, "--json"])
    assert resumed.exit_code == 0, resumed.output
    out = json.loads(resumed.output[resumed.output.index("{") :])
    assert out["status"] == "succeeded" and out["changed"] == []


def test_a_full_disk_fails_the_run_with_the_path_and_leaves_no_partial_artifact(
    project: Path, tiny_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPLINE_ARTIFACTS_URL", str(tiny_disk))
    rng = random.Random(0)
    rows = "\n".join(f"{rng.random()},{rng.random()}" for _ in range(150_000))
    (project / "big.csv").write_text(f"a,b\n{rows}\n")
    (project / "pipeline.yaml").write_text("name: big\nsteps:\n  data: {type: file, path: big.csv}\n")
    ran = runner.invoke(app, ["run", "pipeline.yaml", "--json"])
    assert ran.exit_code == 1
    out = json.loads(ran.output)
    assert out["status"] == "failed"
    assert out["error"].startswith(f"data: no space left on the device holding {tiny_disk} (needs about")
    [run] = listed()
    assert (run["status"], run["error"]) == ("failed", out["error"])
    assert [p.name for p in tiny_disk.rglob("*") if p.is_file()] == []  # no temp file, no partial Parquet part


def test_resume_refuses_the_file_of_another_pipeline(project: Path) -> None:
    run_id = failed_on_a_typo(project)
    (project / "other.yaml").write_text((TWO_FILES % "second.csv").replace("name: two", "name: other"))
    refused = runner.invoke(app, ["run", "other.yaml", "--resume", run_id])
    assert refused.exit_code == 2
    assert unspaced(f"run {run_id} is a run of pipeline 'two', not 'other'") in unspaced(refused.output)
