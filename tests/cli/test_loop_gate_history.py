"""A retrain the deployment gate refuses, through ``loopline loop --once``: the challenger stays a candidate and
``loopline loop history`` shows the gate event with every failed check (its details keep the whole verdict)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from tests._clock import steady_hour
from tests.run._served import post_labels, serve
from tests.run.test_retrain_loop import at, regimes
from typer.testing import CliRunner

from loopline.cli import app
from loopline.store import Store

# tests/cli/test_loop_wired.py's pipeline, its retrain gated by an unreachable floor
GATED = """
name: wired
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
  best: {type: select, inputs: [lin, split.test], model: wired, metric: roc_auc}
monitor:
  model: wired
  retrain: {metric: roc_auc, window: 3, refit: false, gate: {floors: {roc_auc: 0.999}}}
  alerts:
    - {when: realised.roc_auc, below: 0.7}
  loop: {window: 1h, cooldown: 6h, max_metric_drop: 0.05}
"""

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_url: str) -> Iterator[Path]:
    (tmp_path / "data").mkdir()
    data = regimes().with_columns(pl.col("at").dt.replace_time_zone(None).dt.to_string("%Y-%m-%dT%H:%M:%S"))
    data.write_csv(tmp_path / "data" / "part-1.csv")
    (tmp_path / "pipeline.yaml").write_text(GATED)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / ".loopline"))
    monkeypatch.setenv("LOOPLINE_STORE_URL", store_url)
    monkeypatch.setenv("LOOPLINE_ARTIFACTS_URL", str(tmp_path / "artifacts"))
    result = runner.invoke(app, ["run", "pipeline.yaml"])
    assert result.exit_code == 0, result.output
    yield tmp_path


def test_a_refused_retrain_is_in_the_loop_history_with_its_reasons(project: Path, store_url: str) -> None:
    hour = steady_hour()
    world = regimes().filter((pl.col("at") >= at("2013-05-01")) & (pl.col("at") < at("2013-06-01"))).head(600)
    store = Store.open(store_url, project / "artifacts")
    try:
        ids = serve(store, "wired", 1, world, hour - timedelta(hours=3), timedelta(seconds=18), prefix="s")
        post_labels(store, "wired", ids[:400], world["y"].to_list()[:400])
    finally:
        store.close()

    result = runner.invoke(app, ["loop", "pipeline.yaml", "--once", "--end", "2013-07-01", "--json"])
    assert result.exit_code == 0, result.output
    events = json.loads(result.stdout)["events"]
    assert [e["kind"] for e in events] == ["tick", "trigger", "retrain", "gate"]
    gate = events[-1]
    assert "refused by the deployment gate" in gate["reason"] and "roc_auc floor: " in gate["reason"]
    verdict = gate["details"]["gate"]["verdict"]
    assert verdict["passed"] is False and verdict["champion"] == 1
    failed = [c for c in verdict["checks"] if c["passed"] is False]
    assert [c["name"] for c in failed] == ["roc_auc floor"] and failed[0]["threshold"] == 0.999

    store = Store.open(store_url, project / "artifacts")
    try:
        assert store.models.production("wired").version == 1  # type: ignore[union-attr]
        assert store.models.get("wired", verdict["challenger"]).stage == "candidate"
    finally:
        store.close()
    table = runner.invoke(app, ["loop", "history", "wired"])
    assert table.exit_code == 0
    text = " ".join(re.sub("[\u2500-\u257f]", " ", table.output).split())
    assert "refused by the deployment gate" in text and "roc_auc floor:" in text
