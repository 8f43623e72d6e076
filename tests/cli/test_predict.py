"""`loopline predict`: batch scoring from the command line, equal to the bundle's whole-table scoring."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tests._candidates import frame, put_dataset
from typer.testing import CliRunner

from loopline.cli import app
from loopline.store import Store
from loopline.train import ModelBundle, TrainSpec, train_candidate

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A store with ``churn`` v1 in production and v2 a candidate."""
    state = tmp_path / "state"
    with Store.open(f"sqlite:///{state / 'loopline.db'}", state / "artifacts") as store:
        for seed in (1, 2):
            result = train_candidate(
                frame(300, seed),
                frame(100, seed + 10),
                TrainSpec(target="label", numeric=["x"], categorical=["group"], estimator="logistic_regression"),
            )
            store.models.register(
                name="churn",
                algorithm="logistic_regression",
                bundle_digest=store.artifacts.put_bytes(result.bundle.to_bytes()),
                reference_digest=None,
                metrics={},
                params={},
                config={},
                input_schema=result.bundle.input_schema,
                data_fingerprint="test",
                run_id=None,
                timings={},
            )
        store.models.promote("churn", 1)
        put_dataset(store, "customers", frame(500, 4).with_row_index("id"))
    return state


def bundle(home: Path, version: int) -> ModelBundle:
    with Store.open(f"sqlite:///{home / 'loopline.db'}", home / "artifacts") as store:
        digest = store.models.get("churn", version).bundle_digest
        return ModelBundle.from_bytes(store.artifacts.get_bytes(digest))


def predict(home: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["predict", "churn", *args, "--home", str(home)])
    return result.exit_code, result.output


def test_predict_writes_the_whole_table_scores(home: Path, tmp_path: Path) -> None:
    rows = frame(1_000, 3).with_row_index("id")
    rows.write_parquet(tmp_path / "in.parquet")
    code, output = predict(home, "-i", str(tmp_path / "in.parquet"), "-o", str(tmp_path / "out.csv"), "--keep", "id")
    assert code == 0, output
    assert "churn v1 scored 1,000 rows" in output
    out = pl.read_csv(tmp_path / "out.csv")
    assert out.columns == ["id", "prediction", "proba_False", "proba_True"]
    offline = bundle(home, 1).predict_table(rows)
    assert np.array_equal(out["proba_True"].to_numpy(), offline["probability"][:, 1])
    assert out["prediction"].to_list() == offline["prediction"].tolist()


def test_predict_json_version_chunks_and_dataset_input(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "scores.jsonl"
    code, output = predict(
        home,
        "--input",
        "dataset:customers@1",
        "--output",
        str(target),
        "--version",
        "2",
        "--chunk-rows",
        "100",
        "--json",
    )
    assert code == 0, output
    summary = json.loads(output)
    assert (summary["version"], summary["rows"], summary["chunks"], summary["input"]) == (
        2,
        500,
        4,  # 100 rows rounded up to 128
        "dataset:customers@1",
    )
    assert summary["output"] == str(target.resolve())
    scores = pl.read_ndjson(target)
    offline = bundle(home, 2).predict_table(frame(500, 4))
    assert np.array_equal(scores["proba_False"].to_numpy(), offline["probability"][:, 0])


def test_predict_refuses_to_overwrite_without_force(home: Path, tmp_path: Path) -> None:
    frame(50, 3).write_csv(tmp_path / "in.csv")
    (tmp_path / "out.parquet").write_bytes(b"precious")
    args = ["-i", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.parquet")]
    code, output = predict(home, *args)
    assert code == 2
    assert "already exists. Pass --force to overwrite it" in output
    assert (tmp_path / "out.parquet").read_bytes() == b"precious"
    code, output = predict(home, *args, "--force")
    assert code == 0, output
    assert pl.read_parquet(tmp_path / "out.parquet").height == 50


def test_predict_errors_name_the_fix(home: Path, tmp_path: Path) -> None:
    frame(50, 3).rename({"group": "groups"}).write_csv(tmp_path / "in.csv")
    code, output = predict(home, "-i", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.parquet"))
    assert code == 1
    assert "no column 'group'" in output and "Did you mean 'groups'?" in output
    code, output = predict(home, "-i", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.xlsx"))
    assert code == 2
    assert "cannot tell which format" in output
    result = runner.invoke(app, ["predict", "chrun", "-i", "x.csv", "-o", "y.csv", "--home", str(home)])
    assert result.exit_code == 1
    assert "model 'chrun' does not exist. Did you mean 'churn'?" in result.output
    code, output = predict(home, "-i", str(tmp_path / "in.csv"), "-o", str(home / "artifacts" / "s.csv"))
    assert code == 2
    assert "inside the artifact store" in output
    assert not (tmp_path / "out.parquet").exists()
