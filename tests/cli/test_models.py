"""`loopline models show`: the column lineage of a model trained with a transform chain; `models promote`
refuses a version that cannot be served."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from tests._candidates import refused_type_bundle
from typer.testing import CliRunner

from loopline.bundle import ModelBundle
from loopline.cli import app
from loopline.store import Store
from loopline.train import TrainSpec, train_candidate

runner = CliRunner()

PIPELINE = """
name: chained
steps:
  data: {type: file, path: data.csv}
  split: {type: split, inputs: [data], target: label, method: random}
  linear:
    type: train
    inputs: [split.train, split.valid]
    target: label
    numeric: [x, qty]
    categorical: [group]
    estimator: logistic_regression
    slices: [group]
    transforms:
      - {type: impute, columns: [x], strategy: median, add_indicator: true}
      - {type: derive, columns: {per_item: "x / (qty + 1)"}}
      - {type: onehot, columns: [group]}
  best: {type: select, inputs: [linear], model: toy, metric: roc_auc}
"""


def make_frame(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    x[rng.random(rows) < 0.1] = np.nan
    group = rng.choice(["a", "b", "c"], size=rows)
    label = (np.nan_to_num(x) + (group == "a") * 1.5 + rng.normal(scale=0.5, size=rows)) > 0.5
    return pl.DataFrame({"x": x, "qty": rng.integers(0, 5, rows), "group": group, "label": label}).with_columns(
        pl.col("x").fill_nan(None)
    )


@pytest.fixture
def project(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_frame(600, 0).write_csv(tmp_path / "data.csv")
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / ".loopline"))
    monkeypatch.setenv("LOOPLINE_STORE_URL", store_url)
    return tmp_path


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def show(*args: str) -> Any:
    return json.loads(invoke("models", "show", *args, "--json"))


def test_a_chained_model_shows_which_inputs_each_feature_comes_from(project: Path) -> None:
    assert json.loads(invoke("run", "pipeline.yaml", "--json"))["status"] == "succeeded"
    detail = show("toy")
    lineage = detail["lineage"]
    assert lineage["per_item"] == ["x", "qty"] and lineage["group=a"] == ["group"]
    assert lineage["x_missing"] == ["x"] and "group" not in lineage
    assert detail["config"]["lineage"] == lineage  # kept in the model record: no bundle to load

    text = invoke("models", "show", "toy")
    assert "column lineage" in text
    assert re.search(r"per_item\s*│\s*←\s*│\s*x, qty", text)
    assert re.search(r"group=a\s*│\s*←\s*│\s*group", text)


def test_a_model_without_recorded_lineage_still_shows(project: Path) -> None:
    train, valid = make_frame(300, 1), make_frame(100, 2)
    result = train_candidate(
        train,
        valid,
        TrainSpec(
            target="label",
            numeric=["x", "qty"],
            categorical=["group"],
            estimator="logistic_regression",
            transforms=[{"type": "derive", "columns": {"per_item": "x / (qty + 1)"}}],
        ),
    )
    assert result.bundle.metadata["lineage"]["per_item"] == ["x", "qty"]
    with Store.open() as store:  # registered as before lineage was kept: no "lineage" in its config
        store.models.register(
            name="old",
            algorithm="logistic_regression",
            bundle_digest=store.artifacts.put_bytes(result.bundle.to_bytes()),
            reference_digest=None,
            metrics=result.metrics,
            params=result.params,
            config={"features": {"numeric": ["x", "qty"], "categorical": ["group"]}},
            input_schema=result.bundle.input_schema,
            data_fingerprint="test",
            run_id=None,
            timings=result.timings,
        )
    assert show("old")["lineage"] is None
    assert "column lineage: not recorded" in invoke("models", "show", "old")


def test_show_prints_the_metrics_per_slice(project: Path) -> None:
    invoke("run", "pipeline.yaml")
    stored = show("toy")["config"]["slice_metrics"]["valid"]["group"]
    text = invoke("models", "show", "toy")
    assert "valid metrics by group" in text
    for value, stats in stored.items():
        assert re.search(rf"{value}\s+│\s+{stats['rows']}\s+│", text), (value, stats)


def test_promote_refuses_a_version_that_cannot_be_served(project: Path) -> None:
    invoke("run", "pipeline.yaml")
    with Store.open() as store:  # registered around the check, as an older loopline could
        first = store.models.get("toy", 1)
        bundle = ModelBundle.from_bytes(store.artifacts.get_bytes(first.bundle_digest))
        skip = {"version", "stage", "bundle_digest", "created_at", "promoted_at", "archived_at", "aliases"}
        fields = {k: v for k, v in vars(first).items() if k not in skip}
        refused = store.models.register(**fields, bundle_digest=store.artifacts.put_bytes(refused_type_bundle(bundle)))
    result = runner.invoke(app, ["models", "promote", "toy", str(refused.version)])
    assert result.exit_code == 1
    assert "error: model 'toy' version 2 cannot be served: the model bundle holds a 'sklearn.pipeline.Pipeline'" in (
        " ".join(result.output.split())
    )
    assert "Traceback" not in result.output
    assert show("toy")["stage"] == "candidate" and show("toy", "--version", "1")["stage"] == "production"
