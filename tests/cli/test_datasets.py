"""`loopline ingest` and `loopline datasets`: a source into a versioned dataset, its dead letters, replay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


ODD = "[bold]<city>&"


@pytest.fixture
def shop(project: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project on each store backend, its CSV with a column name that is markup in rich and in HTML."""
    monkeypatch.setenv("LOOPLINE_STORE_URL", store_url)
    pl.DataFrame({"id": [1, 2, 3], "amount": [5.0, None, 30.0], ODD: ["lyon", "a&b", "lyon"]}).write_csv(
        project / "incoming" / "a.csv"
    )
    return project


def invoke_json(*args: str) -> Any:
    return invoke(*args, "--json")


def test_profile_is_computed_once_per_version_and_shown(shop: Path) -> None:
    invoke_json("ingest", "pipeline.yaml", "orders")
    profile = invoke_json("datasets", "profile", "orders")
    assert (profile["dataset"], profile["version"], profile["rows"], profile["n_columns"]) == ("orders", 1, 3, 3)
    amount, odd = profile["columns"][1:]
    assert (amount["name"], amount["nulls"], amount["min"], amount["max"]) == ("amount", 1, 5.0, 30.0)
    assert (odd["name"], odd["top"]) == (ODD, [{"value": "lyon", "count": 2}, {"value": "a&b", "count": 1}])
    stored = invoke_json("datasets", "show", "orders")[0]["profile_digest"]
    assert stored is not None

    pl.DataFrame({"id": [4], "amount": [40.0], ODD: ["nice"]}).write_csv(shop / "incoming" / "b.csv")
    invoke_json("ingest", "pipeline.yaml", "orders")
    assert invoke_json("datasets", "profile", "orders")["rows"] == 4
    assert invoke_json("datasets", "profile", "orders", "--version", "1") == profile  # read back as stored
    first, second = invoke_json("datasets", "show", "orders")
    assert first["profile_digest"] == stored and second["profile_digest"] not in (None, stored)


def test_profile_as_a_table_and_an_html_page(shop: Path) -> None:
    invoke_json("ingest", "pipeline.yaml", "orders")
    result = runner.invoke(app, ["datasets", "profile", "orders", "--html", "out/profile.html"])
    assert result.exit_code == 0, result.output
    assert "orders v1 — 3 rows, 3 columns" in result.output
    assert ODD in result.output and "'lyon' 2" in result.output  # the name as it is, not read as markup
    assert "wrote out/profile.html" in result.output
    html = (shop / "out" / "profile.html").read_text(encoding="utf-8")
    assert html.count('<img src="data:image/png;base64,') == 3
    assert "<h2>[bold]&lt;city&gt;&amp;</h2>" in html and "<city>" not in html


def test_profile_of_an_unknown_dataset_or_version_is_clear(shop: Path) -> None:
    result = runner.invoke(app, ["datasets", "profile", "nope"])
    assert result.exit_code == 1 and "dataset 'nope' does not exist" in result.output
    invoke_json("ingest", "pipeline.yaml", "orders")
    result = runner.invoke(app, ["datasets", "profile", "orders", "--version", "7"])
    assert result.exit_code == 1 and "dataset 'orders' has no version 7" in result.output
