"""The repository's paginated reads the dashboard uses: a page of versions, counts, per-name summaries and the
newest events — each one bounded query, so a model with a thousand versions is never loaded whole."""

from __future__ import annotations

from typing import Any

from loopline.store import ModelVersion, Store


def register(store: Store, name: str = "churn", **overrides: Any) -> ModelVersion:
    """The next version of ``name`` (opaque bundle bytes: this store checks digests only)."""
    fields: dict[str, Any] = {
        "name": name,
        "algorithm": "logistic_regression",
        "bundle_digest": store.artifacts.put_bytes(b"bundle"),
        "reference_digest": None,
        "metrics": {"valid": {"roc_auc": 0.8}},
        "params": {"C": 1.0},
        "config": {},
        "input_schema": [],
        "data_fingerprint": "f" * 64,
        "run_id": None,
        "timings": {},
    }
    return store.models.register(**{**fields, **overrides})


def test_page_is_newest_first_and_skips_archived_versions_unless_asked(store: Store) -> None:
    for _ in range(7):
        register(store)
    register(store, "other")
    store.models.promote("churn", 2)
    store.models.promote("churn", 3)  # 2 is archived
    store.models.set_alias("churn", "staging", 6)
    store.models.archive("churn", 5)
    assert [v.version for v in store.models.page("churn", 0, 3)] == [7, 6, 4]
    assert [v.version for v in store.models.page("churn", 3, 3)] == [3, 1]
    assert [v.version for v in store.models.page("churn", 0, 10, archived=True)] == [7, 6, 5, 4, 3, 2, 1]
    page = {v.version: v for v in store.models.page("churn", 0, 10, archived=True)}
    assert (page[3].stage, page[3].aliases) == ("production", ("production",))
    assert (page[6].stage, page[6].aliases) == ("candidate", ("staging",))
    assert page[5].stage == page[2].stage == "archived"
    assert (store.models.count("churn"), store.models.count("churn", archived=True)) == (5, 7)
    assert (store.models.page("missing"), store.models.count("missing")) == ([], 0)


def test_summaries_aggregate_each_name_and_paginate(store: Store) -> None:
    for _ in range(3):
        register(store, "b-model")
    register(store, "a-model")
    store.models.promote("b-model", 1)
    store.models.promote("b-model", 2)
    assert store.models.count_names() == 2
    first, second = store.models.summaries()
    assert (first["name"], first["versions"], first["archived"], first["latest_version"]) == ("a-model", 1, 0, 1)
    assert first["aliases"] == {}
    assert (second["name"], second["versions"], second["archived"], second["latest_version"]) == ("b-model", 3, 1, 3)
    assert second["aliases"] == {"production": 2}
    assert second["last_registered"] == store.models.get("b-model", 3).created_at
    assert [s["name"] for s in store.models.summaries(1, 5)] == ["b-model"]
    assert store.models.summaries(2, 5) == []


def test_latest_history_is_newest_first_and_limited(store: Store) -> None:
    for _ in range(4):
        register(store)
    for version in (1, 2, 3, 4):
        store.models.promote("churn", version, reason=f"to {version}")
    newest = store.models.latest_history("churn", 2)
    assert [(e.action, e.to_version, e.reason) for e in newest] == [("promote", 4, "to 4"), ("promote", 3, "to 3")]
    assert len(store.models.latest_history("churn")) == 4
    register(store, "quiet")
    assert store.models.latest_history("quiet") == []


def test_latest_history_of_an_unknown_model_is_not_found(store: Store) -> None:
    import pytest

    from loopline.core.errors import NotFoundError

    register(store)
    with pytest.raises(NotFoundError, match="model 'chrun' does not exist"):
        store.models.latest_history("chrun")


def test_metric_rows_read_the_newest_versions_metrics_only(store: Store) -> None:
    for score in (0.6, 0.7, 0.9):
        register(store, metrics={"valid": {"roc_auc": score}})
    store.models.promote("churn", 1)
    store.models.promote("churn", 2)  # 1 archived
    rows = store.models.metric_rows("churn", 2)
    assert [(r["version"], r["stage"], r["metrics"]) for r in rows] == [
        (3, "candidate", {"valid": {"roc_auc": 0.9}}),
        (2, "candidate", {"valid": {"roc_auc": 0.7}}),
    ]
    assert [r["version"] for r in store.models.metric_rows("churn", archived=False)] == [3, 2]
    assert [r["version"] for r in store.models.metric_rows("churn")] == [3, 2, 1]
    assert rows[0]["created_at"] == store.models.get("churn", 3).created_at


def test_listing_is_a_page_without_the_heavy_columns(store: Store) -> None:
    for _ in range(4):
        register(store, timings={"training": {"learning_curve": {"valid": [0.5] * 1000}}})
    store.models.promote("churn", 2)
    store.models.promote("churn", 3)  # 2 archived
    store.models.set_alias("churn", "canary", 4)
    listed = store.models.listing("churn", 0, 2)
    full = store.models.page("churn", 0, 2)
    assert [r["version"] for r in listed] == [v.version for v in full] == [4, 3]
    for row, version in zip(listed, full, strict=True):
        assert row == {
            "version": version.version,
            "stage": version.stage,
            "aliases": list(version.aliases),
            "algorithm": version.algorithm,
            "metrics": version.metrics,
            "data_fingerprint": version.data_fingerprint,
            "run_id": version.run_id,
            "created_at": version.created_at,
            "promoted_at": version.promoted_at,
            "archived_at": version.archived_at,
        }
    assert (listed[0]["aliases"], listed[1]["stage"]) == (["canary"], "production")
    assert [r["version"] for r in store.models.listing("churn", 2, 5)] == [1]
    assert [r["stage"] for r in store.models.listing("churn", 0, 5, archived=True)][2] == "archived"
