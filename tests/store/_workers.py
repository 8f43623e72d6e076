"""Functions run in spawned processes by the concurrency tests (importable by module name)."""

from __future__ import annotations

import traceback
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

from loopline.store import Store


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
