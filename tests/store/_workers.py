"""Functions run in spawned processes by the concurrency tests (importable by module name)."""

from __future__ import annotations

import os
import traceback
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier, Event
from typing import Any

import numpy as np
import polars as pl

from loopline.core.records import Candidate, Features, TrainReport
from loopline.store import Store

_REPORT = TrainReport(
    algorithm="a",
    metrics={},
    params={},
    timings={},
    input_schema=[],
    features=Features(),
    target="y",
    task="binary",
    data_fingerprint="f",
    rows={},
    step_config={},
)


def open_and_register(url: str, root: str, barrier: Barrier, count: int, results: Queue[Any]) -> None:
    """Open a (possibly fresh) store at the same moment as the other workers, then register ``count`` versions."""
    try:
        barrier.wait(timeout=60)
        store = Store.open(url, root)
        barrier.wait(timeout=60)
        try:
            versions = [_register(store).version for _ in range(count)]
        finally:
            store.close()
        results.put(("ok", versions))
    except BaseException:
        results.put(("error", traceback.format_exc()))


def _register(store: Store) -> Any:
    return store.models.register(
        name="concurrent",
        algorithm="a",
        bundle_digest="b" * 64,
        reference_digest=None,
        metrics={},
        params={},
        config={},
        input_schema=[],
        data_fingerprint="f",
        run_id=None,
        timings={},
    )


def write_candidates(url: str, root: str, ready: Event, size: int) -> None:
    """Register big candidates (fresh random bytes each) until killed; ``ready`` is set once the store is open."""
    store = Store.open(url, root)
    ready.set()
    while True:
        bundle = os.urandom(size)
        reference = pl.DataFrame({"x": np.random.default_rng().random(size // 8)})
        store.models.register_candidate("killed", Candidate(bundle, reference, _REPORT))
