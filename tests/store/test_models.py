from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, update
from tests._candidates import frame, refused_type_bundle

from loopline.bundle import ModelBundle, verify_bundle
from loopline.core.errors import ConflictError, NotFoundError, UnservableModelError
from loopline.core.records import Candidate, CrossValidation, Features, InputField, Timings, Training, TrainReport
from loopline.store import ModelVersion, Store
from loopline.store._db import utcnow
from loopline.store._tables import models
from loopline.train import TrainSpec, train_candidate

from ._raw import Raw


def register(store: Store, name: str = "churn", **overrides: Any) -> ModelVersion:
    """The next version of ``name``; its bundle is opaque bytes (this store checks digests only)."""
    fields: dict[str, Any] = {
        "name": name,
        "algorithm": "logistic_regression",
        "bundle_digest": store.artifacts.put_bytes(b"bundle"),
        "reference_digest": "r" * 64,
        "metrics": {"valid": {"roc_auc": 0.8}},
        "params": {"C": 1.0},
        "config": {"target": "y"},
        "input_schema": [{"name": "x", "dtype": "number", "nullable": True}],
        "data_fingerprint": "f" * 64,
        "run_id": None,
        "timings": {"fit_s": 0.1},
    }
    return store.models.register(**{**fields, **overrides})


def test_register_numbers_versions_per_name(store: Store) -> None:
    assert [register(store).version for _ in range(3)] == [1, 2, 3]
    assert register(store, "other").version == 1
    first = store.models.get("churn", 1)
    assert (first.stage, first.metrics, first.promoted_at) == ("candidate", {"valid": {"roc_auc": 0.8}}, None)
    assert first.created_at.tzinfo is not None
    assert first.input_schema == [{"name": "x", "dtype": "number", "nullable": True}]
    assert store.models.get("churn").version == 3
    assert store.models.names() == ["churn", "other"]
    assert [(m.name, m.version) for m in store.models.list()] == [
        ("churn", 1),
        ("churn", 2),
        ("churn", 3),
        ("other", 1),
    ]
    assert [m.version for m in store.models.list("other")] == [1]


def test_unknown_model_suggests_a_name_and_the_list_command(store: Store) -> None:
    register(store)
    with pytest.raises(
        NotFoundError,
        match=r"model 'chrun' does not exist\. Did you mean 'churn'\? List models with `loopline models list`\.",
    ):
        store.models.get("chrun")
    with pytest.raises(NotFoundError, match=r"model 'zzz' does not exist\. List models with"):
        store.models.promote("zzz", 1)


def test_unknown_version_lists_the_known_versions(store: Store) -> None:
    register(store)
    register(store)
    with pytest.raises(NotFoundError, match=r"model 'churn' has no version 7; its versions are 1, 2\."):
        store.models.get("churn", 7)


def test_promote_archives_the_previous_production(store: Store) -> None:
    register(store)
    register(store)
    assert store.models.production("churn") is None
    promoted = store.models.promote("churn", 1, reason="first")
    assert promoted.stage == "production" and promoted.promoted_at is not None
    store.models.promote("churn", 2, reason="better auc")
    assert [m.stage for m in store.models.list("churn")] == ["archived", "production"]
    production = store.models.production("churn")
    assert production is not None and production.version == 2
    events = store.models.events("churn")
    assert [(e["action"], e["from_version"], e["to_version"], e["reason"]) for e in events] == [
        ("promote", None, 1, "first"),
        ("promote", 1, 2, "better auc"),
    ]
    assert events[1]["at"].tzinfo is not None


def test_promoting_the_production_version_again_changes_nothing(store: Store) -> None:
    register(store)
    store.models.promote("churn", 1)
    assert store.models.promote("churn", 1).stage == "production"
    assert len(store.models.events("churn")) == 1


def raw_row(version: int, stage: str) -> dict[str, Any]:
    """A models row written with plain SQL, bypassing the repository."""
    return {
        "name": "churn",
        "version": version,
        "stage": stage,
        "algorithm": "a",
        "bundle_digest": "b" * 64,
        "metrics": {},
        "params": {},
        "config": {},
        "input_schema": [],
        "data_fingerprint": "f",
        "timings": {},
        "created_at": utcnow(),
    }


def test_database_refuses_a_second_production_row(store: Store) -> None:
    register(store)
    store.models.promote("churn", 1)
    with pytest.raises(sa_exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(insert(models).values(**raw_row(99, "production")))
    register(store)
    with pytest.raises(sa_exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(update(models).where(models.c.version == 2).values(stage="production"))
    assert [m.stage for m in store.models.list("churn")] == ["production", "candidate"]


def test_database_refuses_a_duplicate_version_and_unknown_stage(store: Store) -> None:
    register(store)
    with pytest.raises(sa_exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(insert(models).values(**raw_row(1, "candidate")))
    with pytest.raises(sa_exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(insert(models).values(**raw_row(5, "staging")))


def test_rollback_walks_back_through_production_history(store: Store) -> None:
    for _ in range(3):
        register(store)
    for version in (1, 2, 3):
        store.models.promote("churn", version)
    assert store.models.rollback("churn", reason="auc dropped").version == 2
    assert [m.stage for m in store.models.list("churn")] == ["archived", "production", "archived"]
    assert store.models.rollback("churn").version == 1
    with pytest.raises(ConflictError, match="no earlier production version to roll back to.*models promote"):
        store.models.rollback("churn")
    production = store.models.production("churn")
    assert production is not None and production.version == 1
    events = [(e["action"], e["from_version"], e["to_version"]) for e in store.models.events("churn")]
    assert events[-2:] == [("rollback", 3, 2), ("rollback", 2, 1)]


def test_rollback_after_promoting_an_archived_version(store: Store) -> None:
    register(store)
    register(store)
    for version in (1, 2, 1):
        store.models.promote("churn", version)
    assert store.models.rollback("churn").version == 2


def test_rollback_needs_a_production_version(store: Store) -> None:
    register(store)
    with pytest.raises(ConflictError, match="model 'churn' has no production version to roll back from"):
        store.models.rollback("churn")
    with pytest.raises(NotFoundError, match="model 'nope' does not exist"):
        store.models.rollback("nope")


def test_record_evaluation_adds_a_metrics_key(store: Store) -> None:
    register(store)
    store.models.record_evaluation("churn", 1, "test", {"roc_auc": 0.75})
    assert store.models.get("churn", 1).metrics == {"valid": {"roc_auc": 0.8}, "test": {"roc_auc": 0.75}}
    with pytest.raises(NotFoundError, match="model 'churn' has no version 2"):
        store.models.record_evaluation("churn", 2, "test", {})


def test_events_of_unknown_model(store: Store) -> None:
    with pytest.raises(NotFoundError, match="model 'nope' does not exist"):
        store.models.events("nope")


def test_register_candidate_stores_the_candidate_and_its_report(store: Store) -> None:
    report = TrainReport(
        algorithm="lightgbm",
        metrics={"valid": {"roc_auc": 0.8}},
        params={"n_estimators": 5},
        timings=Timings(fit_s=0.2, training=Training(stopped="converged", iterations=7)),
        input_schema=(InputField("x", "number", train_dtype="Float64"),),
        features=Features(("x",), ("g",)),
        target="y",
        task="binary",
        data_fingerprint="fp",
        rows={"train": 8, "valid": 2},
        step_config={"target": "y"},
        cv=CrossValidation(
            method="kfold",
            folds=2,
            seed=0,
            fold_rows=({"train": 5, "valid": 5},) * 2,
            fold_metrics=({"roc_auc": 0.7}, {"roc_auc": 0.9}),
            mean={"roc_auc": 0.8},
            std={"roc_auc": 0.1},
        ),
    )
    reference = pl.DataFrame({"x": [1.0, 2.0], "g": ["a", "b"]})
    profile = b'{"format": 1, "n_rows": 2, "columns": {}}'
    version = store.models.register_candidate("churn", Candidate(b"bundle", reference, report, profile), run_id="r1")
    assert (version.version, version.algorithm, version.run_id, version.metrics) == (
        1,
        "lightgbm",
        "r1",
        report.metrics,
    )
    assert (version.params, version.data_fingerprint) == (report.params, "fp")
    assert Timings.from_dict(version.timings) == report.timings  # stored as JSON, read back as the record
    assert version.timings["fit_s"] == 0.2 and version.timings["training"]["iterations"] == 7
    assert version.input_schema == [{"name": "x", "dtype": "number", "nullable": True, "train_dtype": "Float64"}]
    assert store.artifacts.get_bytes(version.bundle_digest) == b"bundle"
    assert store.artifacts.get_table(version.reference_digest).equals(reference)  # type: ignore[arg-type]
    assert version.profile_digest is not None and store.artifacts.get_bytes(version.profile_digest) == profile
    typed = version.typed_config
    assert typed.features == report.features and typed.target == "y" and typed.cv_std("roc_auc") == 0.1
    again = store.models.register_candidate("churn", Candidate(b"bundle", None, report))
    assert again.version == 1  # the same bundle is not registered twice


# -- nothing becomes production that cannot be served ------------------------------------------------


@pytest.fixture
def checked(store_url: str, artifact_location: str) -> Iterator[Store]:
    """The store as loopline's commands open it: every bundle must load before it is registered or promoted."""
    opened = Store.open(store_url, artifact_location, check_bundle=verify_bundle)
    yield opened
    opened.close()


def _refused_type_bundle() -> bytes:
    return refused_type_bundle(ModelBundle.from_bytes(_trained().bundle))


def _trained(seed: int = 1) -> Candidate:
    spec = TrainSpec(target="label", numeric=["x"], categorical=["group"], estimator="logistic_regression")
    return train_candidate(frame(200, seed), frame(80, seed + 1), spec).candidate(spec, data_fingerprint="fp")


def _stages(store: Store) -> list[tuple[int, str]]:
    return [(v.version, v.stage) for v in store.models.list("churn")]


def test_a_corrupt_bundle_is_not_promoted_and_nothing_changes(checked: Store, raw: Raw) -> None:
    first = checked.models.register_candidate("churn", _trained(1))
    second = checked.models.register_candidate("churn", _trained(2))
    checked.models.promote("churn", first.version)
    raw.write(f"{second.bundle_digest[:2]}/{second.bundle_digest}", b"bit rot")
    with pytest.raises(UnservableModelError, match=r"model 'churn' version 2 cannot be served: .*corrupt") as caught:
        checked.models.promote("churn", second.version)
    assert "Nothing was changed: promote another version" in str(caught.value)
    assert (caught.value.name, caught.value.version) == ("churn", 2)
    assert _stages(checked) == [(1, "production"), (2, "candidate")]
    assert [e["to_version"] for e in checked.models.events("churn")] == [1]


def test_a_missing_bundle_is_refused_even_without_a_bundle_check(store: Store, raw: Raw) -> None:
    version = register(store, bundle_digest=store.artifacts.put_bytes(b"soon gone"))
    raw.remove(f"{version.bundle_digest[:2]}/{version.bundle_digest}")
    with pytest.raises(UnservableModelError, match=r"model 'churn' version 1 cannot be served: artifact .* not exist"):
        store.models.promote("churn", 1)
    assert _stages(store) == [(1, "candidate")]


def test_a_bundle_with_a_refused_type_is_neither_registered_nor_promoted(checked: Store) -> None:
    refused = _refused_type_bundle()
    refusal = r"model 'churn' cannot be served: .*'sklearn.pipeline.Pipeline', which is not an estimator loopline"
    with pytest.raises(UnservableModelError, match=refusal):
        checked.models.register_candidate("churn", Candidate(refused, None, _trained().report))
    assert checked.models.list("churn") == []
    assert not checked.artifacts.exists(hashlib.sha256(refused).hexdigest())  # refused before it was stored
    # a row written by an older loopline, or by a process that opened the store without the check
    unchecked = Store.open(checked.url.render_as_string(hide_password=False), checked.artifacts)
    try:
        register(unchecked, bundle_digest=unchecked.artifacts.put_bytes(refused))
    finally:
        unchecked.close()
    with pytest.raises(UnservableModelError, match=r"version 1 cannot be served: .*not an estimator loopline trusts"):
        checked.models.promote("churn", 1)
    with pytest.raises(UnservableModelError, match=r"model 'churn' cannot be served"):
        checked.models.register(**{**_fields(checked.models.get("churn", 1)), "name": "churn"})
    assert _stages(checked) == [(1, "candidate")]


def test_a_rollback_to_a_corrupt_version_is_refused_and_nothing_changes(checked: Store, raw: Raw) -> None:
    first = checked.models.register_candidate("churn", _trained(1))
    checked.models.register_candidate("churn", _trained(2))
    checked.models.promote("churn", 1)
    checked.models.promote("churn", 2)
    raw.write(f"{first.bundle_digest[:2]}/{first.bundle_digest}", b"bit rot")
    with pytest.raises(UnservableModelError, match=r"model 'churn' version 1 cannot be served"):
        checked.models.rollback("churn")
    assert _stages(checked) == [(1, "archived"), (2, "production")]
    assert [e["action"] for e in checked.models.events("churn")] == ["promote", "promote"]


def _fields(version: ModelVersion) -> dict[str, Any]:
    skip = {"version", "stage", "created_at", "promoted_at", "archived_at", "aliases"}
    return {k: v for k, v in vars(version).items() if k not in skip}
