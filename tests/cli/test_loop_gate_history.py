"""A retrain the deployment gate refuses, through ``loopline loop --once``: the challenger stays a candidate and
``loopline loop history`` shows the gate event with every failed check (its details keep the whole verdict)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from tests.cli.test_loop_wired import PIPELINE
from tests.run._served import post_labels, serve
from tests.run.test_retrain_loop import at, regimes
from typer.testing import CliRunner

from loopline.cli import app
from loopline.store import Store

GATED = PIPELINE.replace(
    "retrain: {metric: roc_auc, window: 3, refit: false}",
    "retrain: {metric: roc_auc, window: 3, refit: false, gate: {floors: {roc_auc: 0.999}}}",
)

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_url: str) -> Iterator[Path]:
    assert GATED != PIPELINE
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
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
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
