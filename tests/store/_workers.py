"""Functions run in spawned processes by the concurrency tests (importable by module name)."""

from __future__ import annotations

import os
import traceback
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier, Event
from typing import Any

import numpy as np
import polars as pl
from tests._candidates import stub_candidate

from loopline.store import ArtifactStore, FsspecArtifactStore, Store, open_artifacts


def open_and_register(url: str, root: str, barrier: Barrier, count: int, results: Queue[Any]) -> None:
    """Open a (possibly fresh) store at the same moment as the other workers, then register ``count`` versions."""
    try:
        barrier.wait(timeout=60)
        store = Store.open(url, root)
        barrier.wait(timeout=60)
        try:
            versions = [register_stub(store).version for _ in range(count)]
        finally:
            store.close()
        results.put(("ok", versions))
    except BaseException:
        results.put(("error", traceback.format_exc()))


def register_stub(store: Store, name: str = "concurrent") -> Any:
    """Register a version of ``name`` whose bundle is a few stub bytes (for tests of the repository alone)."""
    return store.models.register(
        name=name,
        algorithm="a",
        bundle_digest=store.artifacts.put_bytes(b"bundle"),
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
    """Register big candidates (fresh random bytes each) until killed; ``ready`` is set once the store is open
    and reachable."""
    store = Store.open(url, root)
    store.artifacts.exists("0" * 64)  # connected (an object store's client is made on first use)
    ready.set()
    while True:
        bundle = os.urandom(size)
        reference = pl.DataFrame({"x": np.random.default_rng().random(size // 8)})
        store.models.register_candidate("killed", stub_candidate(bundle, reference))


def artifacts_at(location: str) -> ArtifactStore:
    """The store at ``location``; a ``file://`` URL gets the fsspec store (the factory would give the folder)."""
    return FsspecArtifactStore(location) if location.startswith("file://") else open_artifacts(location)


def put_same_blobs(location: str, barrier: Barrier, count: int, size: int, results: Queue[Any]) -> None:
    """Store the same ``count`` blobs (a fixed seed) as the other workers, in step with them."""
    try:
        artifacts = artifacts_at(location)
        rng = np.random.default_rng(7)
        blobs = [rng.bytes(size) for _ in range(count)]
        barrier.wait(timeout=60)
        results.put(("ok", [artifacts.put_bytes(blob) for blob in blobs]))
    except BaseException:
        results.put(("error", traceback.format_exc()))


def put_blobs_until_killed(location: str, ready: Event, size: int) -> None:
    """Store fresh random blobs, as bytes and as files, until killed; ``ready`` is set after the first."""
    artifacts = artifacts_at(location)
    artifacts.put_bytes(os.urandom(size))
    ready.set()
    while True:
        artifacts.put_bytes(os.urandom(size))
        artifacts.put_table(pl.DataFrame({"x": np.random.default_rng().random(size // 8)}))
