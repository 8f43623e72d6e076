"""`loopline models compare|evaluate|export` on real stores (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from _candidates import frame, put_dataset, register
from loopline.cli import app
from loopline.store import Store
from loopline.train import ModelBundle

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / ".loopline"))
    monkeypatch.setenv("LOOPLINE_STORE_URL", store_url)
    with Store.open() as store:
        register(store)
        register(store, {"C": 0.01})
    return tmp_path


def invoke(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_compare_shows_the_changed_param_and_the_metric_deltas(home: Path) -> None:
    detail = json.loads(invoke("models", "compare", "churn", "1", "2", "--json"))
    with Store.open() as store:
        first, second = store.models.get("churn", 1), store.models.get("churn", 2)
    changed = [p["param"] for p in detail["params"] if p["changed"]]
    assert changed == ["C"]
    auc = next(m for m in detail["metrics"] if (m["split"], m["metric"]) == ("valid", "roc_auc"))
    delta = second.metrics["valid"]["roc_auc"] - first.metrics["valid"]["roc_auc"]
    assert auc["delta"] == pytest.approx(delta)

    text = invoke("models", "compare", "churn", "1", "2")
    assert re.search(r"\*\s*│\s*C\s*│\s*-\s*│\s*0\.01", text)
    verdict = "better" if delta > 0 else "worse" if delta < 0 else "same"
    assert re.search(rf"valid\s*│\s*roc_auc\s*│.*│\s*{re.escape(f'{delta:+.4g}')}\s*│\s*{verdict}", text)
    assert "logistic_regression" in text and "fp" in text


def test_compare_names_a_missing_version(home: Path) -> None:
    result = runner.invoke(app, ["models", "compare", "churn", "1", "9"])
    assert result.exit_code == 1 and "has no version 9" in result.output


def test_evaluate_records_the_metrics_and_show_displays_them(home: Path) -> None:
    fresh = frame(120, 5)
    with Store.open() as store:
        put_dataset(store, "fresh", fresh)
        expected = ModelBundle.from_bytes(store.artifacts.get_bytes(store.models.get("churn", 1).bundle_digest))

    [result] = json.loads(invoke("models", "evaluate", "churn", "--version", "1", "--data", "fresh", "--json"))

    assert result["key"] == "eval:fresh@v1" and result["metrics"] == pytest.approx(expected.evaluate(fresh))
    shown = json.loads(invoke("models", "show", "churn", "--version", "1", "--json"))
    assert shown["metrics"]["eval:fresh@v1"] == pytest.approx(expected.evaluate(fresh))
    assert "eval:fresh@v1" in invoke("models", "show", "churn", "--version", "1")
    assert "recorded as eval:fresh@v1" in invoke("models", "evaluate", "churn", "--all", "--data", "fresh")


def test_evaluate_on_a_dataset_without_the_target_fails_clearly(home: Path) -> None:
    with Store.open() as store:
        put_dataset(store, "unlabelled", frame(40, 5).drop("label"))
    result = runner.invoke(app, ["models", "evaluate", "churn", "--data", "unlabelled"])
    assert result.exit_code == 1 and "has no column 'label'" in result.output


def test_export_round_trips_and_needs_force_to_overwrite(home: Path) -> None:
    out = home / "model.zip"
    done = json.loads(invoke("models", "export", "churn", "--version", "1", "--out", "model.zip", "--json"))
    assert Path(done["bundle"]) == out and Path(done["card"]) == home / "model.zip.card.json"
    with Store.open() as store:
        stored = ModelBundle.from_bytes(store.artifacts.get_bytes(store.models.get("churn", 1).bundle_digest))
    rows = frame(20, 8)
    exported = ModelBundle.from_bytes(out.read_bytes())
    assert np.array_equal(exported.predict_table(rows)["probability"], stored.predict_table(rows)["probability"])

    refused = runner.invoke(app, ["models", "export", "churn", "--out", "model.zip"])
    assert refused.exit_code == 2 and "Pass --force" in refused.output
    invoke("models", "export", "churn", "--out", "model.zip", "--force")
    assert json.loads((home / "model.zip.card.json").read_text())["version"] == 2


PIPELINE = """
name: ingested
steps:
  orders: {type: ingest, source: {type: file, path: "data.csv"}}
  split: {type: split, inputs: [orders], target: label, method: random}
  linear:
    type: train
    inputs: [split.train, split.valid]
    target: label
    numeric: [x]
    categorical: [group]
    estimator: logistic_regression
    params: {C: "${params.c}"}
  best: {type: select, inputs: [linear], model: ingested, metric: roc_auc}
params: {c: 1.0}
"""


def test_compare_shows_the_dataset_versions_each_version_was_trained_on(home: Path) -> None:
    frame(400, 3).write_csv(home / "data.csv")
    (home / "pipeline.yaml").write_text(PIPELINE)
    assert json.loads(invoke("run", "pipeline.yaml", "--json"))["status"] == "succeeded"
    frame(100, 4).write_csv(home / "more.csv")
    (home / "pipeline.yaml").write_text(PIPELINE.replace("data.csv", "*.csv"))
    assert json.loads(invoke("run", "pipeline.yaml", "--param", "c=0.05", "--json"))["status"] == "succeeded"

    detail = json.loads(invoke("models", "compare", "ingested", "1", "2", "--json"))

    assert detail["a"]["data_versions"] == [{"dataset": "orders", "version": 1}]
    assert detail["b"]["data_versions"] == [{"dataset": "orders", "version": 2}]
    assert [p["param"] for p in detail["params"] if p["changed"]] == ["C"]
    assert re.search(
        r"data versions\s*│\s*orders v1\s*│\s*orders v2", invoke("models", "compare", "ingested", "1", "2")
    )
