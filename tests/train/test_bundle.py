from __future__ import annotations

import io
import json
import warnings
import zipfile
from typing import Any

import numpy as np
import polars as pl
import pytest
from threadpoolctl import threadpool_limits

from loopline.core.errors import DataError, UnsafeArtifactError
from loopline.train import ESTIMATORS, FORMAT_VERSION, ModelBundle, TrainSpec, train_candidate

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]
CATEGORICAL = ["island"]
FAST = {"n_estimators": 5, "max_iter": 5}
TARGETS = {"binary": "is_male", "multiclass": "species", "regression": "body_mass_g"}


def _fast_params(name: str, task: str) -> dict[str, Any]:
    if name == "logistic_regression":
        return {}
    accepted = ESTIMATORS.get(name).load(task)().get_params()
    return {k: v for k, v in FAST.items() if k in accepted}


def _train(halves: tuple[pl.DataFrame, pl.DataFrame], name: str, task: str) -> ModelBundle:
    train, valid = halves
    result = train_candidate(
        train,
        valid,
        TrainSpec(
            target=TARGETS[task],
            numeric=NUMERIC,
            categorical=CATEGORICAL,
            estimator=name,
            params=_fast_params(name, task),
            task=task,
        ),
    )
    return result.bundle


def _all_pairs() -> list[tuple[str, str]]:
    return [(name, task) for name in ESTIMATORS.names() for task in ESTIMATORS.get(name).tasks]


@pytest.mark.parametrize(("name", "task"), _all_pairs())
def test_every_registered_estimator_round_trips(
    halves: tuple[pl.DataFrame, pl.DataFrame], name: str, task: str
) -> None:
    """Also keeps TRUSTED_TYPES honest: each built-in must load under loopline's allowlist."""
    bundle = _train(halves, name, task)
    loaded = ModelBundle.from_bytes(bundle.to_bytes())
    valid = halves[1]
    expected, got = bundle.predict_table(valid), loaded.predict_table(valid)
    np.testing.assert_array_equal(got["prediction"], expected["prediction"])
    if task != "regression":
        np.testing.assert_array_equal(got["probability"], expected["probability"])
    assert loaded.classes == bundle.classes and loaded.input_schema == bundle.input_schema


@pytest.mark.parametrize(("task", "label_type"), [("binary", bool), ("multiclass", str), ("regression", float)])
def test_predict_records_equals_predict_table(
    halves: tuple[pl.DataFrame, pl.DataFrame], task: str, label_type: type
) -> None:
    bundle = _train(halves, "logistic_regression" if task != "regression" else "ridge", task)
    valid = halves[1]
    table = bundle.predict_table(valid)
    with threadpool_limits(limits=1):
        records = bundle.predict_records(valid.to_dicts())
    assert [r["prediction"] for r in records] == table["prediction"].tolist()
    assert all(type(r["prediction"]) is label_type for r in records)
    if task == "regression":
        assert all(set(r) == {"prediction"} for r in records)
        return
    assert bundle.classes is not None
    probabilities = [[r["probabilities"][str(c)] for c in bundle.classes] for r in records]
    np.testing.assert_array_equal(np.array(probabilities), table["probability"])
    assert bundle.predict_records([]) == []


def test_int_labels_keep_their_type(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    train, valid = halves
    bundle = train_candidate(
        train, valid, TrainSpec(target="species_id", numeric=NUMERIC, categorical=[], estimator="logistic_regression")
    ).bundle
    loaded = ModelBundle.from_bytes(bundle.to_bytes())
    out = loaded.predict_records([{"bill_length_mm": 39.0, "bill_depth_mm": 18.0}])
    assert type(out[0]["prediction"]) is int and set(out[0]["probabilities"]) == {"0", "1", "2"}


def test_evaluate_scores_a_labelled_table(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    train, valid = halves
    result = train_candidate(
        train,
        valid,
        TrainSpec(target="is_male", numeric=NUMERIC, categorical=CATEGORICAL, estimator="logistic_regression"),
    )
    assert result.bundle.evaluate(valid) == pytest.approx(result.metrics["valid"])
    with pytest.raises(DataError, match=r"target column 'is_male' is missing"):
        result.bundle.evaluate(valid.drop("is_male"))
    with pytest.raises(DataError, match=r"'is_male' has 1 null rows"):
        result.bundle.evaluate(
            valid.with_columns(
                pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(pl.col("is_male")).alias("is_male")
            )
        )


def test_bundle_json_holds_state_schema_and_versions(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    bundle = _train(halves, "logistic_regression", "multiclass")
    with zipfile.ZipFile(io.BytesIO(bundle.to_bytes())) as archive:
        assert sorted(archive.namelist()) == ["bundle.json", "estimator.skops"]
        manifest = json.loads(archive.read("bundle.json"))
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["task"] == "multiclass" and manifest["target"] == "species"
    assert manifest["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert manifest["preprocessor"]["params"]["numeric"] == NUMERIC
    assert {"sklearn", "numpy", "loopline", "skops"} <= set(manifest["metadata"]["versions"])
    assert manifest["metadata"]["algorithm"] == "logistic_regression"


def _rebundle(bundle: ModelBundle, **members: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(bundle.to_bytes())) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    contents.update(members)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, payload in contents.items():
            archive.writestr(name, payload)
    return buffer.getvalue()


def _untrusted_helper(x: Any) -> Any:
    return x


def test_a_non_estimator_top_level_object_is_refused(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    import skops.io as sio
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    bundle = _train(halves, "logistic_regression", "binary")
    pipeline = make_pipeline(FunctionTransformer(_untrusted_helper), bundle.estimator)
    data = _rebundle(bundle, **{"estimator.skops": sio.dumps(pipeline)})
    with pytest.raises(UnsafeArtifactError, match="'sklearn.pipeline.Pipeline', which is not an estimator"):
        ModelBundle.from_bytes(data)


def test_an_untrusted_nested_type_is_refused(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    import skops.io as sio

    bundle = _train(halves, "logistic_regression", "binary")
    bundle.estimator.smuggled = _untrusted_helper  # skops flags the function as untrusted
    data = _rebundle(bundle, **{"estimator.skops": sio.dumps(bundle.estimator)})
    with pytest.raises(UnsafeArtifactError, match=r"untrusted type '.*_untrusted_helper'"):
        ModelBundle.from_bytes(data)


def test_damaged_bytes_give_clear_errors(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    bundle = _train(halves, "logistic_regression", "binary")
    good = bundle.to_bytes()
    with pytest.raises(DataError, match="not a valid loopline model bundle: it is not a zip archive"):
        ModelBundle.from_bytes(b"definitely not a zip")
    with pytest.raises(DataError, match="not a valid loopline model bundle"):
        ModelBundle.from_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="estimator in the model bundle is damaged"):
        ModelBundle.from_bytes(_rebundle(bundle, **{"estimator.skops": b"garbage"}))
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(good)).read("bundle.json"))
    newer = json.dumps({**manifest, "format_version": 99}).encode()
    with pytest.raises(DataError, match="format version 99 is not supported.*Upgrade loopline"):
        ModelBundle.from_bytes(_rebundle(bundle, **{"bundle.json": newer}))
    with pytest.raises(DataError, match="does not describe a loopline bundle"):
        ModelBundle.from_bytes(_rebundle(bundle, **{"bundle.json": b"[1, 2]"}))


NATIVE_FILES = {"lightgbm": "estimator.lightgbm.txt", "xgboost": "estimator.xgboost.json"}


def _fitted_wrapper(
    monkeypatch: pytest.MonkeyPatch, halves: tuple[pl.DataFrame, pl.DataFrame], name: str, task: str
) -> ModelBundle:
    """A bundle that holds the fitted scikit-learn wrapper itself, as trained before the native conversion."""
    with monkeypatch.context() as patch, warnings.catch_warnings():
        # XGBoost's own float32 probabilities trip scikit-learn's sum-to-one check while scoring
        warnings.filterwarnings("ignore", "The y_prob values do not sum to one", UserWarning)
        patch.setattr("loopline.train._trainer.to_native", lambda model, n_classes: model)
        return _train(halves, name, task)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("name", ["lightgbm", "xgboost"])
def test_boosters_are_stored_in_their_native_format(
    monkeypatch: pytest.MonkeyPatch, halves: tuple[pl.DataFrame, pl.DataFrame], name: str, task: str
) -> None:
    bundle = _train(halves, name, task)
    data = bundle.to_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == ["bundle.json", NATIVE_FILES[name]]
        manifest = json.loads(archive.read("bundle.json"))
    assert manifest["estimator"]["format"] == name and manifest["format_version"] == FORMAT_VERSION == 2
    assert manifest["estimator"]["class"].startswith(f"{name}.sklearn.")
    assert name in manifest["metadata"]["versions"]

    loaded = ModelBundle.from_bytes(data)
    assert ModelBundle.from_bytes(loaded.to_bytes()).to_bytes() == loaded.to_bytes()
    wrapper = _fitted_wrapper(monkeypatch, halves, name, task).estimator
    features = loaded.preprocessor.transform(halves[1])
    if task == "regression":
        np.testing.assert_allclose(loaded.estimator.predict(features), wrapper.predict(features), rtol=0, atol=1e-3)
        np.testing.assert_array_equal(
            loaded.predict_table(halves[1])["prediction"], bundle.predict_table(halves[1])["prediction"]
        )
        return
    expected = wrapper.predict_proba(features)
    got = loaded.estimator.predict_proba(features)
    if name == "lightgbm":
        np.testing.assert_array_equal(got, expected)
    else:  # XGBoost's float32, widened and normalised to sum to 1
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(
        loaded.predict_table(halves[1])["probability"], bundle.predict_table(halves[1])["probability"]
    )
    assert loaded.predict_records(halves[1].head(3).to_dicts()) == bundle.predict_records(halves[1].head(3).to_dicts())


def test_a_damaged_native_model_is_reported(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    bundle = _train(halves, "lightgbm", "binary")
    with pytest.raises(DataError, match="the lightgbm model in the bundle is damaged"):
        ModelBundle.from_bytes(_rebundle(bundle, **{"estimator.lightgbm.txt": b"tree\nnot a model"}))
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(bundle.to_bytes())).read("bundle.json"))
    manifest["estimator"]["format"] = "pickle"
    with pytest.raises(DataError, match="unknown estimator format 'pickle'"):
        ModelBundle.from_bytes(_rebundle(bundle, **{"bundle.json": json.dumps(manifest).encode()}))


def _as_version_1(bundle: ModelBundle, estimator: Any) -> bytes:
    """What loopline 0.x wrote: format version 1, the estimator always in skops, no "format" key."""
    import skops.io as sio

    with zipfile.ZipFile(io.BytesIO(bundle.to_bytes())) as archive:
        manifest = json.loads(archive.read("bundle.json"))
    manifest["format_version"] = 1
    manifest["estimator"] = {"file": "estimator.skops", "class": "x"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("bundle.json", json.dumps(manifest))
        archive.writestr("estimator.skops", sio.dumps(estimator))
    return buffer.getvalue()


@pytest.mark.parametrize(("name", "task"), [("logistic_regression", "multiclass"), ("lightgbm", "binary")])
def test_version_1_bundles_still_load(
    monkeypatch: pytest.MonkeyPatch, halves: tuple[pl.DataFrame, pl.DataFrame], name: str, task: str
) -> None:
    old = _fitted_wrapper(monkeypatch, halves, name, task)
    loaded = ModelBundle.from_bytes(_as_version_1(old, old.estimator))
    assert type(loaded.estimator) is type(old.estimator)  # a skops estimator, loaded under the allowlist
    valid = halves[1]
    np.testing.assert_array_equal(loaded.predict_table(valid)["probability"], old.predict_table(valid)["probability"])
