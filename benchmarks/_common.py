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


def paired_ratios(peer: list[float], ours: list[float]) -> list[float]:
    """peer / ours for each alternated repeat (bigger is better for loopline when both are times)."""
    if len(peer) != len(ours) or not peer:
        raise ValueError(f"paired ratios need equal, non-empty sample lists ({len(peer)} vs {len(ours)})")
    return [p / o for p, o in zip(peer, ours, strict=True)]


def goal(samples: list[float], target: float) -> dict[str, Any]:
    """A stated goal judged on the worst sample (the minimum of a bigger-is-better ratio), never the median."""
    worst = min(samples)
    return {
        "goal": target,
        "worst": worst,
        "median": statistics.median(samples),
        "best": max(samples),
        "met": worst >= target,
    }


def spread_table(rows: dict[str, list[float]], unit: str = "s") -> str:
    """A human table: one row per figure with its min / median / max and the number of samples."""
    width = max([len(name) for name in rows] + [6])
    lines = [f"{'figure':<{width}}  {'min':>10}  {'median':>10}  {'max':>10}  n   ({unit})"]
    for name, samples in rows.items():
        s = summary(samples)
        lines.append(f"{name:<{width}}  {s['min']:>10.4g}  {s['median']:>10.4g}  {s['max']:>10.4g}  {len(samples)}")
    return "\n".join(lines)
