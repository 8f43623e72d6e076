"""What the over-time report sections draw, read from the store: windows and alerts, loop events, the audit trail.

The report package renders records; this module fetches them (the data gathering stays on this side of the
layers, as :func:`loopline.cli._loop.write_report` does for the one-shot report).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import polars as pl

from loopline.core.errors import NotFoundError

if TYPE_CHECKING:
    from loopline.monitor import WindowResult
    from loopline.report import TimelineEntry, WindowsView
    from loopline.store import ModelVersion, Store

REPORT_EVENTS = 1000
"""Loop events a report shows by default (the newest)."""


@dataclass(frozen=True)
class WindowFrames:
    """A window's drift report with the frames it compared: the training reference and the window's rows."""

    window: WindowResult
    reference: pl.DataFrame
    current: pl.DataFrame


def windows_view(store: Store, model: str, spec: str | None = None) -> WindowsView:
    """The closed windows of ``model`` for ``spec`` (default: the spec of the newest closed window) and their
    alerts; an empty view before the first window."""
    from loopline.report import WindowAlert, WindowsView
    from loopline.run import stored_windows

    if spec is None:
        stored = store.windows.list(model)
        spec = max(stored, key=lambda w: w.closed_at).spec if stored else None
    if spec is None:
        return WindowsView(None, [])
    windows = stored_windows(store, model, spec)
    text = windows[0].spec if windows else spec
    alerts = [
        WindowAlert(a.spec, a.window_start, a.window_end, a.rule, a.metric, a.op, a.threshold, a.value, a.acknowledged)
        for a in store.alerts.list(model)
    ]
    return WindowsView(text, windows, alerts)


def timeline(store: Store, pipeline: str, model: str | None, *, limit: int) -> tuple[list[TimelineEntry], bool]:
    """The newest ``limit`` loop events of ``pipeline`` and the audit trail of ``model`` from the oldest of them on
    (all of it when the events are not cut), oldest first; and whether the events were cut."""
    from loopline.report import AuditEntry, TimelineEntry, timeline_entries
    from loopline.store.loop import LoopStore

    stored = LoopStore(store.engine).events(pipeline, limit=limit)
    events = [TimelineEntry(e.at, e.kind, e.reason, "loop", e.model, dict(e.details)) for e in stored]
    truncated = len(events) == limit
    audit: list[AuditEntry] = []
    if model is not None:
        try:
            audit = [AuditEntry.from_row(model, row) for row in store.models.events(model)]
        except NotFoundError:  # no version registered yet: no audit trail
            audit = []
    if truncated and events:
        oldest = min(e.at for e in events)
        audit = [a for a in audit if a.at >= oldest]
    return timeline_entries(events, audit), truncated


def window_frames(store: Store, production: ModelVersion | None, windows: list[WindowResult]) -> WindowFrames | None:
    """The newest window with a drift report, with the production reference and that window's logged rows
    (the reference-vs-window overlays); None when there is no such window or no reference to compare."""
    chosen = next((w for w in reversed(windows) if w.drift is not None), None)
    if chosen is None or production is None or production.reference_digest is None:
        return None
    if chosen.reference_version not in (None, production.version):
        return None  # the window was compared with another version's reference, no longer at hand here
    from loopline.monitor import WindowSpec

    reference = store.artifacts.get_table(production.reference_digest)
    fields = [f.feature for f in chosen.drift.features] if chosen.drift else []
    # a time window is [start, end); a count window's end is its last row's time, included
    end = chosen.end + timedelta(microseconds=1) if WindowSpec.parse(chosen.spec).by_count else chosen.end
    chunks = list(store.predictions.read_chunks(chosen.model, fields, start=chosen.start, end=end))
    current = pl.concat(chunks, how="diagonal_relaxed") if chunks else pl.DataFrame()
    return WindowFrames(chosen, reference, current)
