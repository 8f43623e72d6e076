"""``loopline tune PIPELINE STEP`` and ``loopline studies list|show|delete``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from loopline.cli import app
from loopline.core import STEP_TYPES

runner = CliRunner()


@pytest.fixture(autouse=True)
def _tune_step() -> None:
    if "tune" not in STEP_TYPES:  # before the package is reinstalled with its entry point
        from loopline.run.steps._tune import Tune

        STEP_TYPES.register("tune", Tune())


def write_pipeline(tmp_path: Path) -> Path:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(900, 2))
    frame = pl.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": x[:, 0] + rng.normal(scale=0.8, size=900) > 0})
    frame.write_parquet(tmp_path / "data.parquet")
    steps: dict[str, Any] = {
        "data": {"type": "file", "path": str(tmp_path / "data.parquet")},
        "split": {"type": "split", "inputs": ["data"], "target": "y", "method": "random", "test_fraction": 0.1},
        "search": {
            "type": "tune",
            "inputs": ["split.train", "split.valid"],
            "target": "y",
            "numeric": ["a", "b"],
            "estimator": "logistic_regression",
            "space": {"model.C": {"float": [0.001, 10], "log": True}},
            "n_trials": 3,
            "model": "toy",
        },
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"name": "toy", "steps": steps}))
    return path


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_tune_runs_the_step_and_studies_show_it(tmp_path: Path) -> None:
    path, home = write_pipeline(tmp_path), str(tmp_path / "home")
    result = invoke("tune", str(path), "search", "--home", home, "--json")
    assert result.exit_code == 0, result.output
    out = (
        json.loads(result.output.strip().splitlines()[-1])
        if result.output.strip().startswith("{") is False
        else json.loads(result.output)
    )
    assert (
        out["study"]["name"] == "search" and out["trials"] == 3 and out["registered"] == {"model": "toy", "version": 1}
    )
    listed = invoke("studies", "list", "--home", home, "--json")
    rows = json.loads(listed.output)
    assert [(r["name"], r["trials"], r["metric"]) for r in rows] == [("search", 3, "roc_auc")]
    page = tmp_path / "study.html"
    shown = invoke("studies", "show", "search", "--home", home, "--html", str(page))
    assert shown.exit_code == 0 and "best: trial" in shown.output and "model.C" in shown.output
    html = page.read_text()
    assert html.count("data:image/png;base64,") == 3  # history, importances, per-set scores
    history = json.loads(html.split('<script type="application/json" id="history">')[1].split("</script>")[0])
    assert history["trial"] == [0, 1, 2] and history["best"] == [max(history["value"][: i + 1]) for i in range(3)]
    assert '"model.C": 1.0' in html  # the one parameter searched holds all the importance
    again = invoke("tune", str(path), "search", "--home", home, "--json")  # resumed: nothing left to run
    assert json.loads(again.output)["trials"] == 3
    assert invoke("studies", "delete", "search", "--home", home).exit_code == 0
    assert json.loads(invoke("studies", "list", "--home", home, "--json").output) == []


def test_tune_names_the_tune_steps_of_the_pipeline(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path)
    result = invoke("tune", str(path), "serach", "--home", str(tmp_path / "home"))
    assert result.exit_code == 2
    assert "no tune step 'serach'" in result.output and "search" in result.output
    shown = invoke("studies", "show", "nope", "--home", str(tmp_path / "home"))
    assert shown.exit_code == 2 and "no study 'nope'" in shown.output
