"""The loop service's store: leases (atomic across processes, lapsing when their holder dies) and events, on
SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from loopline.core.errors import StoreError
from loopline.store import Store
from loopline.store._tables import loop_leases
from loopline.store.loop import LoopStore

from ._loop_workers import hold_and_die, race_for_lease

TTL = timedelta(minutes=5)


@pytest.fixture
def loops(store: Store) -> LoopStore:
    return LoopStore(store.engine)


def test_a_lease_is_held_by_one_until_released(loops: LoopStore) -> None:
    first = loops.acquire("retrain:p", TTL)
    assert first is not None and first.previous is None
    assert loops.acquire("retrain:p", TTL) is None  # held by a live process (this one)
    assert loops.acquire("retrain:other", TTL) is not None  # another name is another lease
    holder = loops.holder("retrain:p")
    assert holder is not None and holder.holder == first.holder and holder.owner_pid == os.getpid()
    assert loops.renew(first, TTL)
    assert loops.release(first) and loops.holder("retrain:p") is None
    assert not loops.release(first) and not loops.renew(first, TTL)  # no longer this holder's
    again = loops.acquire("retrain:p", TTL)
    assert again is not None and again.holder != first.holder and again.previous is None


def test_an_expired_lease_is_taken_over_and_its_old_holder_loses_it(loops: LoopStore, store: Store) -> None:
    old = loops.acquire("retrain:p", TTL)
    assert old is not None
    past = datetime.now(UTC) - timedelta(seconds=1)
    with store.engine.begin() as conn:  # the holder stopped renewing: its lease expired
        conn.execute(update(loop_leases).values(expires_at=past))
    new = loops.acquire("retrain:p", TTL)
    assert new is not None and new.previous is not None and new.previous.holder == old.holder
    assert not loops.renew(old, TTL) and not loops.release(old)  # the old holder cannot renew or drop it
    assert loops.holder("retrain:p").holder == new.holder  # type: ignore[union-attr]


def test_the_lease_of_a_dead_process_lapses_before_its_expiry(loops: LoopStore, store_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    results: Any = ctx.Queue()
    worker = ctx.Process(target=hold_and_die, args=(store_url, results))
    worker.start()
    dead = results.get(timeout=120)
    worker.join(timeout=30)
    assert dead is not None
    holder = loops.holder("crash")
    assert holder is not None and holder.expires_at > datetime.now(UTC) + timedelta(minutes=50)
    assert holder.lapsed(datetime.now(UTC))  # its process is gone (same host)
    taken = loops.acquire("crash", TTL)
    assert taken is not None and taken.previous is not None and taken.previous.owner_pid == worker.pid


def test_processes_racing_for_a_lease_get_exactly_one(store_url: str, loops: LoopStore) -> None:
    ctx = multiprocessing.get_context("spawn")
    count = 4
    barrier, results = ctx.Barrier(count), ctx.Queue()
    workers = [ctx.Process(target=race_for_lease, args=(store_url, barrier, results)) for _ in range(count)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert all(status == "ok" for status, _ in outcomes), outcomes
    winners = [holder for _, holder in outcomes if holder is not None]
    assert len(winners) == 1
    # every worker has ended, so the lease lapsed: the next acquirer takes it over from the winner
    taken = loops.acquire("race", TTL)
    assert taken is not None and taken.previous is not None and taken.previous.holder == winners[0]


def test_events_are_listed_newest_first_by_pipeline_and_kind(loops: LoopStore) -> None:
    tick = loops.record("p", "tick", "2 of 3 features drifted", model="m", details={"drifted": ["x", "g"]})
    loops.record("p", "trigger", "drift", model="m")
    loops.record("q", "tick", "other pipeline")
    retrain = loops.record("p", "retrain", "drift fired", model="m", details={"end": "2013-07-01"})
    events = loops.events("p")
    assert [e.kind for e in events] == ["retrain", "trigger", "tick"]
    assert events[-1] == tick and events[-1].details == {"drifted": ["x", "g"]} and events[-1].at.tzinfo
    assert [e.kind for e in loops.events("p", limit=1)] == ["retrain"]
    assert loops.last("p", "retrain") == retrain and loops.last("p", "gate") is None
    assert [e.kind for e in loops.events("p", kinds=("tick",))] == ["tick"]
    assert retrain.to_dict()["details"] == {"end": "2013-07-01"}


def test_an_unknown_event_kind_is_refused(loops: LoopStore) -> None:
    with pytest.raises(StoreError, match="unknown loop event kind 'retrained'"):
        loops.record("p", "retrained", "oops")
    assert loops.events("p") == []


def test_rows_since_counts_the_rows_committed_to_the_datasets_after_a_moment(store: Store, loops: LoopStore) -> None:
    digest = store.artifacts.put_bytes(b"part")
    for dataset, rows in (("a", 10), ("a", 5), ("b", 7), ("c", 100)):
        store.datasets.commit_batch(dataset, "src", digest=digest, rows=rows, size=4, position=None)
    assert loops.rows_since(["a", "b"], None) == 22
    assert loops.rows_since(["a", "b"], datetime.now(UTC)) == 0
    assert loops.rows_since(["a", "b"], datetime.now(UTC) - timedelta(hours=1)) == 22
    assert loops.rows_since([], None) == 0
