"""`loopline models show` lists the version's feature importance, heaviest first, or why there is none."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from loopline.cli import app

runner = CliRunner()

PIPELINE = """
name: weighed
steps:
  data: {type: file, path: data.csv}
  split: {type: split, inputs: [data], target: label, method: random}
  boost:
    type: train
    inputs: [split.train, split.valid]
    target: label
    numeric: [useless, strong]
    categorical: [group]
    estimator: hist_gradient_boosting
    importance_repeats: 2
  plain:
    type: train
    inputs: [split.train, split.valid]
    target: label
    numeric: [useless, strong]
    estimator: logistic_regression
    importance: false
  best: {type: select, inputs: [boost, plain], model: toy, metric: roc_auc}
"""


@pytest.fixture
def project(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    rng = np.random.default_rng(0)
    rows = 800
    strong, useless = rng.normal(size=(2, rows))
    group = rng.choice(["a", "b"], rows)
    label = strong + 0.8 * (group == "a") + rng.normal(scale=0.4, size=rows) > 0.4
    pl.DataFrame({"strong": strong, "useless": useless, "group": group, "label": label}).write_csv(
        tmp_path / "data.csv"
    )
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / ".loopline"))
    monkeypatch.setenv("LOOPLINE_STORE_URL", store_url)
    return tmp_path


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_show_lists_the_weights_heaviest_first(project: Path) -> None:
    assert json.loads(invoke("run", "pipeline.yaml", "--json"))["status"] == "succeeded"
    versions = {v["algorithm"]: v for v in json.loads(invoke("models", "list", "toy", "--json"))}
    boost, plain = versions["hist_gradient_boosting"], versions["logistic_regression"]
    detail = json.loads(invoke("models", "show", "toy", "--version", str(boost["version"]), "--json"))
    weights = detail["config"]["feature_importance"]
    assert set(weights) == {"strong", "useless", "group"} and sum(weights.values()) == pytest.approx(1.0)
    text = invoke("models", "show", "toy", "--version", str(boost["version"]))
    assert "feature importance (permutation, roc_auc drop on 160 valid rows x 2):" in " ".join(text.split())
    weighed = text[text.index("feature importance (") :]
    names = re.findall(r"^│ (strong|group|useless)\s", weighed, flags=re.MULTILINE)
    assert names == ["strong", "group", "useless"]
    off = invoke("models", "show", "toy", "--version", str(plain["version"]))
    assert "feature importance: not measured (importance: false" in off
