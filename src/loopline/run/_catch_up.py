"""One bounded catch-up pass of a pipeline's continuous sources: what a cron tick (``loopline loop --once``) runs
instead of supervising them.

The long-lived loop supervises the continuous sources (each one a child process that follows its source). A
cron tick lives for one tick, so it cannot follow anything; it reads each source instead from its committed
checkpoint to what the source holds now (``follow: false``), within a time ``budget`` shared by the sources,
then ticks on the data. Each batch is committed with its checkpoint in one transaction and acknowledged after
(:func:`~loopline.run._ingest.ingest_source`): a pass cut short by the budget, a crash or SIGTERM resumes at the
next tick from the last committed batch, and nothing is stored twice. The pass takes the sources' lock: when a
supervisor (``loopline loop``, ``loopline sources run``) runs them already, the pass leaves them to it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loopline.core.errors import LooplineError
from loopline.ingest import Limits
from loopline.run._ingest import ingest_source
from loopline.run._supervisor import ContinuousSource, continuous_sources, hold_sources_lock

if TYPE_CHECKING:
    from loopline.core.pipeline import Pipeline
    from loopline.store import Store

CatchUpState = Literal["caught up", "budget spent", "stopped", "supervised", "skipped", "failed"]


@dataclass(frozen=True)
class CatchUp:
    """One source's pass: ``state`` (``caught up``: read to the end; ``budget spent``: stopped at the budget,
    the next tick goes on; ``stopped``: by a signal; ``supervised``: another process runs it; ``skipped``: no
    budget left, or stopped before it; ``failed``),
    the rows and batches committed, the dataset version it made, and a ``note``."""

    step: str
    dataset: str
    state: CatchUpState
    rows: int = 0
    batches: int = 0
    version: int | None = None
    note: str = ""

    def describe(self) -> str:
        done = f"{self.rows} rows in {self.batches} batches" + (f", v{self.version}" if self.version else "")
        return f"{self.step} -> {self.dataset}: {self.state} ({self.note or done})"


def catch_up_sources(
    store: Store,
    pipeline: Pipeline,
    home: Path,
    *,
    budget: timedelta,
    params: Mapping[str, Any] | None = None,
    stop: threading.Event | None = None,
) -> list[CatchUp]:
    """Read each continuous source of ``pipeline`` from its checkpoint to its current end, within ``budget`` in
    all (see the module docstring); [] when it has none. ``stop`` (SIGTERM) ends the pass after the batch in
    hand. Never raises for a source's failure (its ``failed``)."""
    sources = continuous_sources(pipeline, params)
    if not sources:
        return []
    try:
        lock = hold_sources_lock(home, pipeline.name)
    except LooplineError as error:
        return [CatchUp(s.step, s.dataset, "supervised", note=error.message) for s in sources]
    deadline = time.monotonic() + budget.total_seconds()
    stop = stop or threading.Event()
    found: list[CatchUp] = []
    try:
        for source in sources:
            if stop.is_set() or time.monotonic() >= deadline:
                why = "stopped (a signal)" if stop.is_set() else "the catch-up budget was spent"
                found.append(CatchUp(source.step, source.dataset, "skipped", note=why))
                continue
            found.append(_one(store, source, deadline, stop))
    finally:
        lock.close()
    return found


def _one(store: Store, source: ContinuousSource, deadline: float, stop: threading.Event) -> CatchUp:
    from loopline.run.steps._ingest import build_source

    halt, done = threading.Event(), threading.Event()

    def watch() -> None:  # halts the ingest at the deadline or on ``stop``, whichever comes first
        while not done.wait(0.1):
            if stop.is_set() or time.monotonic() >= deadline:
                halt.set()
                return

    watcher = threading.Thread(target=watch, name="loopline-catch-up", daemon=True)
    watcher.start()
    try:
        report = ingest_source(
            store,
            build_source(source.source),
            dataset=source.dataset,
            source_name=source.step,
            follow=False,
            limits=Limits(source.batch_rows, source.batch_seconds),
            policy=source.policy,
            stop=halt,
        )
    except LooplineError as error:
        return CatchUp(source.step, source.dataset, "failed", note=error.message)
    finally:
        done.set()
        watcher.join()
    state: CatchUpState = "caught up" if not halt.is_set() else "stopped" if stop.is_set() else "budget spent"
    return CatchUp(source.step, source.dataset, state, report.rows, report.batches, report.version)
