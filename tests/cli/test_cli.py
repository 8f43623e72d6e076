"""The command line, end to end on small data: init, run, runs, models, schema, monitor, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from loopline.cli import app

runner = CliRunner()

PIPELINE = """
name: toy
params: {start: "2024-01-01", valid_from: "2024-03-01", test_from: "2024-03-15", end: "2024-04-01"}
steps:
  data: {type: file, path: data.csv, parse_dates: [t]}
  window:
    type: derive
    inputs: [data]
    window: {column: t, start: "${params.start}", end: "${params.end}"}
  split:
    type: split
    inputs: [window]
    target: label
    time_column: t
    valid_from: "${params.valid_from}"
    test_from: "${params.test_from}"
  linear:
    type: train
    inputs: [split.train, split.valid, split.test]
    target: label
    numeric: [x]
    categorical: [group]
    estimator: logistic_regression
  forest:
    type: train
    inputs: [split.train, split.valid, split.test]
    target: label
    numeric: [x]
    categorical: [group]
    estimator: random_forest
    params: {n_estimators: 20}
  best: {type: select, inputs: [linear, forest, split.test], model: toy, metric: roc_auc}
monitor:
  model: toy
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rng = np.random.default_rng(0)
    rows = 3000
    t = pl.datetime_range(pl.datetime(2024, 1, 1), pl.datetime(2024, 6, 30), interval="1h", eager=True)[:rows]
    x = rng.normal(size=rows) + np.linspace(0, 3, rows)  # drifts upward over time
    group = rng.choice(["a", "b"], size=rows)
    label = (x - np.linspace(0, 3, rows) + (group == "a") + rng.normal(scale=0.5, size=rows)) > 0.5
    pl.DataFrame({"t": t.dt.strftime("%Y-%m-%dT%H:%M:%SZ"), "x": x, "group": group, "label": label}).write_csv(
        tmp_path / "data.csv"
    )
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / ".loopline"))
    monkeypatch.delenv("LOOPLINE_STORE_URL", raising=False)
    return tmp_path


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_run_then_inspect_runs_and_models(project: Path) -> None:
    out = json.loads(invoke("run", "pipeline.yaml", "--json"))
    assert out["status"] == "succeeded"
    assert set(out["steps"]) == {"data", "window", "split", "linear", "forest", "best"}
    runs = json.loads(invoke("runs", "list", "--json"))
    assert runs[0]["run_id"] == out["run_id"]
    shown = json.loads(invoke("runs", "show", out["run_id"], "--json"))
    assert {s["step"] for s in shown["steps"]} == set(out["steps"])
    models = json.loads(invoke("models", "list", "--json"))
    assert sorted(m["version"] for m in models) == [1, 2]
    assert [m["stage"] for m in models].count("production") == 1
    detail = json.loads(invoke("models", "show", "toy", "--version", "1", "--json"))
    assert {"train", "valid", "test"} <= set(detail["metrics"])
    assert [f["name"] for f in detail["input_schema"]] == ["x", "group"]
    assert detail["config"]["resolved"]["estimator"] in ("logistic_regression", "random_forest")


def test_promote_and_rollback(project: Path) -> None:
    invoke("run", "pipeline.yaml", "--json")
    production = next(m for m in json.loads(invoke("models", "list", "--json")) if m["stage"] == "production")
    other = 3 - production["version"]
    assert json.loads(invoke("models", "promote", "toy", str(other), "--json"))["stage"] == "production"
    assert json.loads(invoke("models", "rollback", "toy", "--json"))["version"] == production["version"]


def test_second_run_is_cached(project: Path) -> None:
    invoke("run", "pipeline.yaml", "--json")
    again = json.loads(invoke("run", "pipeline.yaml", "--json"))
    assert {n: s["status"] for n, s in again["steps"].items() if n != "best"} == {
        "data": "cached",
        "window": "cached",
        "split": "cached",
        "linear": "cached",
        "forest": "cached",
    }


def test_params_override_from_the_command_line(project: Path) -> None:
    out = json.loads(invoke("run", "pipeline.yaml", "--param", "end=2024-03-20", "--to", "window", "--json"))
    assert set(out["steps"]) == {"data", "window"}
    assert json.loads(invoke("runs", "show", out["run_id"], "--json"))["params"]["end"] == "2024-03-20"


def test_failed_run_resumes(project: Path) -> None:
    (project / "data.csv").rename(project / "later.csv")
    failed = runner.invoke(app, ["run", "pipeline.yaml", "--json"])
    assert failed.exit_code == 1
    run_id = json.loads(failed.output)["run_id"]
    assert "does not exist" in json.loads(failed.output)["error"]
    (project / "later.csv").rename(project / "data.csv")
    resumed = json.loads(invoke("run", "--resume", run_id, "--json"))
    assert resumed["run_id"] == run_id and resumed["status"] == "succeeded"


def test_monitor_finds_drift_in_logged_traffic_and_retrains(project: Path) -> None:
    from fastapi.testclient import TestClient

    from loopline.serve import ServeSettings, create_app
    from loopline.store import Store

    invoke("run", "pipeline.yaml", "--json")
    traffic = pl.read_csv(project / "data.csv").tail(600).select(["x", "group"]).to_dicts()
    store = Store.open()
    with TestClient(create_app(store, ServeSettings(refresh_interval=60))) as client:
        assert client.post("/predict/toy", json=traffic).status_code == 200
    store.close()
    report = project / "report.html"
    out = json.loads(
        invoke("monitor", "pipeline.yaml", "--retrain", "--end", "2024-05-01", "--report", str(report), "--json")
    )
    drifted = {f["feature"] for f in out["drift"]["features"] if f["drifted"]}
    assert "x" in drifted
    assert out["retrain"]["retrain"] is True
    assert out["selection"]["model"] == "toy" and len(out["selection"]["candidates"]) == 2
    assert report.read_text().count("<img") >= 1

    windowed = json.loads(
        invoke("monitor", "pipeline.yaml", "--window", "300", "--retrain", "--end", "2024-05-01", "--json")
    )
    assert [w["health"]["rows"] for w in windowed["closed"]] == [300, 300]
    assert "x" in windowed["closed"][-1]["drift"]["drifted"] and windowed["retrain"]["retrain"] is True
    assert windowed["selection"]["model"] == "toy"


def test_init_and_schema(project: Path) -> None:
    invoke("init", "new.yaml")
    assert "name: my-pipeline" in (project / "new.yaml").read_text()
    again = runner.invoke(app, ["init", "new.yaml"])
    assert again.exit_code == 2 and "--force" in again.output
    schema = json.loads(invoke("schema"))
    assert "steps" in schema["properties"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "missing.yaml"], "does not exist"),
        (["models", "show", "tox"], "model 'tox' does not exist"),
        (["runs", "show", "0123"], "loopline runs list"),
        (["run", "pipeline.yaml", "--param", "oops"], "NAME=VALUE"),
        (["run"], "name a pipeline file"),
    ],
)
def test_errors_are_one_clear_line(project: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code in (1, 2)
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_a_column_the_config_names_but_the_data_lacks(project: Path) -> None:
    text = (project / "pipeline.yaml").read_text().replace("numeric: [x]", "numeric: [xx]", 1)
    (project / "bad.yaml").write_text(text)
    result = runner.invoke(app, ["run", "bad.yaml", "--json"])
    assert result.exit_code == 1
    error = json.loads(result.output)["error"]
    assert "'xx'" in error and "Did you mean 'x'" in error
