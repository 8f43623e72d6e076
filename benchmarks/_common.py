"""Helpers shared by the benchmarks: timing, summaries, the final JSON line."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[[], Any]) -> float:
    """Seconds one call of ``fn`` takes."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def alternate(contenders: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Warm each contender up once, then time them in turn (A B A B ...) ``repeats`` times."""
    for fn in contenders.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            times[name].append(timed(fn))
    return times


def summary(samples: list[float]) -> dict[str, float]:
    """min / median / max."""
    return {"min": min(samples), "median": statistics.median(samples), "max": max(samples)}


def machine() -> dict[str, Any]:
    """What ran the benchmark."""
    import os

    return {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()}


def final_line(bench: str, **fields: Any) -> None:
    """The last line of every benchmark: one JSON object."""
    print(json.dumps({"bench": bench, **fields}, default=str))
