"""`loopline feedback load` and `loopline feedback sync`: labels from a file and from a pipeline's label source."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from tests._candidates import put_dataset, register
from typer.testing import CliRunner

from loopline.cli import app
from loopline.store import Label, PredictionRow, Store

runner = CliRunner()
T0 = datetime(2025, 3, 1, tzinfo=UTC)
PIPELINE = """\
name: churn_pipeline
steps:
  data: {type: file, path: x.csv}
monitor:
  model: churn
  labels: {dataset: outcomes, key: customer, label: churned, time: observed}
"""


def open_store(home: Path) -> Store:
    return Store.open(f"sqlite:///{home / 'loopline.db'}", home / "artifacts")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """``churn`` (classes False/True) in production and 6 logged predictions of customers 0..5."""
    state = tmp_path / "state"
    with open_store(state) as store:
        register(store)
        store.models.promote("churn", 1)
        store.predictions.append(
            [
                PredictionRow(
                    f"p{i}",
                    "churn",
                    1,
                    T0 + timedelta(days=i),
                    {"x": 0.1, "group": "a", "customer": i},
                    {"prediction": True},
                    1.0,
                )
                for i in range(6)
            ]
        )
    return state


def invoke(home: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["feedback", *args, "--home", str(home)])
    return result.exit_code, result.output


def labels_in(home: Path) -> dict[str, object]:
    with open_store(home) as store:
        return {pid: label.label for pid, label in store.feedback.get("churn", [f"p{i}" for i in range(9)]).items()}


def test_load_a_csv_by_model_then_again_idempotently(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("pid,truth\np0,true\np1,False\np2,\np8,True\n")  # p2: no label yet; p8: not logged (yet)
    code, out = invoke(home, "load", "--model", "churn", str(path), "--id-column", "pid", "--label-column", "truth")
    assert code == 0, out
    assert "3 new, 0 updated, 0 unchanged" in out and "1 without a label" in out
    assert labels_in(home) == {"p0": True, "p1": False, "p8": True}
    code, out = invoke(
        home, "load", "--model", "churn", str(path), "--id-column", "pid", "--label-column", "truth", "--json"
    )
    assert code == 0 and json.loads(out)["unchanged"] == 3


def test_load_by_pipeline_and_its_errors(home: Path, tmp_path: Path) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(PIPELINE)
    path = tmp_path / "labels.parquet"
    pl.DataFrame({"pid": ["p3", "p4"], "truth": [True, "maybe"]}, strict=False).write_parquet(path)
    code, out = invoke(home, "load", str(pipeline), str(path), "--id-column", "pid", "--label-column", "truth")
    assert code == 1 and "row 2, column 'truth': 'maybe' is not a class of this model" in out
    code, out = invoke(home, "load", str(pipeline), str(path), "--id-column", "id", "--label-column", "truth")
    assert code == 1 and "column 'id' is not in" in out and "Did you mean 'pid'?" in out
    code, out = invoke(home, "load", str(path), "--id-column", "pid", "--label-column", "truth")
    assert code == 2 and "name the model once" in out
    code, out = invoke(home, "load", "--model", "nope", str(path), "--id-column", "pid", "--label-column", "truth")
    assert code == 1 and "model 'nope' has no production version" in out


def test_sync_labels_predictions_from_the_pipelines_label_source(home: Path, tmp_path: Path) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(PIPELINE)
    outcomes = pl.DataFrame(
        {
            "customer": [0, 1, 2, 2, 2],
            "churned": [True, False, False, True, False],
            "observed": [T0 + timedelta(days=d) for d in (10, -5, 1, 3, 4)],  # customer 1's outcome predates p1
        }
    )
    with open_store(home) as store:
        put_dataset(store, "outcomes", outcomes)
        store.feedback.put("churn", [Label("p0", False)], source="http")
    code, out = invoke(home, "sync", str(pipeline), "--json")
    assert code == 0, out
    result = json.loads(out)
    assert (result["rows"], result["stored"], result["skipped"]) == (5, 1, 4)  # p0 was labelled already
    assert labels_in(home) == {"p0": False, "p2": True}  # p2: the first outcome of customer 2 at or after it
    code, out = invoke(home, "sync", str(pipeline), "--json")
    assert json.loads(out)["stored"] == 0


def test_sync_without_a_label_source_says_how_to_add_one(home: Path, tmp_path: Path) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        PIPELINE.replace("  labels: {dataset: outcomes, key: customer, label: churned, time: observed}\n", "")
    )
    code, out = invoke(home, "sync", str(pipeline))
    assert code == 2 and "has no 'monitor.labels' section" in out
