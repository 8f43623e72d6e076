"""Monitoring: each model's closed windows, and one model's drift, accuracy, predictions and service over time.

``/monitoring`` lists the models with their window specs, the newest window, its drift count and metrics, and the
open alerts. ``/monitoring/{model}?spec=1d&since=&until=`` draws the newest :data:`MAX_WINDOWS` stored windows of
one spec (the records ``loopline monitor --window`` stores: no row of the prediction log is read for them), the
reference-vs-window overlay of one feature (``?feature=&window=SEQ``) and the model's alerts, newest first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopline.ui._page import Data, Page, Params, UIError
from loopline.ui.pages import _windows as figures
from loopline.ui.pages._monitoring_html import render_model, render_monitoring
from loopline.ui.pages._windows import CLOSE_COMMAND

if TYPE_CHECKING:
    from loopline.monitor import WindowResult
    from loopline.store import Store, StoredWindow

MAX_WINDOWS = 200
"""The newest windows a model's page draws (a chart of a few hundred points at most)."""


# -- the list ------------------------------------------------------------------------------------------------


def monitoring_data(store: Store, params: Params) -> Data:
    """Each model (a page of them, by name) with its window specs, newest window and open alerts."""
    pagination = params.pagination()
    names = store.models.names()
    shown = names[pagination.offset : pagination.offset + pagination.per_page]
    return {
        "models": [_model_summary(store, name) for name in shown],
        "pagination": pagination.describe(len(names)),
    }


def _model_summary(store: Store, name: str) -> Data:
    latest = store.windows.latest(name)
    return {
        "name": name,
        "specs": store.windows.specs(name),
        "latest": None if latest is None else _latest(latest),
        "open_alerts": store.alerts.count(name, unacknowledged=True),
    }


def _latest(stored: StoredWindow) -> Data:
    result = stored.result
    drift = result.get("drift") or {}
    return {
        "spec": stored.spec,
        "seq": stored.seq,
        "start": stored.start_at.isoformat(),
        "end": stored.end_at.isoformat(),
        "status": result.get("status", "closed"),
        "rows": stored.rows,
        "drifted_features": stored.drifted,
        "features_checked": len(drift.get("features") or []),
        "realised": result.get("realised_metrics"),
        "estimated": result.get("estimated_metrics"),
        "label_coverage": result.get("label_coverage"),
    }


# -- one model -----------------------------------------------------------------------------------------------


def model_data(store: Store, params: Params) -> Data:
    """One model's windows of one spec (``?spec=``, default the newest window's), optionally ``?since=`` and
    ``?until=``, with the overlay (``?feature=&window=``) and its alerts (paginated, newest first)."""
    from loopline.monitor import WindowResult

    name = params.required("model")
    store.models.get(name)  # a NotFoundError (404) for a model never registered
    specs = store.windows.specs(name)
    pagination = params.pagination()
    alerts = store.alerts.list(name, limit=pagination.per_page, offset=pagination.offset)
    base: Data = {
        "model": name,
        "specs": specs,
        "alerts": [a.to_dict() for a in alerts],
        "alerts_pagination": pagination.describe(store.alerts.count(name)),
    }
    spec = _spec(params, store, name, specs)
    if spec is None:
        return {**base, "spec": None, "windows": [], "empty": f"No closed window yet: run `{CLOSE_COMMAND}`."}
    since, until = params.time("since"), params.time("until")
    stat = params.text("stat", "psi") or "psi"
    if stat not in figures.STATS:
        raise UIError(400, f"the parameter 'stat' must be one of {', '.join(figures.STATS)}, not {stat[:40]!r}.")
    stored = store.windows.list(name, spec, since=since, until=until, limit=MAX_WINDOWS)
    windows = [WindowResult.from_dict(row.result) for row in stored]
    data: Data = {
        **base,
        "spec": spec,
        "since": None if since is None else since.isoformat(),
        "until": None if until is None else until.isoformat(),
        "stat": stat,
        "max_windows": MAX_WINDOWS,
        "truncated": len(windows) == MAX_WINDOWS,
        "windows": figures.window_rows(windows),
    }
    if not windows:
        return {**data, "empty": f"No closed {spec} window in that span."}
    return {
        **data,
        "drift": figures.drift_data(windows),
        "accuracy": figures.accuracy_data(windows),
        "predictions": figures.prediction_data(windows),
        "service": figures.service_data(windows),
        "overlay": _overlay(store, name, windows, params),
    }


def _spec(params: Params, store: Store, name: str, specs: dict[str, int]) -> str | None:
    """``?spec=`` normalised (400 when it is no window spec, 404 when the model has no such window), else the
    spec of the newest window (None before the first)."""
    from loopline.core.errors import ConfigError
    from loopline.monitor import WindowSpec

    given = params.text("spec")
    if given is None:
        latest = store.windows.latest(name)
        return None if latest is None else latest.spec
    try:
        spec = WindowSpec.parse(given).text
    except ConfigError as error:
        raise UIError(400, f"the parameter 'spec' is no window spec: {error.message}", hint=error.hint) from None
    if spec not in specs:
        known = ", ".join(specs) or f"none yet (run `{CLOSE_COMMAND}`)"
        raise UIError(404, f"{name} has no closed {spec} window.", hint=f"Its window specs: {known}.")
    return spec


def _overlay(store: Store, name: str, windows: list[WindowResult], params: Params) -> Data | None:
    """The overlay of ``?feature=`` in window ``?window=`` (default: the newest window with a drift report)."""
    with_drift = [w for w in windows if w.drift is not None and w.drift.features]
    seq = params.integer("window", 0) if params.text("window") is not None else None
    if seq is None:
        if not with_drift:
            return None
        chosen = with_drift[-1]
    else:
        found = next((w for w in windows if w.seq == seq), None)
        if found is None:
            raise UIError(404, f"window {seq} of {name} is not among the windows shown.", hint=figures.pick_hint())
        chosen = found
    return figures.overlay_data(store, name, chosen, params.text("feature"))


def model_title(data: Data) -> str:
    """``Monitoring · MODEL``."""
    return f"Monitoring · {data['model']}"


PAGES = [
    Page("/monitoring", "Monitoring", monitoring_data, render_monitoring, nav="Monitoring", order=40),
    Page("/monitoring/{model}", model_title, model_data, render_model, order=40),
]
