"""Windows over the prediction log, closed incrementally: health, drift and alerts per window, stored as they close.

:func:`check_windows` closes every complete window after the last one stored for (model, spec), stores each with
the alerts it fired (one transaction per window; the key ``(model, spec, seq)`` keeps a window from being
closed twice, even by two processes at once), then POSTs the alerts to the webhook ``monitor.alerts_webhook_env``
names. The first window not closed yet (still filling, or within its grace period) is computed on demand and
reported as open, never stored.

Cost: one ordered query over the ``(model_name, created_at)`` index from the first unclosed window on, fetched
``chunk_rows`` at a time, with the input fields extracted by the database; rows are split into windows as they
stream. A check reads the new rows (and those of the open window), never the whole log; memory holds one window's
needed columns plus one chunk, whatever the size of the log.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl

from loopline.core.config import MonitorConfig
from loopline.core.errors import DataError
from loopline.monitor import (
    DriftReport,
    ReferenceProfile,
    WindowResult,
    WindowSpec,
    check_alert_features,
    drift_report,
    fired_alerts,
    prediction_drift,
    window_health,
)
from loopline.run._loop import monitored_version
from loopline.run._webhook import deliver_alerts
from loopline.run._window_accuracy import AccuracyContext, accuracy_context, with_accuracy
from loopline.store.predictions import PROBABILITY_PREFIX

if TYPE_CHECKING:
    from loopline.core.records import Features
    from loopline.store import AlertEvent, ModelVersion, Store

CHUNK_ROWS = 5000
"""Rows fetched from the database at a time."""

GRACE = timedelta(seconds=30)
"""How long after its end a time window waits before it closes: rows the prediction service logged just before
the end may still be on their way from its spool to the store."""

_WEEK_OFFSET_US = 4 * 86_400_000_000  # 1970-01-05, the first Monday, after the epoch


@dataclass(frozen=True)
class WindowCheck:
    """What one check did: the windows it closed (oldest first), the open window, the alerts fired.

    ``rows_read`` counts the prediction rows the check fetched from the log.
    """

    model: str
    spec: str
    closed: list[WindowResult]
    open: WindowResult | None
    alerts: list[AlertEvent] = field(default_factory=list)
    rows_read: int = 0


@dataclass(frozen=True)
class _Context:
    """What every window of one check is computed against."""

    model: str
    spec: WindowSpec
    production: ModelVersion
    reference: pl.DataFrame
    features: Features
    categories: dict[str, frozenset[str]]
    config: MonitorConfig
    accuracy: AccuracyContext
    profile: ReferenceProfile | None = None
    probabilities: tuple[str, ...] = ()


def check_windows(
    store: Store,
    config: MonitorConfig,
    spec: WindowSpec | str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
    chunk_rows: int = CHUNK_ROWS,
    grace: timedelta = GRACE,
) -> WindowCheck:
    """Close, store and alert on every complete ``spec`` window of ``config.model``'s log after the last stored.

    ``since``: the first window starts no earlier (a time window: the one holding ``since``). ``until``: only
    windows (or rows, for count windows) before it; no open window is reported then. ``now``: the clock (tests).
    """
    spec = WindowSpec.parse(spec) if isinstance(spec, str) else spec
    now = (now or datetime.now(UTC)).astimezone(UTC)
    context = _context(store, config, spec)
    counter = _Counter()
    if spec.by_count:
        closed, open_window = _close_count_windows(store, context, since, until, chunk_rows, counter)
    else:
        closed, open_window = _close_time_windows(store, context, since, until, now, grace, chunk_rows, counter)
    events = [event for _, fired in closed for event in fired]
    if events and config.alerts_webhook_env:
        events = deliver_alerts(store, events, config.alerts_webhook_env)
    return WindowCheck(context.model, spec.text, [w for w, _ in closed], open_window, events, counter.rows)


def stored_windows(
    store: Store, model: str, spec: WindowSpec | str | None = None, *, since: datetime | None = None
) -> list[WindowResult]:
    """The closed windows of ``model`` stored so far (of one ``spec`` when given), oldest first."""
    text = None if spec is None else (spec.text if isinstance(spec, WindowSpec) else WindowSpec.parse(spec).text)
    return [WindowResult.from_dict(row.result) for row in store.windows.list(model, text, since=since)]


def window_drift(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    features: Features,
    config: MonitorConfig,
    profile: ReferenceProfile | None = None,
) -> DriftReport:
    """The drift of one window against the training reference — its profile when the version has one, else its
    stored sample — with the domain classifier on the sample's rows when ``monitor.drift.multivariate`` is on: the
    one place windows call the drift report."""
    return drift_report(
        reference if profile is None else profile,
        current,
        numeric=list(features.numeric),
        categorical=list(features.categorical),
        config=config.drift,
        reference_rows=reference,
    )


def window_output_drift(profile: ReferenceProfile | None, current: pl.DataFrame, config: MonitorConfig) -> DriftReport:
    """The drift of one window's predictions (the predicted class, and a classifier's served probabilities, each by
    a two-sample test) against the model's own on its validation split (one "not available" row for a version
    stored before its profile held them, or without a profile)."""
    if profile is None:  # a version stored before profiles: the report says "not available"
        profile = ReferenceProfile(n_rows=0, columns={})
    return prediction_drift(profile, _with_probabilities(current), config=config.drift)


def _with_probabilities(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` less the ``probability:`` columns no row holds (a log written before probabilities were logged,
    or by a regressor) and, when some rows hold them, only those rows (a window across the upgrade): a row logged
    without its probabilities is not a missing value of the model's output."""
    names = [name for name in frame.columns if name.startswith(PROBABILITY_PREFIX)]
    empty = [name for name in names if frame.get_column(name).null_count() == frame.height]
    kept = [name for name in names if name not in empty]
    frame = frame.drop(empty)
    return frame.filter(pl.any_horizontal(pl.col(kept).is_not_null())) if kept else frame


# -- the context ---------------------------------------------------------------------------------------------


def _context(store: Store, config: MonitorConfig, spec: WindowSpec) -> _Context:
    monitored = monitored_version(store, config.model)
    production, features, reference = monitored.production, monitored.features, monitored.reference
    check_alert_features(config.alerts, features.names)
    categories = {
        name: frozenset(reference.get_column(name).drop_nulls().cast(pl.String).unique().to_list())
        for name in features.categorical
        if name in reference.columns
    }
    accuracy = accuracy_context(store, production, config.drift)
    outputs = monitored.profile.outputs if monitored.profile is not None else None
    probabilities = tuple(
        name.removeprefix(PROBABILITY_PREFIX)
        for name in (outputs.columns if outputs else ())
        if name.startswith(PROBABILITY_PREFIX)
    )
    return _Context(
        config.model,
        spec,
        production,
        reference,
        features,
        categories,
        config,
        accuracy,
        monitored.profile,
        probabilities,
    )


class _Counter:
    """Counts the rows read from the log."""

    def __init__(self) -> None:
        self.rows = 0

    def counted(self, chunks: Iterable[pl.DataFrame]) -> Iterator[pl.DataFrame]:
        for chunk in chunks:
            self.rows += chunk.height
            yield chunk


# -- time windows --------------------------------------------------------------------------------------------


def _close_time_windows(
    store: Store,
    context: _Context,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
    grace: timedelta,
    chunk_rows: int,
    counter: _Counter,
) -> tuple[list[tuple[WindowResult, list[AlertEvent]]], WindowResult | None]:
    spec = context.spec
    horizon = min(now - grace, until) if until is not None else now - grace
    last_closable = spec.seq_of(horizon) - 1
    open_seq = None if until is not None and until <= now else last_closable + 1
    first = _first_time_seq(store, context, since)
    if first is None:
        return [], None
    end_seq = last_closable if open_seq is None else open_seq
    if first > end_seq:
        return [], None
    read_end = now if open_seq is not None else spec.start_of(last_closable + 1)
    chunks = store.predictions.read_chunks(
        context.model,
        context.features.names,
        start=spec.start_of(first),
        end=read_end,
        chunk_rows=chunk_rows,
        probabilities=context.probabilities,
    )
    closed: list[tuple[WindowResult, list[AlertEvent]]] = []
    open_window = None
    for seq, frame in _split_by_time(counter.counted(chunks), spec, first, end_seq, context.features.names):
        start, end = spec.bounds(seq)
        errors = store.predictions.error_counts(context.model, start, end)
        if seq <= last_closable:
            result = _result(context, seq, start, end, frame, "closed", (end - start).total_seconds(), errors)
            stored = _store(store, context, result)
            if stored is not None:
                closed.append(stored)
        elif seq == open_seq:
            open_window = _result(context, seq, start, end, frame, "open", (now - start).total_seconds(), errors)
    return closed, open_window


def _first_time_seq(store: Store, context: _Context, since: datetime | None) -> int | None:
    """The first window to look at: after the last stored one, else the one of the first row (after ``since``)."""
    spec = context.spec
    last = store.windows.last(context.model, spec.text)
    floor = None if since is None else spec.seq_of(since)
    if last is not None:
        return last.seq + 1 if floor is None else max(last.seq + 1, floor)
    first_at = store.predictions.first_at(context.model, since=since)
    return None if first_at is None else spec.seq_of(first_at)


def _split_by_time(
    chunks: Iterable[pl.DataFrame], spec: WindowSpec, first: int, last: int, fields: Sequence[str]
) -> Iterator[tuple[int, pl.DataFrame]]:
    """``(seq, frame)`` for every window from ``first`` to ``last`` (an empty frame for a window without rows)."""
    pending: list[pl.DataFrame] = []
    current = first
    for chunk in chunks:
        seqs = _seq_expr(spec).alias("_seq")
        for key, part in chunk.with_columns(seqs).partition_by("_seq", as_dict=True, maintain_order=True).items():
            seq = int(str(key[0]))
            while current < seq:
                yield current, _concat(pending, fields)
                pending, current = [], current + 1
            pending.append(part.drop("_seq"))
    while current <= last:
        yield current, _concat(pending, fields)
        pending, current = [], current + 1


def _seq_expr(spec: WindowSpec) -> pl.Expr:
    """The window number of each row's ``created_at`` (the vectorised :meth:`WindowSpec.seq_of`)."""
    at = pl.col("created_at")
    if spec.unit == "mo":
        return ((at.dt.year().cast(pl.Int64) - 1970) * 12 + at.dt.month().cast(pl.Int64) - 1) // spec.size
    micros = at.dt.epoch("us")
    if spec.unit == "w":
        return (micros - _WEEK_OFFSET_US) // (7 * 86_400_000_000)
    step = 3_600_000_000 * spec.size if spec.unit == "h" else 86_400_000_000 * spec.size
    return micros // step


# -- count windows -------------------------------------------------------------------------------------------


def _close_count_windows(
    store: Store,
    context: _Context,
    since: datetime | None,
    until: datetime | None,
    chunk_rows: int,
    counter: _Counter,
) -> tuple[list[tuple[WindowResult, list[AlertEvent]]], WindowResult | None]:
    size = context.spec.rows or 0
    last = store.windows.last(context.model, context.spec.text)
    after = None if last is None or last.last_id is None else (last.end_at, last.last_id)
    chunks = store.predictions.read_chunks(
        context.model,
        context.features.names,
        start=since,
        end=until,
        after=after,
        chunk_rows=chunk_rows,
        probabilities=context.probabilities,
    )
    seq = 1 if last is None else last.seq + 1
    after_end = None if last is None else last.end_at  # failures after the previous window's last row are this one's
    closed: list[tuple[WindowResult, list[AlertEvent]]] = []
    pending: list[pl.DataFrame] = []
    held = 0
    for chunk in counter.counted(chunks):
        pending.append(chunk)
        held += chunk.height
        while held >= size:
            frame = _concat(pending, context.features.names)
            window, rest = frame.head(size), frame.slice(size)
            pending, held = [rest], rest.height
            result = _count_result(store, context, seq, window, "closed", after_end)
            stored = _store(store, context, result)
            if stored is not None:
                closed.append(stored)
            after_end = result.end
            seq += 1
    rest = _concat(pending, context.features.names)
    open_window = (
        None if until is not None or rest.height == 0 else _count_result(store, context, seq, rest, "open", after_end)
    )
    return closed, open_window


def _count_result(
    store: Store, context: _Context, seq: int, frame: pl.DataFrame, status: str, after: datetime | None = None
) -> WindowResult:
    """A count window; its errors are the failures after the previous window's last row (``after``; the first
    window: from its own first row) up to its last row, inclusive."""
    times = frame.get_column("created_at")
    start, end = times.min(), times.max()
    if not (isinstance(start, datetime) and isinstance(end, datetime)):  # pragma: no cover - rows have times
        raise DataError(f"window {seq} of {context.model!r} has no timestamps.")
    since = start if after is None else after + timedelta(microseconds=1)
    errors = store.predictions.error_counts(context.model, min(since, start), end + timedelta(microseconds=1))
    result = _result(context, seq, start, end, frame, status, None, errors)
    return replace(result, last_id=str(frame.get_column("prediction_id")[-1]))


# -- one window ----------------------------------------------------------------------------------------------


def _result(
    context: _Context,
    seq: int,
    start: datetime,
    end: datetime,
    frame: pl.DataFrame,
    status: str,
    span_s: float | None,
    errors: dict[str, int] | None = None,
) -> WindowResult:
    features = context.features
    health = window_health(
        frame,
        numeric=list(features.numeric),
        categorical=list(features.categorical),
        reference_categories=context.categories,
        span_s=span_s,
        errors=errors,
    )
    drift, skipped, outputs = None, None, None
    if frame.height:
        try:
            drift = window_drift(context.reference, frame, features, context.config, context.profile)
        except DataError as exc:  # a feature all-null or of the wrong type in this window: health still stands
            skipped = str(exc)
        if "prediction" in frame.columns:
            outputs = window_output_drift(context.profile, frame, context.config)
    return WindowResult(
        model=context.model,
        spec=context.spec.text,
        seq=seq,
        start=start,
        end=end,
        status="open" if status == "open" else "closed",
        health=health,
        drift=drift,
        drift_skipped=skipped,
        output_drift=outputs,
        reference_version=context.production.version,
    )


def _store(store: Store, context: _Context, result: WindowResult) -> tuple[WindowResult, list[AlertEvent]] | None:
    """Store a closed window, with its accuracy (labels, estimate) and its alerts; None when another check
    closed it first."""
    from loopline.store import AlertRow, WindowRow

    result = with_accuracy(store, context.accuracy, result)
    fired = fired_alerts(result, context.config.alerts)
    row = WindowRow(
        model_name=result.model,
        spec=result.spec,
        seq=result.seq,
        start_at=result.start,
        end_at=result.end,
        last_id=result.last_id,
        rows=result.health.rows,
        drifted=result.drifted_features,
        result=json_safe(result.to_dict()),
    )
    alerts = [AlertRow(f.rule, f.when, f.op, f.threshold, f.value) for f in fired]
    delivery = "pending" if fired and context.config.alerts_webhook_env else "none"
    stored = store.windows.close(row, alerts, delivery=delivery)
    return None if stored is None else (result, stored[1])


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None: PostgreSQL's JSON refuses them (a NaN prediction, a degenerate
    statistic), and a window must store whatever the traffic held."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def _concat(frames: list[pl.DataFrame], fields: Sequence[str]) -> pl.DataFrame:
    frames = [frame for frame in frames if frame.height]
    if not frames:
        return pl.DataFrame(schema={**_EMPTY, **dict.fromkeys(fields, pl.Null)})
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical_relaxed")


_EMPTY: dict[str, pl.DataType | type[pl.DataType]] = {
    "prediction_id": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "model_version": pl.Int64,
    "latency_ms": pl.Float64,
    "prediction": pl.Null,
}
