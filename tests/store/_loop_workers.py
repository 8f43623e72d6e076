"""Functions run in spawned processes by the lease tests (importable by module name)."""

from __future__ import annotations

import traceback
from datetime import timedelta
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

from sqlalchemy import create_engine

from loopline.store.loop import LoopStore


def race_for_lease(url: str, barrier: Barrier, results: Queue[Any]) -> None:
    """Acquire the lease ``race`` at the same moment as the other workers; report the holder token or None."""
    try:
        engine = create_engine(url)
        try:
            loops = LoopStore(engine)
            barrier.wait(timeout=60)
            lease = loops.acquire("race", timedelta(minutes=5))
            results.put(("ok", None if lease is None else lease.holder))
        finally:
            engine.dispose()
    except BaseException:
        results.put(("error", traceback.format_exc()))


def hold_and_die(url: str, results: Queue[Any]) -> None:
    """Take the lease ``crash`` and end without releasing it (as a killed process would)."""
    engine = create_engine(url)
    lease = LoopStore(engine).acquire("crash", timedelta(hours=1))
    results.put(None if lease is None else lease.holder)
    engine.dispose()
