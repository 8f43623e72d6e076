"""Holding a lease while work runs: renewed in the background, released at the end, lost when taken."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from loopline.run._lease import LeaseKeeper
from loopline.store import Store
from loopline.store._tables import loop_leases
from loopline.store.loop import LoopStore


def test_a_held_lease_is_renewed_and_released_even_when_the_work_fails(store: Store) -> None:
    loops = LoopStore(store.engine)
    ttl = timedelta(seconds=0.6)  # renewed every 0.2s
    lease = loops.acquire("work", ttl)
    assert lease is not None
    with pytest.raises(RuntimeError, match="boom"), LeaseKeeper(loops, lease, ttl) as keeper:
        time.sleep(1.5)  # past the first expiry: only renewals keep it
        holder = loops.holder("work")
        assert holder is not None and not holder.lapsed(datetime.now(UTC)) and holder.holder == lease.holder
        assert holder.heartbeat > holder.acquired_at and not keeper.lost.is_set()
        raise RuntimeError("boom")
    assert loops.holder("work") is None


def test_a_lease_taken_by_another_process_is_reported_lost(store: Store) -> None:
    loops = LoopStore(store.engine)
    ttl = timedelta(seconds=0.3)
    lease = loops.acquire("work", ttl)
    assert lease is not None
    with LeaseKeeper(loops, lease, ttl) as keeper:
        with store.engine.begin() as conn:  # as if it lapsed and another loop took it
            conn.execute(update(loop_leases).values(holder="someone-else"))
        assert keeper.lost.wait(timeout=5)
    assert loops.holder("work").holder == "someone-else"  # type: ignore[union-attr]  # not released: not ours
