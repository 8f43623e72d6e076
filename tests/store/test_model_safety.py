"""The model repository under concurrent writers and killed writers (real processes, both backends)."""

from __future__ import annotations

import hashlib
import multiprocessing
import random
import time
from datetime import timedelta
from typing import Any

from loopline.store import Store

from ._raw import Raw
from ._workers import open_and_register, write_candidates

WITH_S3 = {"test_kill_9_during_candidate_writes_leaves_whole_candidates_or_nothing"}
KILLS = 15
BUNDLE_BYTES = 16_000_000
# on the S3 test server an upload is slower: smaller candidates, fewer kills, a longer window before each
S3_KILLS, S3_BUNDLE_BYTES, S3_WINDOW_S = 6, 1_000_000, 1.5


def test_four_processes_register_twenty_versions_without_gaps(store: Store, store_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    processes, count = 4, 5
    barrier = ctx.Barrier(processes)
    results: Any = ctx.Queue()
    root = store.artifacts.location
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


def test_kill_9_during_candidate_writes_leaves_whole_candidates_or_nothing(
    store: Store, store_url: str, raw: Raw, backend: str
) -> None:
    ctx = multiprocessing.get_context("spawn")
    root, debris = store.artifacts.location, 0
    kills, size, window = (S3_KILLS, S3_BUNDLE_BYTES, S3_WINDOW_S) if backend == "s3" else (KILLS, BUNDLE_BYTES, 0.5)
    for kill in range(kills):
        ready = ctx.Event()
        writer = ctx.Process(target=write_candidates, args=(store_url, root, ready, size))
        writer.start()
        assert ready.wait(timeout=120), "the writer did not open the store"
        if kill == kills - 1:  # on a loaded machine no write may finish within the windows: let one land first
            wait_for_a_version(store, writer)
        writer.join(timeout=random.uniform(0.05, window))  # returns early only if the writer died by itself
        assert writer.exitcode is None, "the writer stopped before it was killed"
        writer.kill()  # SIGKILL
        writer.join(timeout=30)
        report = store.check()
        assert report.missing == [] and report.corrupted == []
        assert_every_blob_verifies(store, raw)
        for model in store.models.list("killed"):  # every visible row is a whole candidate
            store.artifacts.get_bytes(model.bundle_digest)
            assert model.reference_digest is not None
            assert store.artifacts.get_table(model.reference_digest).height == size // 8
        debris = max(debris, len(report.temp_files) + len(report.orphans))
    versions = [m.version for m in store.models.list("killed")]
    assert versions == list(range(1, len(versions) + 1)) and versions
    assert debris > 0, "no kill landed in the middle of a candidate write"
    assert store.check(fix=True, grace=timedelta(0)).clean
    assert store.check() == type(report)(artifacts=2 * len(versions), referenced=2 * len(versions))


def wait_for_a_version(store: Store, writer: Any, timeout: float = 120.0) -> None:
    """Until the ``killed`` model has a version (the writer keeps writing meanwhile), at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not store.models.list("killed"):
        assert writer.exitcode is None, "the writer stopped before it was killed"
        assert time.monotonic() < deadline, f"no candidate landed within {timeout:.0f} s"
        time.sleep(0.05)


def assert_every_blob_verifies(store: Store, raw: Raw) -> None:
    """No partly written file is readable under a digest: every blob hashes to its own name."""
    for entry in store.artifacts.entries():
        if entry.digest is not None:
            assert hashlib.sha256(raw.read(entry.name)).hexdigest() == entry.digest
