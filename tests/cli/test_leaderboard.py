"""`loopline run` shows the leaderboard of its select steps; `loopline models leaderboard` rebuilds one."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from loopline.cli import app

runner = CliRunner()

PIPELINE = """
name: board
params: {seed: 0}
steps:
  data: {type: file, path: data.csv}
  split: {type: split, inputs: [data], target: label, method: random, seed: "${params.seed}"}
  linear:
    type: train
    inputs: [split.train, split.valid, split.test]
    target: label
    numeric: [x, z]
    categorical: [group]
    estimator: logistic_regression
    threads: 1
    cv: {folds: 3}
  boost:
    type: train
    inputs: [split.train, split.valid, split.test]
    target: label
    numeric: [x, z]
    categorical: [group]
    estimator: hist_gradient_boosting
    threads: 1
    early_stopping: {patience: 3}
  best: {type: select, inputs: [linear, boost, split.test], model: toy, metric: roc_auc}
"""


@pytest.fixture
def project(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    rng = np.random.default_rng(0)
    rows = 500
    x, group = rng.normal(size=rows), rng.choice(["a", "b"], size=rows)
    label = (x + (group == "a") + rng.normal(scale=0.7, size=rows)) > 0.5
    pl.DataFrame({"x": x, "z": rng.normal(size=rows), "group": group, "label": label}).write_csv(tmp_path / "data.csv")
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / ".loopline"))
    monkeypatch.setenv("LOOPLINE_STORE_URL", store_url)
    return tmp_path


def invoke(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def as_json(*args: str) -> Any:
    return json.loads(invoke(*args, "--json"))


def test_run_prints_the_leaderboard_after_the_steps(project: Path) -> None:
    text = invoke("run", "pipeline.yaml")
    assert text.index("│ best ") < text.index("leaderboard toy (best) — ranked by valid roc_auc")
    lines = [line for line in text.splitlines() if re.match(r"│ [12] ", line)]
    assert len(lines) == 2 and "best promoted" in lines[0]
    assert "±" in text  # the cross-validated candidate's mean ± std
    assert re.search(r"│ \d+ (converged|max_iterations)", text)  # how the boosted fit stopped
    assert "promoted v" in text and "no production model yet" in text


def test_run_json_carries_the_leaderboard(project: Path) -> None:
    out = as_json("run", "pipeline.yaml")
    board = out["leaderboards"]["best"]
    assert board["model"] == "toy" and board["metric"] == "roc_auc" and board["promoted"] == board["best"]
    scores = [row["valid"] for row in board["rows"]]
    assert scores == sorted(scores, reverse=True) and board["rows"][0]["version"] == board["best"]
    assert {row["algorithm"] for row in board["rows"]} == {"logistic_regression", "hist_gradient_boosting"}


def test_models_leaderboard_ranks_the_latest_run_or_the_one_named(project: Path) -> None:
    first = as_json("run", "pipeline.yaml")
    second = as_json("run", "pipeline.yaml", "--param", "seed=1")
    latest = as_json("models", "leaderboard", "toy")
    assert latest["run_id"] == second["run_id"] and latest["metric"] == "roc_auc"
    assert [r["version"] for r in latest["rows"]] == [r["version"] for r in second["leaderboards"]["best"]["rows"]]
    assert {r["stage"] for r in latest["rows"]} <= {"production", "candidate", "archived"}

    earlier = as_json(
        "models", "leaderboard", "toy", "--run", first["run_id"], "--metric", "log_loss", "--split", "test"
    )
    assert {r["version"] for r in earlier["rows"]} == {1, 2} and earlier["split"] == "test"
    losses = [r["test"] for r in earlier["rows"]]
    assert losses == sorted(losses)  # log loss: lower is better

    text = invoke("models", "leaderboard", "toy", "--split", "cv")
    assert f"run {second['run_id']} — ranked by cv roc_auc" in text
    assert re.search(r"│ 1 │ +\d+ │ logistic_regression", text)  # the only candidate with cv metrics ranks first


def test_models_leaderboard_errors_say_what_to_do(project: Path) -> None:
    invoke("run", "pipeline.yaml")
    assert "Use --metric with one of:" in invoke("models", "leaderboard", "toy", "--metric", "rmse", code=1)
    assert "Invalid value for '--split'" in invoke("models", "leaderboard", "toy", "--split", "train", code=2)


def test_show_prints_the_cv_metrics_and_folds(project: Path) -> None:
    invoke("run", "pipeline.yaml")
    version = next(
        r for r in as_json("models", "leaderboard", "toy")["rows"] if r["algorithm"] == "logistic_regression"
    )
    text = invoke("models", "show", "toy", "--version", str(version["version"]))
    assert re.search(r"metric\s+┃ cv\s+┃ test", text)
    assert "cross-validation: 3 stratified folds, seed 0" in text
    assert re.search(r"│ std\s+│", text) and re.search(r"│ 3\s+│", text)


LEAKY = """
name: leaky
steps:
  data: {type: file, path: data.csv}
  split: {type: split, inputs: [data], target: label, method: random}
  linear:
    type: train
    inputs: [split.train, split.valid, split.test]
    target: label
    numeric: [x, late]
    categorical: [group]
    estimator: logistic_regression
    threads: 1
  best: {type: select, inputs: [linear, split.test], model: leaky, metric: roc_auc}
"""


def test_run_flags_a_target_derived_feature_and_says_how_to_allow_it(project: Path) -> None:
    label = pl.read_csv("data.csv")["label"].to_numpy()
    pl.read_csv("data.csv").with_columns(pl.Series("late", np.where(label, 25.0, 0.0))).write_csv("data.csv")
    Path("leaky.yaml").write_text(LEAKY)
    text = invoke("run", "leaky.yaml")
    assert "flags" in text and "leak late" in text
    assert "v1 leak late: feature 'late' alone predicts the target" in " ".join(text.split())
    assert "nothing promoted: v1 is suspicious, not promoted" in text
    assert "steps.best.allow_suspicious: true" in " ".join(text.split())
    (row,) = as_json("models", "leaderboard", "leaky")["rows"]
    assert {(f["kind"], f["feature"]) for f in row["findings"]} >= {("target_leakage", "late")}
    assert "leak late" in invoke("models", "leaderboard", "leaky")
    assert "v1 leak late: feature 'late' alone predicts" in " ".join(invoke("models", "show", "leaky").split())
