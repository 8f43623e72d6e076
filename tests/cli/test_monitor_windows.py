"""``loopline monitor --window`` and ``loopline alerts`` end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests._clock import steady_hour
from tests.run._windows_data import production, rows
from typer.testing import CliRunner

from loopline.cli import app
from loopline.cli._windows import ALERT_EXIT_CODE
from loopline.store import Store

runner = CliRunner()


def embedded(html: str, element_id: str) -> Any:
    """The JSON a report section embedded under ``element_id``."""
    found = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.S)
    assert found, f"no {element_id} in the page"
    return json.loads(found.group(1))


HOUR = timedelta(hours=1)

PIPELINE = """
name: churn
steps:
  data: {type: file, path: data.csv}
monitor:
  model: churn
  alerts:
    - {when: latency_p99_ms, above: 250}
"""


@pytest.fixture
def project(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> datetime:
    """A production model with three hours of traffic; the second hour is slow. Returns the first hour."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOOPLINE_STORE_URL", store_url)
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    start = steady_hour() - 4 * HOUR
    with Store.open(store_url, tmp_path / "home" / "artifacts") as store:
        production(store)
        store.predictions.append(
            rows(start, 60)
            + rows(start + HOUR, 60, latency_ms=400.0, offset=60)
            + rows(start + 2 * HOUR, 60, offset=120)
        )
    return start


def test_monitor_window_closes_windows_and_fails_on_alert(project: datetime) -> None:
    result = runner.invoke(app, ["monitor", "pipeline.yaml", "--window", "1h", "--fail-on-alert", "--json"])
    assert result.exit_code == ALERT_EXIT_CODE, result.output
    out = json.loads(result.output)
    assert [(w["start"], w["health"]["rows"]) for w in out["closed"]] == [
        ((project + i * HOUR).isoformat(), rows) for i, rows in enumerate([60, 60, 60, 0])
    ]
    assert out["rows_read"] == 180 and out["open"]["status"] == "open"
    [alert] = out["alerts"]
    assert (alert["metric"], alert["value"], alert["window_start"]) == (
        "latency_p99_ms",
        400.0,
        (project + HOUR).isoformat(),
    )

    again = runner.invoke(app, ["monitor", "pipeline.yaml", "--window", "1h", "--fail-on-alert"])
    assert again.exit_code == 0, again.output  # nothing new closed, nothing fired
    assert "no new window of 1h closed" in again.output

    listed = runner.invoke(app, ["alerts", "pipeline.yaml", "--json"])
    assert [a["id"] for a in json.loads(listed.output)] == [alert["id"]]
    assert runner.invoke(app, ["alerts", "--model", "other", "--json"]).output.strip() == "[]"
    table = runner.invoke(app, ["alerts"])
    assert "latency_p99_ms above 250" in table.output and table.exit_code == 0
    acked = runner.invoke(app, ["alerts", "ack", str(alert["id"]), "--json"])
    assert acked.exit_code == 0 and json.loads(acked.output)["acknowledged_at"] is not None
    assert json.loads(runner.invoke(app, ["alerts", "--unacknowledged", "--json"]).output) == []


def test_monitor_window_prints_a_table(project: datetime) -> None:
    result = runner.invoke(app, ["monitor", "pipeline.yaml", "--window", "1h", "--since", project.isoformat()])
    assert result.exit_code == 0, result.output  # an alert fired, but --fail-on-alert was not asked
    assert "windows of 1h closed by this check" in " ".join(result.output.split()) and "ALERT" in result.output


def test_monitor_shows_the_error_rate_and_the_prediction_and_target_drift(
    project: datetime, store_url: str, tmp_path: Path
) -> None:
    from loopline.store import ErrorCount

    with Store.open(store_url, tmp_path / "home" / "artifacts") as store:  # 20 failures in the first hour
        store.predictions.append_new([], [ErrorCount("e1", "churn", 1, "model", "ValueError", project, 20)])
    text = runner.invoke(app, ["monitor", "pipeline.yaml", "--window", "1h", "--since", project.isoformat()])
    words = " ".join(text.output.split())
    assert "errors" in words and "25.0%" in words and "0.0%" in words
    assert "drift per window" in words and "prediction (class, probabilities)" in words
    drift_table = text.output[text.output.index("drift per window") :]
    first_row = next(line for line in drift_table.splitlines() if line.startswith("│ 2026") or "│ 20" in line[:4])
    assert [cell.strip() for cell in first_row.strip("│").split("│")][1:] == ["city", "n/a", "-"]
    again = runner.invoke(app, ["monitor", "pipeline.yaml", "--window", "2h", "--json"])  # new windows: 2h
    first = next(w for w in json.loads(again.output)["closed"] if w["start"] <= project.isoformat() < w["end"])
    rows = first["health"]["rows"]
    assert first["health"]["error_rate"] == 20 / (20 + rows) and first["health"]["errors"] == {"model": 20}
    assert [f["status"] for f in first["output_drift"]["features"]] == ["not available"]  # no profile: stored before
    assert first["target_drift"] is None  # no label arrived


def test_monitor_window_report_has_the_windows_over_time(project: datetime, tmp_path: Path) -> None:
    result = runner.invoke(app, ["monitor", "pipeline.yaml", "--window", "1h", "--report", "out/r.html"])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "out" / "r.html").read_text(encoding="utf-8")
    heat = embedded(html, "loopline-drift-over-time")
    assert heat["features"] == ["age", "city"] and len(heat["windows"]) == 4
    assert [row[3] for row in heat["states"]] == ["no data", "no data"]  # the fourth hour has no traffic
    assert embedded(html, "loopline-service")["alerts"] == [(project + 2 * HOUR).isoformat()]
    assert (
        f"the 1h window {project + 2 * HOUR:%Y-%m-%d %H:%M}, the newest with a drift report" in html
        and 'alt="age: reference vs current"' in html
    )
    assert "Decision timeline" in html and "No loop events and no model changes yet" not in html  # the promotion


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["monitor", "pipeline.yaml", "--window", "5h"], 2, "does not divide the calendar evenly"),
        (["monitor", "pipeline.yaml", "--fail-on-alert"], 2, "--fail-on-alert needs --window"),
        (["monitor", "pipeline.yaml", "--window", "1h", "--since", "yesterday"], 2, "--since 'yesterday' is not an"),
        (["monitor", "pipeline.yaml", "--window", "1h", "--follow", "--report", "r.html"], 2, "--report draws a check"),
        (["alerts", "ack"], 2, "needs the alert's id"),
        (["alerts", "ack", "999"], 1, "no alert 999"),
    ],
)
def test_bad_monitor_and_alerts_arguments(project: datetime, args: list[str], code: int, message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert message in " ".join(result.output.split())


def test_a_misspelt_alert_rule_suggests_the_figure(project: datetime, tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(PIPELINE.replace("latency_p99_ms", "latency_p99"))
    result = runner.invoke(app, ["monitor", "pipeline.yaml", "--window", "1h"])
    assert result.exit_code == 2
    assert "Did you mean 'latency_p99_ms'?" in result.output and "pipeline.yaml:8" in result.output


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_follow_closes_windows_until_sigterm(project: datetime, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "loopline.cli", "monitor", "pipeline.yaml", "--window", "1h", "--follow"]
    process = subprocess.Popen(
        [*command, "--interval", "0.2", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ
    )
    deadline = time.monotonic() + 60
    with Store.open(os.environ["LOOPLINE_STORE_URL"], tmp_path / "home" / "artifacts") as store:
        while len(store.windows.list("churn")) < 4 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(store.windows.list("churn")) == 4
    time.sleep(1.5)  # a few more checks, which close nothing
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err.decode()
    checks = [json.loads(line) for line in out.decode().splitlines()]  # one line of JSON per check
    assert len(checks) >= 2 and all(c["spec"] == "1h" for c in checks)
    assert len(checks[0]["closed"]) == 4 and sum(len(c["closed"]) for c in checks) == 4
