"""Runs paged and counted in SQL (the dashboard's run history): filters, order, step counts per run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from loopline.core.errors import StoreError
from loopline.store import StepRecord, Store
from loopline.store._tables import runs

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def make_runs(store: Store, count: int) -> list[str]:
    """``count`` runs started a minute apart (oldest first), alternating pipelines a and b; every third failed."""
    ids = []
    for index in range(count):
        run_id = store.runs.create_run("a" if index % 2 else "b", "h", {}, {})
        store.runs.set_status(run_id, "failed" if index % 3 == 0 else "succeeded")
        with store.engine.begin() as conn:
            conn.execute(update(runs).where(runs.c.run_id == run_id).values(started_at=T0 + timedelta(minutes=index)))
        ids.append(run_id)
    return ids


def record(name: str, status: str) -> StepRecord:
    return StepRecord(name, "python", status, None, T0, T0, 0.5, {}, {}, "boom" if status == "failed" else None)


def test_page_is_newest_first_with_offset_limit_and_filters(store: Store) -> None:
    ids = make_runs(store, 7)
    newest_first = ids[::-1]
    assert [r.run_id for r in store.runs.page(limit=3)] == newest_first[:3]
    assert [r.run_id for r in store.runs.page(offset=3, limit=3)] == newest_first[3:6]
    assert [r.run_id for r in store.runs.page(offset=6, limit=3)] == newest_first[6:]
    assert store.runs.page(offset=7) == []
    assert store.runs.count() == 7

    only_a = [ids[i] for i in (5, 3, 1)]
    assert [r.run_id for r in store.runs.page(pipeline="a")] == only_a
    assert store.runs.count(pipeline="a") == 3
    failed = [ids[i] for i in (6, 3, 0)]
    assert [r.run_id for r in store.runs.page(status="failed")] == failed
    assert store.runs.count(status="failed") == 3
    assert [r.run_id for r in store.runs.page(pipeline="a", status="failed")] == [ids[3]]
    assert store.runs.count(pipeline="a", status="failed") == 1
    assert store.runs.count(pipeline="nope") == 0
    assert store.runs.page()[0].steps == []


def test_page_rejects_an_unknown_status(store: Store) -> None:
    with pytest.raises(StoreError, match="unknown run status 'done'.*Use one of: failed, running, succeeded"):
        store.runs.page(status="done")
    with pytest.raises(StoreError, match="unknown run status 'stale'"):
        store.runs.count(status="stale")


def test_pipelines_are_the_distinct_names_sorted(store: Store) -> None:
    assert store.runs.pipelines() == []
    make_runs(store, 3)
    store.runs.create_run("c<script>", "h", {}, {})
    assert store.runs.pipelines() == ["a", "b", "c<script>"]


def test_step_counts_per_run_and_status_in_one_query(store: Store) -> None:
    first, second, empty = make_runs(store, 3)
    store.runs.record_steps(first, [record("s1", "succeeded"), record("s2", "succeeded"), record("s3", "cached")])
    store.runs.record_steps(second, [record("s1", "cached"), record("s2", "failed")])
    counts = store.runs.step_counts([first, second, empty])
    assert counts == {
        first: {"succeeded": 2, "cached": 1, "failed": 0},
        second: {"succeeded": 0, "cached": 1, "failed": 1},
        empty: {"succeeded": 0, "cached": 0, "failed": 0},
    }
    assert store.runs.step_counts([]) == {}
    assert store.runs.step_counts([second]) == {second: counts[second]}
