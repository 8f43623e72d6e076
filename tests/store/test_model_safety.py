"""The model repository under concurrent writers and killed writers (real processes, both backends)."""

from __future__ import annotations

import multiprocessing
from typing import Any

from loopline.store import Store

from ._workers import open_and_register


def test_four_processes_register_twenty_versions_without_gaps(store: Store, store_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    processes, count = 4, 5
    barrier = ctx.Barrier(processes)
    results: Any = ctx.Queue()
    root = str(store.artifacts.root)
    workers = [
        ctx.Process(target=open_and_register, args=(store_url, root, barrier, count, results)) for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=180) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert [detail for status, detail in outcomes if status == "error"] == []
    landed = sorted(v for _, versions in outcomes for v in versions)
    assert landed == list(range(1, processes * count + 1))
    assert [m.version for m in store.models.list("concurrent")] == landed
