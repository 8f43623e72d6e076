"""Functions run in spawned processes by the alias concurrency tests (importable by module name)."""

from __future__ import annotations

import traceback
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

from loopline.core.errors import ConflictError
from loopline.store import Store

MODEL = "race"


def promote_rounds(url: str, root: str, barrier: Barrier, index: int, rounds: int, results: Queue[Any]) -> None:
    """Each round: read production, wait for every worker, then promote a version of our own (the ``index``-th
    version that is not production now). The first ``rounds`` rounds use compare-and-set (only if production
    is still what we read), the next ``rounds`` plain promotions."""
    outcomes: list[tuple[int, str, int, str]] = []
    try:
        store = Store.open(url, root)
        try:
            for number in range(2 * rounds):
                cas = number < rounds
                barrier.wait(timeout=120)
                production = store.models.production(MODEL)
                current = 0 if production is None else production.version
                others = [v.version for v in store.models.list(MODEL) if v.version != current]
                target = others[index]
                barrier.wait(timeout=120)
                try:
                    store.models.promote(
                        MODEL,
                        target,
                        reason=f"round {number}",
                        actor=f"worker-{index}",
                        expect=current if cas else None,
                    )
                    outcomes.append((number, "won", target, ""))
                except ConflictError as exc:
                    outcomes.append((number, "lost", target, str(exc)))
        finally:
            store.close()
        results.put(("ok", index, outcomes))
    except BaseException:
        results.put(("error", index, traceback.format_exc()))
