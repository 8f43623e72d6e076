"""`loopline init`: every template is a complete, valid pipeline; the CSV one runs end to end."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopline import load_pipeline
from loopline.cli import app
from loopline.cli._templates import templates

SCRIPTS = Path(__file__).parents[2] / "scripts"

runner = CliRunner()
WANTED = {"pipeline", "csv-classification", "postgres-regression", "mqtt-classification", "quickstart"}


def test_init_lists_the_templates() -> None:
    result = runner.invoke(app, ["init", "--list"])
    assert result.exit_code == 0, result.output
    assert set(templates()) >= WANTED
    for name in WANTED:
        assert name in result.output


@pytest.mark.parametrize("name", sorted(WANTED))
def test_every_template_is_valid_and_complete(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each loads and validates, declares the retrain window, and monitors the model its select step promotes."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init", "p.yaml", "--template", name])
    assert result.exit_code == 0, result.output
    pipeline = load_pipeline(tmp_path / "p.yaml")
    bound = pipeline.bind()
    assert pipeline.monitor is not None, f"{name} has no monitor: section"
    assert {"start", "valid_from", "test_from", "end"} <= set(pipeline.params)
    selects = [b.config for b in bound.values() if b.spec.type == "select"]
    assert [s.model for s in selects] == [pipeline.monitor.model]  # type: ignore[attr-defined]
    assert selects[0].metric == pipeline.monitor.retrain.metric  # type: ignore[attr-defined]


def test_an_unknown_template_gets_a_did_you_mean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init", "p.yaml", "--template", "csv-clasification"])
    assert result.exit_code == 2 and "Did you mean 'csv-classification'?" in result.output
    assert not (tmp_path / "p.yaml").exists()


def churn_files(folder: Path, rows: int = 2000) -> None:
    """Customers over January-May 2024 in two CSV exports, with the template's columns: the generator CI's plain
    install check uses too (scripts/plain_install_checks.py runs outside the test tree, so it holds it)."""
    spec = importlib.util.spec_from_file_location("plain_install_checks", SCRIPTS / "plain_install_checks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_churn_csvs(folder, rows)


@pytest.mark.slow
def test_the_csv_template_runs_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("LOOPLINE_HOME", "LOOPLINE_STORE_URL", "LOOPLINE_ARTIFACTS_URL"):
        monkeypatch.delenv(name, raising=False)
    assert runner.invoke(app, ["init", "--template", "csv-classification"]).exit_code == 0
    churn_files(tmp_path / "data" / "customers")
    result = runner.invoke(app, ["run", "pipeline.yaml", "--json"])
    assert result.exit_code == 0, result.output
    models = json.loads(runner.invoke(app, ["models", "list", "--json"]).output)
    assert [m["stage"] for m in models if m["name"] == "churn"].count("production") == 1
    best = next(m for m in models if m["stage"] == "production")
    assert best["metrics"]["valid"]["roc_auc"] > 0.7
