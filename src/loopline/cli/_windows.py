"""``loopline monitor PIPELINE --window SPEC``: close the complete windows, show them and the alerts they fired.

Exit codes: 0, or :data:`ALERT_EXIT_CODE` with ``--fail-on-alert`` when an alert fired (1: an error, 2: a
config error, as every command).
"""

from __future__ import annotations

import dataclasses
import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from loopline.cli._render import console, err_console, fmt, print_json, table
from loopline.core.errors import ConfigError

if TYPE_CHECKING:
    from loopline.core.config import MonitorConfig
    from loopline.monitor import DriftReport, WindowResult
    from loopline.run import WindowCheck
    from loopline.store import AlertEvent, Store

ALERT_EXIT_CODE = 3
"""The exit code of ``loopline monitor --fail-on-alert`` when an alert fired."""


def parse_time(value: str | None, option: str) -> datetime | None:
    """An ISO date or time (a naive one is UTC); ConfigError naming the option otherwise."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"{option} {value!r} is not an ISO date or time.", hint=f"Write it like {option} 2026-12-01T00:00"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def window_check(
    store: Store,
    config: MonitorConfig,
    window: str,
    *,
    since: datetime | None,
    until: datetime | None,
    as_json: bool,
    one_line: bool = False,
) -> WindowCheck:
    """One check: close the complete windows, refresh the closed ones whose labels arrived late (within
    ``monitor.loop.label_horizon``), print them, the open one and the alerts (``one_line``: the JSON on one line,
    as ``--follow`` prints one document per check)."""
    from loopline.run import check_windows
    from loopline.run._window_accuracy import refresh_window_labels

    check = check_windows(store, config, window, since=since, until=until)
    refreshed, late = refresh_window_labels(store, config, window, horizon=config.loop.label_horizon_td)
    check = dataclasses.replace(check, alerts=[*check.alerts, *late])
    document = check_json(check) | {"refreshed": [w.to_dict() for w in refreshed]}
    if as_json and one_line:
        print(json.dumps(document, default=str), flush=True)
    elif as_json:
        print_json(document)
    else:
        print_check(check)
        if refreshed:
            console.print(f"{len(refreshed)} closed window(s) refreshed: their labels arrived since they closed")
    return check


def follow_windows(
    store: Store,
    config: MonitorConfig,
    window: str,
    *,
    since: datetime | None,
    interval: float,
    as_json: bool,
) -> int:
    """Check every ``interval`` seconds until Ctrl-C or SIGTERM; return how many alerts fired. With ``as_json``,
    each check is one line of JSON.

    A check the database fails (a restart, a dropped connection) is reported and tried again at the next tick;
    nothing it had not stored is lost, since the next check starts after the last stored window.
    """
    from sqlalchemy.exc import DBAPIError

    fired = 0
    with _stop_on_signals() as stop:
        while not stop.is_set():
            try:
                check = window_check(store, config, window, since=since, until=None, as_json=as_json, one_line=True)
                fired += len(check.alerts)
            except DBAPIError as exc:
                text = str(exc.orig or exc).strip()
                reason = text.splitlines()[0] if text else ""
                err_console.print(f"check failed, retrying in {interval:g} s: {type(exc).__name__}: {reason}")
            stop.wait(interval)
    return fired


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM while the block runs (the previous handlers come back afterwards)."""
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def check_json(check: WindowCheck) -> dict[str, Any]:
    """The JSON form of a check."""
    return {
        "model": check.model,
        "spec": check.spec,
        "rows_read": check.rows_read,
        "closed": [window.to_dict() for window in check.closed],
        "open": None if check.open is None else check.open.to_dict(),
        "alerts": [alert_json(alert) for alert in check.alerts],
    }


def alert_json(alert: AlertEvent) -> dict[str, Any]:
    """The JSON form of an alert event."""
    return alert.to_dict()


def print_check(check: WindowCheck) -> None:
    """The closed windows, the open one, the alerts fired."""
    windows = [*check.closed, *([check.open] if check.open else [])]
    if not check.closed:
        console.print(f"{check.model}: no new window of {check.spec} closed (read {check.rows_read} rows)")
    if windows:
        console.print(
            table(
                f"{check.model}: windows of {check.spec} closed by this check, and the open one",
                ["window", "status", "rows", "versions", "p50/p99 ms", "rows/s", "errors", "drifted", *ACCURACY],
                [(*_window_row(w), *_accuracy_cells(w, _metric(windows))) for w in windows],
            )
        )
        console.print(
            table(
                f"{check.model}: drift per window (n/a: the model's profile holds no such distribution)",
                ["window", "features", "prediction (class, probabilities)", "target (arrived labels)"],
                [_drift_row(w) for w in windows],
            )
        )
    for alert in check.alerts:
        delivered = "" if alert.delivery == "none" else f" (webhook: {alert.delivery})"
        console.print(
            f"[bold red]ALERT {alert.id}[/] {escape(alert.rule)}: {alert.value:.4g} in "
            f"{_span(alert.window_start, alert.window_end)}{delivered}"
        )


def drift_cell(report: DriftReport | None) -> str:
    """``-`` without a report, ``n/a`` when it cannot tell, else the drifted columns or ``none``."""
    if report is None:
        return "-"
    if all(f.status == "not available" for f in report.features):  # a profile stored before output distributions
        return "n/a"
    return ", ".join(report.drifted) or "none"


def _window_row(window: WindowResult) -> tuple[Any, ...]:
    health = window.health
    drifted = drift_cell(window.drift)
    errors = "-" if health.error_rate is None else f"{health.error_rate:.1%}"
    latency = "-" if health.latency_p50_ms is None else f"{fmt(health.latency_p50_ms)} / {fmt(health.latency_p99_ms)}"
    versions = ", ".join(f"v{v}: {n}" for v, n in health.versions.items()) or "-"
    return (
        _span(window.start, window.end),
        window.status,
        health.rows,
        versions,
        latency,
        health.throughput_rps,
        errors,
        escape(drifted),
    )


def _drift_row(window: WindowResult) -> tuple[str, ...]:
    """A window's drifted features, drifted outputs (its predicted class, a classifier's probabilities, against
    the model's own on its validation split) and target drift (the labels that arrived, against the training
    labels; ``-`` before any)."""
    reports = (window.drift, window.output_drift, window.target_drift)
    return (_span(window.start, window.end), *(escape(drift_cell(report)) for report in reports))


ACCURACY = ("labels", "realised", "estimated [band]", "est. error")
"""The accuracy columns of a window: label coverage, the realised metric, the estimate with its band, and the
estimate's error once the labels are in."""


def _metric(windows: list[WindowResult]) -> str | None:
    """The metric the accuracy columns show: roc_auc when there, else the first one a window holds."""
    names = [name for w in windows for name in (*(w.realised_metrics or {}), *(w.estimated_metrics or {}))]
    return "roc_auc" if "roc_auc" in names else next(iter(names), None)


def _accuracy_cells(window: WindowResult, metric: str | None) -> tuple[str, str, str, str]:
    coverage = "-" if window.label_coverage is None else f"{window.label_coverage:.0%}"
    if metric is None:
        return coverage, "-", "-", "-"
    realised = (window.realised_metrics or {}).get(metric)
    estimated = (window.estimated_metrics or {}).get(metric)
    band = (window.estimated_bands or {}).get(metric)
    error = window.estimate_error(metric)
    return (
        coverage,
        "-" if realised is None else f"{metric} {realised:.3f}",
        "-" if estimated is None else f"{estimated:.3f}" + (f" [{band[0]:.3f}, {band[1]:.3f}]" if band else ""),
        "-" if error is None else f"{error:+.3f}",
    )


def _span(start: datetime, end: datetime) -> str:
    return f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M}"
