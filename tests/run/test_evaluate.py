"""Re-scoring, comparing and exporting stored model versions (run layer), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from _candidates import frame, put_dataset, register
from loopline.core.errors import ConfigError, DataError, NotFoundError
from loopline.run import compare_models, evaluate_models, evaluation_key, export_model
from loopline.store import Store
from loopline.store.models import ModelVersion
from loopline.train import ModelBundle


def bundle_of(store: Store, found: ModelVersion) -> ModelBundle:
    return ModelBundle.from_bytes(store.artifacts.get_bytes(found.bundle_digest))


def test_evaluate_records_the_metrics_of_the_bundle_on_the_dataset_version(store: Store) -> None:
    first = register(store)
    second = register(store, params={"C": 0.01})
    fresh = frame(200, 7)
    dataset_version = put_dataset(store, "fresh", fresh)

    results = evaluate_models(store, "churn", "fresh", all_versions=True)

    key = evaluation_key("fresh", dataset_version)
    assert [r.version for r in results] == [first.version, second.version] and key == "eval:fresh@v1"
    for found, result in zip([first, second], results, strict=True):
        expected = bundle_of(store, found).evaluate(fresh)
        assert result.metrics == expected and result.rows == 200
        assert store.models.get("churn", found.version).metrics[key] == pytest.approx(expected)
        assert store.models.get("churn", found.version).metrics["valid"] == found.metrics["valid"]  # kept


def test_evaluate_defaults_to_the_latest_version_and_takes_a_dataset_version(store: Store) -> None:
    register(store)
    latest = register(store, params={"C": 0.01})
    put_dataset(store, "fresh", frame(50, 3))
    put_dataset(store, "fresh", frame(80, 4))  # version 2 holds both parts

    [result] = evaluate_models(store, "churn", "fresh", dataset_version=1)

    assert (result.version, result.dataset_version, result.rows) == (latest.version, 1, 50)
    assert set(store.models.get("churn", 1).metrics) == {"train", "valid"}  # not evaluated


def test_evaluate_refuses_a_dataset_without_the_target_column(store: Store) -> None:
    register(store)
    put_dataset(store, "unlabelled", frame(50, 3).drop("label"))

    with pytest.raises(DataError, match=r"no column 'label', the target of model 'churn' v1") as info:
        evaluate_models(store, "churn", "unlabelled")
    assert info.value.column == "label"
    assert set(store.models.get("churn").metrics) == {"train", "valid"}


def test_evaluate_names_a_missing_model_or_dataset(store: Store) -> None:
    with pytest.raises(NotFoundError, match="model 'churn' does not exist"):
        evaluate_models(store, "churn", "fresh", all_versions=True)
    register(store)
    with pytest.raises(NotFoundError, match="fresh"):
        evaluate_models(store, "churn", "fresh")


def test_compare_marks_changed_params_and_judges_metric_deltas(store: Store) -> None:
    first = register(store)
    second = register(store, params={"C": 0.01})

    result = compare_models(store, "churn", 1, 2)

    params = {p["param"]: p for p in result["params"]}
    assert "C" not in first.params  # the default: not set, so absent from the first version's params
    assert params["C"]["changed"] and (params["C"]["a"], params["C"]["b"]) == (None, 0.01)
    assert params["max_iter"] == {"param": "max_iter", "a": 1000, "b": 1000, "changed": False}
    assert not any(p["changed"] for name, p in params.items() if name != "C")
    rows = {(m["split"], m["metric"]): m for m in result["metrics"]}
    auc, loss = rows[("valid", "roc_auc")], rows[("valid", "log_loss")]
    assert auc["delta"] == pytest.approx(second.metrics["valid"]["roc_auc"] - first.metrics["valid"]["roc_auc"])
    assert auc["verdict"] == ("better" if auc["delta"] > 0 else "worse" if auc["delta"] < 0 else "same")
    assert loss["verdict"] == ("worse" if loss["delta"] > 0 else "better" if loss["delta"] < 0 else "same")
    assert result["a"]["algorithm"] == "logistic_regression" and result["b"]["data_fingerprint"] == "fp"


def test_export_writes_the_bundle_and_a_card_and_round_trips(store: Store, tmp_path: Path) -> None:
    found = register(store)
    out = tmp_path / "sub" / ".." / "model.zip"
    (tmp_path / "sub").mkdir()

    done = export_model(store, "churn", out)

    assert done.bundle == tmp_path / "model.zip" and done.card == tmp_path / "model.zip.card.json"
    exported = ModelBundle.from_bytes(done.bundle.read_bytes())
    rows = frame(30, 9)
    assert np.array_equal(
        exported.predict_table(rows)["probability"], bundle_of(store, found).predict_table(rows)["probability"]
    )
    card = json.loads(done.card.read_text())
    assert card["bundle"] == {"file": "model.zip", "sha256": found.bundle_digest}
    assert card["metrics"] == found.metrics and card["params"] == found.params
    assert card["input_schema"] == found.input_schema and card["target"] == "label"
    assert {"loopline", "numpy", "skops"} <= set(card["library_versions"])
    assert card["training"]["rows"] == {"train": 300, "valid": 100}
    assert not list(tmp_path.glob(".model.zip*"))  # no temporary file left behind


def test_export_refuses_to_overwrite_without_force(store: Store, tmp_path: Path) -> None:
    register(store)
    register(store, params={"C": 0.01})
    out = tmp_path / "model.zip"
    export_model(store, "churn", out, version=1)

    with pytest.raises(ConfigError, match="already exists"):
        export_model(store, "churn", out)
    assert json.loads(out.with_name("model.zip.card.json").read_text())["version"] == 1

    export_model(store, "churn", out, force=True)
    assert json.loads(out.with_name("model.zip.card.json").read_text())["version"] == 2


def test_export_refuses_a_directory_a_missing_folder_or_the_artifact_store(store: Store, tmp_path: Path) -> None:
    register(store)
    with pytest.raises(ConfigError, match="is a directory"):
        export_model(store, "churn", tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        export_model(store, "churn", tmp_path / "nowhere" / "model.zip")
    with pytest.raises(ConfigError, match="inside the artifact store"):
        export_model(store, "churn", tmp_path / "elsewhere" / ".." / "artifacts" / "model.zip")
    assert not (tmp_path / "artifacts" / "model.zip").exists()
