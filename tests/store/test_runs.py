from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from loopline.core.errors import NotFoundError, StoreError
from loopline.store import StepRecord, Store

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


OUT = {"out": {"digest": "d" * 64, "kind": "table"}}


def step(
    name: str,
    *,
    status: str = "succeeded",
    key: str | None = "k1",
    offset: int = 0,
    outputs: dict[str, dict[str, str]] = OUT,
    error: str | None = None,
    attempt: int = 1,
) -> StepRecord:
    return StepRecord(
        step=name,
        type="python",
        status=status,
        cache_key=key,
        started_at=T0 + timedelta(seconds=offset),
        finished_at=T0 + timedelta(seconds=offset + 1),
        duration_s=1.0,
        config={"n": 1},
        outputs=dict(outputs),
        error=error,
        attempt=attempt,
    )


def test_create_run_and_get(store: Store) -> None:
    run_id = store.runs.create_run("flights", "h" * 64, {"steps": []}, {"seed": 1})
    run = store.runs.get(run_id)
    assert len(run_id) == 32
    assert (run.pipeline, run.status, run.spec, run.params) == ("flights", "running", {"steps": []}, {"seed": 1})
    assert run.started_at.tzinfo is not None and run.started_at.utcoffset() == timedelta(0)
    assert run.finished_at is None and run.steps == []


def test_set_status_stamps_finished_at_and_error(store: Store) -> None:
    run_id = store.runs.create_run("p", "h", {}, {})
    store.runs.set_status(run_id, "failed", error="boom")
    run = store.runs.get(run_id)
    assert (run.status, run.error) == ("failed", "boom")
    assert run.finished_at is not None and run.finished_at >= run.started_at


def test_set_status_rejects_unknown_status(store: Store) -> None:
    run_id = store.runs.create_run("p", "h", {}, {})
    with pytest.raises(StoreError, match="unknown run status 'done'.*Use one of: failed, running, succeeded"):
        store.runs.set_status(run_id, "done")


def test_record_steps_round_trip_and_upsert(store: Store) -> None:
    run_id = store.runs.create_run("p", "h", {}, {})
    store.runs.record_steps(run_id, [step("load"), step("train", status="failed", key=None, offset=5, error="x")])
    store.runs.record_steps(run_id, [step("train", offset=5, attempt=2)])
    steps = store.runs.get(run_id).steps
    assert [s.step for s in steps] == ["load", "train"]
    assert steps[0] == step("load")
    assert (steps[1].status, steps[1].attempt, steps[1].error) == ("succeeded", 2, None)
    assert steps[1].started_at == T0 + timedelta(seconds=5)


def test_find_cached_returns_latest_successful_outputs(store: Store) -> None:
    old, new, failed = ({"out": {"digest": c * 64, "kind": "json"}} for c in "abc")
    first = store.runs.create_run("p", "h", {}, {})
    second = store.runs.create_run("p", "h", {}, {})
    store.runs.record_steps(first, [step("s", outputs=old)])
    store.runs.record_steps(second, [step("s", status="cached", offset=10, outputs=new)])
    store.runs.record_steps(second, [step("t", status="failed", offset=20, outputs=failed)])
    assert store.runs.find_cached("k1") == new
    assert store.runs.find_cached("unknown") is None


def test_get_unknown_run_says_how_to_list_runs(store: Store) -> None:
    with pytest.raises(NotFoundError, match=r"run 'nope' does not exist\. List runs with `loopline runs list`\."):
        store.runs.get("nope")


def test_unknown_run_cannot_get_steps_or_status(store: Store) -> None:
    with pytest.raises(NotFoundError, match="run 'nope' does not exist"):
        store.runs.record_steps("nope", [step("s")])
    with pytest.raises(NotFoundError, match="run 'nope' does not exist"):
        store.runs.set_status("nope", "succeeded")


def test_list_is_newest_first_with_filter_and_limit(store: Store) -> None:
    ids = [store.runs.create_run("a" if i % 2 else "b", "h", {}, {}) for i in range(4)]
    assert [r.run_id for r in store.runs.list()] == ids[::-1]
    assert [r.run_id for r in store.runs.list(pipeline="a")] == [ids[3], ids[1]]
    assert [r.run_id for r in store.runs.list(limit=1)] == [ids[3]]
