"""The ensemble bundle: the mean of its members' predictions, stored and loaded like any bundle (no pickle, every
member checked), refused when its members are not versions of the same model."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tests._candidates import frame, refused_type_bundle

from loopline.bundle import EnsembleBundle, ModelBundle, check_servable, ensemble_of, verify_bundle
from loopline.core.errors import DataError, UnsafeArtifactError
from loopline.core.records import Candidate, EnsembleLineage, EnsembleMember, Features, Timings, TrainReport
from loopline.run import score_batch
from loopline.store import Store
from loopline.train import TrainSpec, train_candidate

SPEC = TrainSpec(target="label", numeric=["x"], categorical=["group"], estimator="logistic_regression")


def trained(seed: int, spec: TrainSpec = SPEC, rows: int = 300) -> ModelBundle:
    return train_candidate(frame(rows, seed), frame(100, seed + 50), spec).bundle


@pytest.fixture(scope="module")
def members() -> list[ModelBundle]:
    boosting = TrainSpec(target="label", numeric=["x"], categorical=["group"], estimator="hist_gradient_boosting")
    return [trained(1), trained(2, rows=120), trained(3, boosting)]


def test_the_prediction_is_the_mean_of_the_members(members: list[ModelBundle]) -> None:
    ensemble = ensemble_of(members)
    rows = frame(200, 9).drop("label")
    parts = [m.predict_table(rows)["probability"] for m in members]
    mean = (parts[0] + parts[1] + parts[2]) / 3
    out = ensemble.predict_table(rows)
    np.testing.assert_array_equal(out["probability"], mean)
    np.testing.assert_allclose(out["probability"], np.mean(parts, axis=0), rtol=0, atol=1e-15)
    assert out["prediction"].tolist() == [bool(p) for p in mean.argmax(axis=1)]
    assert not np.array_equal(parts[0], parts[2])  # the members differ: the mean is not any one of them
    records = ensemble.predict_records(rows.to_dicts())  # the service's path: the same numbers
    assert [r["probabilities"]["True"] for r in records] == out["probability"][:, 1].tolist()
    assert [r["prediction"] for r in records] == out["prediction"].tolist()
    metrics = ensemble.evaluate(frame(200, 9))
    assert set(metrics) >= {"roc_auc", "accuracy", "log_loss"}


def test_a_regression_ensemble_averages_the_predictions() -> None:
    spec = TrainSpec(target="x", numeric=[], categorical=["group"], estimator="ridge", task="regression")
    first, second = trained(1, spec), trained(4, spec, rows=60)
    rows = frame(50, 9).drop("x", "label")
    out = ensemble_of([first, second]).predict_table(rows)
    expected = (first.predict_table(rows)["prediction"] + second.predict_table(rows)["prediction"]) / 2
    np.testing.assert_array_equal(out["prediction"], expected)
    assert "probability" not in out
    served = ensemble_of([first, second]).predict_records(rows.to_dicts())
    assert [r["prediction"] for r in served] == expected.tolist()


def test_round_trip_and_the_members_lineage(members: list[ModelBundle]) -> None:
    lineage = {"members": [{"version": 1, "role": "initial"}], "combine": "mean"}
    data = ensemble_of(members, metadata={"ensemble": lineage}).to_bytes()
    loaded = verify_bundle(data)
    assert isinstance(loaded, EnsembleBundle) and len(loaded.members) == 3
    assert loaded.metadata["ensemble"] == lineage
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == ["bundle.json", *(f"members/{i}.bundle" for i in range(3))]
        manifest = json.loads(archive.read("bundle.json"))
    assert manifest["format_version"] == 3 and manifest["ensemble"] == {"combine": "mean", "members": 3}
    rows = frame(40, 5)
    np.testing.assert_array_equal(
        loaded.predict_table(rows)["probability"], ensemble_of(members).predict_table(rows)["probability"]
    )
    check_servable(data)
    assert ModelBundle.from_bytes(members[0].to_bytes()).__class__ is ModelBundle  # single bundles stay single


def test_members_of_another_model_are_refused(members: list[ModelBundle]) -> None:
    other_target = trained(1, TrainSpec(target="group", numeric=["x"], categorical=[], estimator="logistic_regression"))
    with pytest.raises(DataError, match="member 1 has target 'group'.*same model") as caught:
        ensemble_of([members[0], other_target])
    assert "Average only versions" in str(caught.value)
    other_inputs = trained(1, TrainSpec(target="label", numeric=["x"], categorical=[], estimator="logistic_regression"))
    with pytest.raises(DataError, match="member 1 takes other inputs.*group"):
        ensemble_of([members[0], other_inputs])
    with pytest.raises(DataError, match="at least one member"):
        ensemble_of([])
    with pytest.raises(DataError, match="is an ensemble itself"):
        ensemble_of([members[0], ensemble_of(members[:2])])
    with pytest.raises(DataError, match="no single feature matrix"):
        ensemble_of(members).predict_matrix(np.zeros((1, 3)))


def rewritten(data: bytes, change: dict[str, bytes | None]) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    for name, payload in change.items():
        if payload is None:
            files.pop(name)
        else:
            files[name] = payload
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, payload in files.items():
            archive.writestr(name, payload)
    return buffer.getvalue()


def test_loading_is_safe_member_by_member(members: list[ModelBundle]) -> None:
    data = ensemble_of(members[:2]).to_bytes()
    # a member whose estimator is a type the allowlist refuses: the whole ensemble is refused
    with pytest.raises(UnsafeArtifactError):
        verify_bundle(rewritten(data, {"members/1.bundle": refused_type_bundle(members[1])}))
    with pytest.raises(DataError, match="no members/1.bundle"):
        ModelBundle.from_bytes(rewritten(data, {"members/1.bundle": None}))
    nested = ensemble_of(members[:2]).to_bytes()
    with pytest.raises(DataError, match="member 0 is an ensemble itself"):
        ModelBundle.from_bytes(rewritten(data, {"members/0.bundle": nested}))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        manifest = json.loads(archive.read("bundle.json"))
    for count in (0, 99, "../x", True):
        bad = {**manifest, "ensemble": {"combine": "mean", "members": count}}
        with pytest.raises(DataError, match="members"):
            ModelBundle.from_bytes(rewritten(data, {"bundle.json": json.dumps(bad).encode()}))
    bad = {**manifest, "ensemble": {"combine": "median", "members": 2}}
    with pytest.raises(DataError, match="not a 'mean'"):
        ModelBundle.from_bytes(rewritten(data, {"bundle.json": json.dumps(bad).encode()}))
    for name in ("../evil.bundle", "/etc/passwd"):  # names come from positions, never from the archive
        assert ModelBundle.from_bytes(rewritten(data, {name: b"x"})).predict_table(frame(3, 1))[
            "probability"
        ].shape == (3, 2)


def report(target: str, lineage: EnsembleLineage) -> TrainReport:
    return TrainReport(
        algorithm="ensemble",
        metrics={},
        params={},
        timings=Timings(),
        input_schema=(),
        features=Features(numeric=("x",), categorical=("group",)),
        target=target,
        task="binary",
        data_fingerprint="f",
        rows={},
        step_config={},
        ensemble=lineage,
    )


def test_stored_and_batch_scored_like_any_version(store: Store, members: list[ModelBundle], tmp_path: Path) -> None:
    repository = store.models.with_check(check_servable)
    singles = [
        repository.register_candidate("m", Candidate(b.to_bytes(), None, report("label", None))) for b in members[:2]
    ]  # type: ignore[arg-type]
    lineage = EnsembleLineage(
        tuple(EnsembleMember(v.version, role) for v, role in zip(singles, ("initial", "window"), strict=True))
    )
    ensemble = ensemble_of(members[:2], metadata={"ensemble": lineage.to_dict()})
    version = repository.register_candidate("m", Candidate(ensemble.to_bytes(), None, report("label", lineage)))
    repository.promote("m", version.version, reason="ensemble")
    stored = store.models.get("m", version.version)
    assert stored.typed_config.ensemble == lineage and stored.config["ensemble"]["members"][1] == {
        "version": 2,
        "role": "window",
    }
    assert "ensemble" not in singles[0].config
    loaded = ModelBundle.from_bytes(store.artifacts.get_bytes(stored.bundle_digest))
    rows = frame(150, 7)
    rows.drop("label").write_parquet(tmp_path / "in.parquet")
    score_batch(store, "m", tmp_path / "in.parquet", tmp_path / "out.parquet")
    scored = pl.read_parquet(tmp_path / "out.parquet")
    expected = ensemble.predict_table(rows)["probability"]
    proba = [c for c in scored.columns if c.endswith("True")]
    np.testing.assert_array_equal(scored[proba[0]].to_numpy(), expected[:, 1])
    np.testing.assert_array_equal(loaded.predict_table(rows)["probability"], expected)
