"""The run's heartbeat: stamped while the run runs, stopped with it."""

from __future__ import annotations

import time

from loopline.run._heartbeat import Heartbeat
from loopline.store import Store


def test_the_heartbeat_stamps_the_run_while_it_runs(store: Store) -> None:
    run_id = store.runs.create_run("p", "h", {}, {})
    first = store.runs.get(run_id).heartbeat_at
    with Heartbeat(store, run_id, interval=0.02):
        deadline = time.monotonic() + 10
        while store.runs.get(run_id).heartbeat_at == first and time.monotonic() < deadline:
            time.sleep(0.02)
    beat = store.runs.get(run_id).heartbeat_at
    assert first is not None and beat is not None and beat > first
    time.sleep(0.1)
    assert store.runs.get(run_id).heartbeat_at == beat  # stopped with the block
