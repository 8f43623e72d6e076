"""`loopline ingest` and `loopline datasets`: a source into a versioned dataset, its dead letters, replay."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from loopline.cli import app

runner = CliRunner()

PIPELINE = """
name: shop
steps:
  orders:
    type: ingest
    source: {type: file, path: "incoming/*.csv"}
    policy: quarantine
  big:
    type: derive
    inputs: [orders]
    filter: "amount > 10"
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "incoming").mkdir()
    pl.DataFrame({"id": [1, 2, 3], "amount": [5.0, 20.0, 30.0]}).write_csv(tmp_path / "incoming" / "a.csv")
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / ".loopline"))
    monkeypatch.delenv("LOOPLINE_STORE_URL", raising=False)
    return tmp_path


def invoke(*args: str) -> object:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_ingest_then_inspect_the_dataset(project: Path) -> None:
    report = invoke("ingest", "pipeline.yaml", "orders", "--json")
    assert report["rows"] == 3 and report["version"] == 1  # type: ignore[index]
    again = invoke("ingest", "pipeline.yaml", "orders", "--json")
    assert again["rows"] == 0 and again["version"] == 1  # type: ignore[index]
    (project / "incoming" / "b.csv").write_text("id,amount\n4,40.0\n5,N.A.\n")
    third = invoke("ingest", "pipeline.yaml", "orders", "--json")
    assert third["rows"] == 1 and third["rejected"] == 1 and third["version"] == 2  # type: ignore[index]
    listed = invoke("datasets", "list", "--json")
    assert [(d["dataset"], d["version"], d["rows"]) for d in listed] == [("orders", 2, 4)]  # type: ignore[union-attr]
    versions = invoke("datasets", "show", "orders", "--json")
    assert [v["rows"] for v in versions] == [3, 4]  # type: ignore[union-attr]
    letters = invoke("datasets", "dead-letters", "orders", "--json")
    assert letters[0]["reason"] == "column 'amount': 'N.A.' is not Float64"  # type: ignore[index]
    assert invoke("datasets", "replay", "orders", "--null-value", "N.A.", "--json") == {
        "replayed": 1,
        "still_failing": 0,
        "skipped": 0,
    }
    run = invoke("run", "pipeline.yaml", "--json")
    assert run["status"] == "succeeded"  # type: ignore[index]


def test_unknown_ingest_step_and_dataset_are_clear(project: Path) -> None:
    result = runner.invoke(app, ["ingest", "pipeline.yaml", "order"])
    assert result.exit_code == 2 and "Did you mean 'orders'" in result.output
    result = runner.invoke(app, ["datasets", "show", "nope"])
    assert result.exit_code == 1 and "dataset 'nope' does not exist" in result.output
