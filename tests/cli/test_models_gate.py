"""The deployment gate through the CLI: ``loopline run`` shows the verdict of the select step, a refused
challenger stays a candidate and ``loopline models show`` lists every check with its value and threshold;
``print_selection`` (``monitor --retrain``, the loop) shows the same table."""

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
from loopline.cli._loop import print_selection
from loopline.core.records import CandidateSummary, GateCheck, GateDecision, GateVerdict, Selection

runner = CliRunner()

PIPELINE = """
name: gated
steps:
  data: {{type: file, path: data.csv}}
  split: {{type: split, inputs: [data], target: label, method: random}}
  lin:
    type: train
    inputs: [split.train, split.valid]
    target: label
    numeric: [{numeric}]
    categorical: [group]
    estimator: logistic_regression
  best:
    type: select
    inputs: [lin, split.test]
    model: toy
    metric: roc_auc
    gate:
      metrics: {{roc_auc: {{min_improvement: 0.0}}, log_loss: {{max_regression: 0.05}}}}
      floors: {{roc_auc: {floor}}}
      budgets: {{latency_p99_ms: 1000, bundle_mb: 50}}
"""


def plain(text: str) -> str:
    return " ".join(re.sub("[\u2500-\u257f]", " ", text).split())


def make_frame(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x, noise = rng.normal(size=rows), rng.normal(size=rows)
    group = rng.choice(["a", "b"], size=rows)
    label = (x + (group == "a") * 0.5 + rng.normal(scale=0.6, size=rows)) > 0.3
    return pl.DataFrame({"x": x, "noise": noise, "group": group, "label": label})


@pytest.fixture
def project(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_frame(800, 0).write_csv(tmp_path / "data.csv")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / ".loopline"))
    monkeypatch.setenv("LOOPLINE_STORE_URL", store_url)
    return tmp_path


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def run(project: Path, numeric: str, floor: float) -> Any:
    (project / "pipeline.yaml").write_text(PIPELINE.format(numeric=numeric, floor=floor))
    out = json.loads(invoke("run", "pipeline.yaml", "--json"))
    assert out["status"] == "succeeded"
    return out


def test_a_refused_challenger_shows_every_check_and_stays_a_candidate(project: Path) -> None:
    run(project, "noise", 0.5)  # v1: the group alone (noise adds nothing); no champion: the floors hold
    text = invoke("run", "pipeline.yaml")
    assert "deployment gate" not in text  # nothing new to decide: the same bundle is v1 again
    run(project, "x, noise", 0.999)  # v2: much better, but under an unreachable floor
    models = json.loads(invoke("models", "list", "--json"))
    stages = {m["version"]: m["stage"] for m in models}
    assert stages == {1: "production", 2: "candidate"}

    shown = json.loads(invoke("models", "show", "toy", "--version", "2", "--json"))
    verdict = shown["config"]["gate"]
    assert verdict["passed"] is False and verdict["champion"] == 1 and verdict["challenger"] == 2
    checks = {c["name"]: c for c in verdict["checks"]}
    assert list(checks) == [
        "roc_auc margin",
        "log_loss margin",
        "roc_auc floor",
        "latency_p99_ms",
        "bundle_mb",
        "infra_validation",
    ]
    assert checks["roc_auc floor"]["passed"] is False and checks["roc_auc floor"]["threshold"] == 0.999
    assert checks["roc_auc margin"]["passed"] is True and checks["infra_validation"]["passed"] is True
    assert checks["latency_p99_ms"]["passed"] is True and checks["latency_p99_ms"]["champion"] is not None

    text = plain(invoke("models", "show", "toy", "--version", "2"))
    assert "deployment gate: v2 vs champion v1 on holdout_" in text and "— refused" in text
    assert re.search(r"roc_auc floor FAILED 0\.\d+ 0\.999", text)
    assert "infra_validation passed" in text and "reproduced bit for bit" in text


def test_print_selection_shows_the_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    checks = (
        GateCheck("roc_auc margin", "margin", True, 0.8, 0.75, 0.75, "0.8000 vs champion 0.7500"),
        GateCheck("bundle_mb", "budget", False, 2.0, 1.0, 1.5, "2.000 MB (champion 1.500 MB), budget 1 MB"),
    )
    verdict = GateVerdict(4, 3, checks, "holdout_abc (100 rows)")
    gate = GateDecision(False, "refused", "roc_auc", 0.75, 0.8, 0.0, 3, 4, verdict=verdict)
    chosen = Selection(
        model="m",
        candidates=(CandidateSummary(4, "logistic_regression", {"valid": {"roc_auc": 0.8}}),),
        best=4,
        promote=False,
        reason=f"v4 refused by the deployment gate (1 of 2 checks failed: {verdict.reasons()})",
        gate=gate,
        metric="roc_auc",
    )
    assert Selection.from_dict(json.loads(json.dumps(chosen.to_dict()))) == chosen
    print_selection(chosen)
    out = plain(capsys.readouterr().out)
    assert "deployment gate: v4 vs champion v3 on holdout_abc (100 rows) — refused" in out
    assert "bundle_mb FAILED 2.0 1.0 1.5" in out or "bundle_mb FAILED 2 1 1.5" in out
    assert "v4: not promoted — v4 refused by the deployment gate (1 of 2 checks failed: bundle_mb: 2.000 MB" in out
