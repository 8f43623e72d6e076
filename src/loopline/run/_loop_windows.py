"""What a loop tick does before it decides: sync the labels, close the due windows, refresh late labels, and
read the production model's signals from its newest closed windows.

Every step is bounded: the label source is synced over the label horizon only, reading the outcome rows
committed since the last tick only, a window check reads the new
rows of the prediction log only, a refresh touches the windows of the label horizon whose labels changed.
A step that cannot run (no production model yet, no traffic, no label dataset yet) becomes a note of the tick,
never a failed tick.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from loopline.core.errors import ConfigError, LooplineError
from loopline.monitor import WindowResult, WindowSpec
from loopline.run._window_accuracy import newest_accuracy, refresh_window_labels
from loopline.run._windows import check_windows, stored_windows

if TYPE_CHECKING:
    from loopline.core.config import MonitorConfig
    from loopline.monitor import DriftReport
    from loopline.store import ModelVersion, Store

log = logging.getLogger("loopline.loop")


@dataclass(frozen=True)
class WindowSignals:
    """What the newest closed windows of the production version tell: their drift, the newest realised metric
    (on ``realised_rows`` labelled rows, ``realised_positives`` of them positive: None unless a binary model's
    window counted them) and the newest estimated one; ``windows`` is how many were read."""

    drift: DriftReport | None = None
    realised: float | None = None
    realised_rows: int = 0
    realised_positives: int | None = None
    estimated: float | None = None
    estimated_band: tuple[float, float] | None = None
    windows: int = 0


@dataclass
class Preparation:
    """What a tick's preparation did (its ``details`` go into the tick event) and its ``notes``."""

    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def window_spec(config: MonitorConfig) -> WindowSpec | None:
    """``monitor.loop.window`` parsed (None: the loop closes no window); ConfigError naming the key."""
    if config.loop.window is None:
        return None
    try:
        return WindowSpec.parse(config.loop.window)
    except ConfigError as error:
        raise ConfigError(f"monitor.loop.window: {error.detail}", key="monitor.loop.window", hint=error.hint) from None


def prepare(store: Store, config: MonitorConfig, now: datetime) -> Preparation:
    """Sync ``monitor.labels`` over the label horizon, close the due ``monitor.loop.window`` windows, then
    refresh the closed windows whose labels changed."""
    out = Preparation()
    horizon = config.loop.label_horizon_td
    if config.labels is not None:
        from loopline.run._feedback import sync_label_source

        try:
            load = sync_label_source(
                store, config.model, config.labels, since=now - horizon, until=now, incremental=True
            )
            out.details["labels"] = {
                "stored": load.stored, "updated": load.updated, "rows": load.rows, "outcomes": load.outcomes
            }  # fmt: skip
        except LooplineError as error:
            out.notes.append(f"labels not synced: {error}")
    spec = window_spec(config)
    if spec is None:
        return out
    try:
        check = check_windows(store, config, spec, now=now)
        refreshed, alerts = refresh_window_labels(store, config, spec, horizon=horizon, now=now)
    except LooplineError as error:
        out.notes.append(f"windows not closed: {error}")
        return out
    out.details["windows"] = {
        "spec": spec.text,
        "closed": len(check.closed),
        "refreshed": len(refreshed),
        "alerts": len(check.alerts) + len(alerts),
    }
    return out


def window_signals(
    store: Store, config: MonitorConfig, production: ModelVersion | None, metric: str, now: datetime
) -> WindowSignals | None:
    """The signals of the closed windows (within the label horizon) computed against ``production``; None
    when the loop closes no window or none is there yet."""
    spec = window_spec(config)
    if spec is None or production is None:
        return None
    since = now - max(config.loop.label_horizon_td, spec_span(spec))
    windows = [
        w for w in stored_windows(store, config.model, spec, since=since) if w.reference_version == production.version
    ]
    if not windows:
        return None
    drift = next((w.drift for w in reversed(windows) if w.drift is not None), None)
    realised, estimated = newest_accuracy(windows, metric)
    return WindowSignals(
        drift=drift,
        realised=_metric(realised, metric, "realised"),
        realised_rows=(realised.labelled_rows or 0) if realised else 0,
        realised_positives=realised.labelled_positives if realised else None,
        estimated=_metric(estimated, metric, "estimated"),
        estimated_band=(estimated.estimated_bands or {}).get(metric) if estimated else None,
        windows=len(windows),
    )


def spec_span(spec: WindowSpec) -> timedelta:
    """How long one window of ``spec`` lasts (a month: 31 days at most; a count window: zero)."""
    if spec.by_count:
        return timedelta(0)
    start, end = spec.bounds(spec.seq_of(datetime(2001, 1, 1, tzinfo=UTC)))
    return end - start


def _metric(window: WindowResult | None, metric: str, kind: str) -> float | None:
    if window is None:
        return None
    metrics = window.realised_metrics if kind == "realised" else window.estimated_metrics
    return (metrics or {}).get(metric)
