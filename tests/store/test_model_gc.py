"""``gc``: archived versions beyond the retention rule go with their orphaned artifacts; aliased versions,
production and artifacts still referenced stay; the served model still loads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from loopline.bundle import verify_bundle
from loopline.core.errors import NotFoundError, StoreError
from loopline.store import Store
from loopline.store._db import utcnow
from loopline.store._tables import models

from .test_models import _trained, register

WITH_S3 = {"test_gc_keeps_artifacts_another_version_references_and_production_still_loads"}
NOW = timedelta(0)


def _chain(store: Store, count: int) -> list[str]:
    """``count`` versions with their own bundles, each promoted in turn: 1..count-1 archived, the last one
    production. Returns the bundle digests."""
    digests = [store.artifacts.put_bytes(f"bundle {i}".encode()) for i in range(count)]
    for digest in digests:
        version = register(store, bundle_digest=digest, reference_digest=None).version
        store.models.promote("churn", version)
    return digests


def test_gc_keeps_the_newest_archived_versions_and_removes_the_rest_with_their_artifacts(store: Store) -> None:
    digests = _chain(store, 6)
    report = store.models.gc("churn", keep=2, reason="weekly", actor="cron", grace=NOW)
    assert (report.removed, report.kept, report.protected) == ((1, 2, 3), (4, 5), ())
    assert set(report.artifacts_removed) == set(digests[:3]) and report.bytes_freed == sum(
        len(b"bundle 0") for _ in range(3)
    )
    assert [v.version for v in store.models.list("churn")] == [4, 5, 6]
    assert [store.artifacts.exists(d) for d in digests] == [False] * 3 + [True] * 3
    gc_events = [e for e in store.models.history("churn") if e.action == "gc"]
    assert [(e.from_version, e.to_version, e.actor, e.reason) for e in gc_events] == [
        (v, None, "cron", "weekly") for v in (1, 2, 3)
    ]
    assert gc_events[0].details is not None and gc_events[0].details["artifacts"] == [digests[0]]
    assert store.models.production("churn").version == 6  # type: ignore[union-attr]
    assert register(store).version == 7


def test_a_deleted_version_number_is_never_given_again(store: Store) -> None:
    _chain(store, 2)
    store.models.promote("churn", 1)  # 2 archived: the highest number
    assert store.models.gc("churn", keep=0, grace=NOW).removed == (2,)
    assert register(store).version == 3


def test_gc_never_removes_an_aliased_version_production_or_a_candidate(store: Store) -> None:
    _chain(store, 4)  # 1, 2, 3 archived; 4 production
    register(store)  # 5: a candidate
    store.models.set_alias("churn", "staging", 2)
    report = store.models.gc("churn", keep=0, grace=NOW)
    assert (report.removed, report.kept, report.protected) == ((1, 3), (), (2,))
    assert [(v.version, v.stage) for v in store.models.list("churn")] == [
        (2, "archived"),
        (4, "production"),
        (5, "candidate"),
    ]


def test_older_than_removes_only_versions_archived_long_ago(store: Store) -> None:
    _chain(store, 4)
    assert store.models.gc("churn", keep=0, older_than=timedelta(days=30), grace=NOW).removed == ()
    with store.engine.begin() as conn:
        stmt = update(models).where(models.c.version == 1).values(archived_at=utcnow() - timedelta(days=40))
        conn.execute(stmt)
    report = store.models.gc("churn", keep=0, older_than=timedelta(days=30), grace=NOW)
    assert (report.removed, report.kept) == ((1,), (2, 3))


def test_a_dry_run_reports_and_changes_nothing(store: Store) -> None:
    digests = _chain(store, 3)
    report = store.models.gc("churn", keep=0, dry_run=True, grace=NOW)
    assert report.dry_run and report.removed == (1, 2)
    assert set(report.artifacts_removed) == set(digests[:2])
    assert [v.version for v in store.models.list("churn")] == [1, 2, 3]
    assert all(store.artifacts.exists(d) for d in digests)
    assert "gc" not in [e.action for e in store.models.history("churn")]


def test_blobs_touched_within_the_grace_period_stay(store: Store) -> None:
    digests = _chain(store, 2)
    report = store.models.gc("churn", keep=0)  # default grace: the bundle was written a moment ago
    assert report.removed == (1,) and report.artifacts_removed == () and digests[0] in report.artifacts_kept
    assert store.artifacts.exists(digests[0])
    assert any(o.path.endswith(digests[0]) for o in store.check().orphans)  # `store check --fix` removes it later


def test_bad_retention_and_unknown_model(store: Store) -> None:
    _chain(store, 1)
    with pytest.raises(StoreError, match=r"keep is -1; it must be 0 or more\. Use e\.g\. --keep 5"):
        store.models.gc("churn", keep=-1)
    with pytest.raises(NotFoundError, match=r"model 'chrun' does not exist\. Did you mean 'churn'"):
        store.models.gc("chrun")


@pytest.fixture
def checked(store_url: str, artifact_location: str) -> Iterator[Store]:
    opened = Store.open(store_url, artifact_location, check_bundle=verify_bundle)
    yield opened
    opened.close()


def test_gc_keeps_artifacts_another_version_references_and_production_still_loads(checked: Store) -> None:
    first = checked.models.register_candidate("churn", _trained(1))
    other = checked.models.register_candidate("churn", _trained(2))
    again = checked.models.register(  # the same bundle and reference as the first, registered again
        name="churn",
        algorithm=first.algorithm,
        bundle_digest=first.bundle_digest,
        reference_digest=first.reference_digest,
        metrics={},
        params={},
        config={},
        input_schema=first.input_schema,
        data_fingerprint="fp",
        run_id=None,
        timings={},
    )
    for version in (first.version, other.version, again.version):
        checked.models.promote("churn", version)
    report = checked.models.gc("churn", keep=0, grace=NOW)
    assert report.removed == (first.version, other.version)
    assert other.bundle_digest in report.artifacts_removed and first.bundle_digest in report.artifacts_kept
    assert not checked.artifacts.exists(other.bundle_digest)
    production = checked.models.production("churn")
    assert production is not None and production.version == again.version
    bundle = verify_bundle(checked.artifacts.get_bytes(production.bundle_digest))  # the served model loads
    assert bundle is not None
    found = checked.check()
    assert (found.missing, found.corrupted) == ([], [])
