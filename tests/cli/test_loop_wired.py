"""The whole loop end to end through the CLI (SQLite and PostgreSQL): a pipeline over CSV files trained once,
its served predictions logged, their labels posted, then ``loopline loop --once`` closes the windows (realised
metric on the labels), sees the realised metric drop, retrains, gates, promotes and opens a probation; ``loopline
loop history`` shows every decision."""

from __future__ import annotations

import json
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

PIPELINE = """
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
  retrain: {metric: roc_auc, window: 3, refit: false}
  alerts:
    - {when: realised.roc_auc, below: 0.7}
  loop: {window: 1h, cooldown: 6h, max_metric_drop: 0.05}
"""

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_url: str) -> Iterator[Path]:
    """The pipeline trained once on January-March (v1 in production: y follows x)."""
    (tmp_path / "data").mkdir()
    data = regimes().with_columns(pl.col("at").dt.replace_time_zone(None).dt.to_string("%Y-%m-%dT%H:%M:%S"))
    data.write_csv(tmp_path / "data" / "part-1.csv")
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / ".loopline"))
    monkeypatch.setenv("LOOPLINE_STORE_URL", store_url)
    monkeypatch.setenv("LOOPLINE_ARTIFACTS_URL", str(tmp_path / "artifacts"))
    result = runner.invoke(app, ["run", "pipeline.yaml"])
    assert result.exit_code == 0, result.output
    yield tmp_path


def test_a_realised_metric_drop_retrains_through_loop_once_and_history_shows_it(project: Path, store_url: str) -> None:
    hour = steady_hour()
    world = regimes().filter((pl.col("at") >= at("2013-05-01")) & (pl.col("at") < at("2013-06-01"))).head(600)
    store = Store.open(store_url, project / "artifacts")
    try:  # the world turned (y follows -x) while v1 served the last three hours; the labels came back
        ids = serve(store, "wired", 1, world, hour - timedelta(hours=3), timedelta(seconds=18), prefix="s")
        post_labels(store, "wired", ids[:400], world["y"].to_list()[:400])  # the third hour's labels come late
    finally:
        store.close()

    result = runner.invoke(app, ["loop", "pipeline.yaml", "--once", "--end", "2013-07-01", "--json"])
    assert result.exit_code == 0, result.output
    tick = json.loads(result.stdout)
    kinds = [e["kind"] for e in tick["events"]]
    assert kinds == ["tick", "trigger", "retrain", "gate", "promotion", "probation"], kinds
    first, trigger = tick["events"][0], tick["events"][1]
    assert first["details"]["windows"]["closed"] >= 2 and first["details"]["windows"]["alerts"] >= 2
    assert first["details"]["realised"] < 0.3 and first["details"]["realised_rows"] == 200
    assert first["details"]["estimated"] > 0.7  # the estimate cannot see a change of concept; the labels can
    assert trigger["details"]["trigger"] == "metric" and trigger["reason"].startswith("realised roc_auc 0.")
    assert tick["events"][4]["details"]["version"] == 2 and tick["outcome"] == "retrained"

    history = runner.invoke(app, ["loop", "history", "pipeline.yaml", "--json"])
    assert history.exit_code == 0, history.output
    assert [e["kind"] for e in json.loads(history.stdout)] == list(reversed(kinds))
    table = runner.invoke(app, ["loop", "history", "wired"])
    assert table.exit_code == 0 and "probation" in table.output and "promotion" in table.output

    alerts = runner.invoke(app, ["alerts", "--model", "wired", "--json"])
    assert alerts.exit_code == 0, alerts.output
    assert {a["metric"] for a in json.loads(alerts.stdout)} == {"realised.roc_auc"}

    store = Store.open(store_url, project / "artifacts")
    try:
        post_labels(store, "wired", ids[400:], world["y"].to_list()[400:])
    finally:
        store.close()
    checked = runner.invoke(app, ["monitor", "pipeline.yaml", "--window", "1h", "--json"])
    assert checked.exit_code == 0, checked.output
    refreshed = json.loads(checked.stdout)["refreshed"]
    assert [(w["label_coverage"], w["labelled_rows"]) for w in refreshed] == [(1.0, 200)]
    assert refreshed[0]["realised_metrics"]["roc_auc"] < 0.3
    shown = runner.invoke(app, ["monitor", "pipeline.yaml", "--window", "1h"])
    assert shown.exit_code == 0 and "realised" in shown.output, shown.output

    again = runner.invoke(app, ["loop", "pipeline.yaml", "--once", "--json"])  # v2 is production now: no
    assert again.exit_code == 0, again.output  # window of v2 yet, the cooldown holds
    assert next(e["kind"] for e in json.loads(again.stdout)["events"]) == "tick"
