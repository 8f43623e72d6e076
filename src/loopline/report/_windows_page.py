"""Sections over a model's closed monitoring windows: drift over time, accuracy over time, service over time.

Each takes a :class:`WindowsView` (the windows of one spec, oldest first, and the alerts they fired) and returns
HTML: a table or heat map that lists the figures, a chart of them where matplotlib has something to draw, and the
figures as embedded JSON. An empty view says so. Feature names, metric names, classes and alert rules are escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any

from loopline.monitor import WindowSpec
from loopline.report._html import format_value, html_img, html_table, json_script
from loopline.report._time_charts import Band, TimeChart, time_chart

if TYPE_CHECKING:
    from loopline.monitor import DriftReport, WindowResult

MAX_WINDOWS = 60
"""The newest windows shown; the heat map would not fit more."""
MAX_CLASSES = 6
NO_DATA = "no data"
NOT_ENOUGH = "not enough data"
NO_LABELS = "no labels yet"
NOT_AVAILABLE = "not available"


@dataclass(frozen=True)
class WindowAlert:
    """An alert a window fired (the fields of :class:`loopline.store.AlertEvent` the report shows)."""

    spec: str
    window_start: datetime
    window_end: datetime
    rule: str
    metric: str
    op: str
    threshold: float
    value: float
    acknowledged: bool = False


@dataclass(frozen=True)
class WindowsView:
    """The closed windows of one ``spec`` (oldest first) and the alerts they fired; ``spec`` None: no window
    closed yet, of any spec."""

    spec: str | None
    windows: Sequence[WindowResult]
    alerts: Sequence[WindowAlert] = field(default_factory=tuple)

    @property
    def shown(self) -> Sequence[WindowResult]:
        """The newest :data:`MAX_WINDOWS` windows."""
        return self.windows[-MAX_WINDOWS:]

    @property
    def ends(self) -> list[datetime]:
        return [w.end for w in self.shown]

    @property
    def alert_times(self) -> list[datetime]:
        """The end of each window that fired an alert (among those shown)."""
        shown = {(w.start, w.end) for w in self.shown}
        return sorted(
            {a.window_end for a in self.alerts if a.spec == self.spec and (a.window_start, a.window_end) in shown}
        )


def window_label(window: WindowResult) -> str:
    """A time window's start, ``YYYY-MM-DD HH:MM``; a count window's number and first row's time."""
    start = f"{window.start:%Y-%m-%d %H:%M}"
    return f"#{window.seq} {start}" if WindowSpec.parse(window.spec).by_count else start


def _empty(view: WindowsView) -> str | None:
    if view.windows:
        cut = len(view.windows) - len(view.shown)
        return f'<p class="muted">The newest {MAX_WINDOWS} of {len(view.windows)} windows.</p>' if cut else ""
    spec = escape(view.spec or "")
    return (
        f'<p class="muted">No closed {spec + " " if spec else ""}windows yet '
        f"(run `loopline monitor PIPELINE --window {spec or '1d'}`).</p>"
    )


def _chart(chart: TimeChart, alt: str) -> str:
    return html_img(time_chart(chart), alt)


# -- drift over time ------------------------------------------------------------------------------------------


def feature_cell(window: WindowResult, feature: str) -> tuple[str, float | None]:
    """``(state, PSI)`` of ``feature`` in ``window``: ``drifted``, ``stable``, :data:`NOT_ENOUGH` (the drift test's
    verdict: too few values for one) or :data:`NO_DATA` (no drift report, or the feature absent from it)."""
    return report_cell(window.drift, feature)


def report_cell(report: DriftReport | None, column: str) -> tuple[str, float | None]:
    """``(state, PSI)`` of ``column`` in a drift ``report`` (features, outputs or labels), as :func:`feature_cell`;
    ``not available`` when the model's profile holds no distribution for it (stored before them)."""
    if report is None:
        return NO_DATA, None
    found = next((f for f in report.features if f.feature == column), None)
    if found is None:
        return NO_DATA, None
    if found.status == NOT_AVAILABLE:
        return NOT_AVAILABLE, None
    if found.status == NOT_ENOUGH or found.n_current == 0:
        return NOT_ENOUGH, found.psi
    return ("drifted" if found.drifted else "stable"), found.psi


def drifted_share(window: WindowResult) -> float | None:
    """The share of the window's features that drifted (None without a drift report)."""
    if window.drift is None or not window.drift.features:
        return None
    return len(window.drift.drifted) / len(window.drift.features)


def drift_over_time_html(view: WindowsView) -> str:
    """Heat map features x windows (PSI, coloured by verdict), the model's outputs (prediction drift: the predicted
    class, a classifier's probabilities) and the arrived labels (target drift) under them, and the share of drifted
    features per window."""
    empty = _empty(view)
    if not view.windows:
        return empty or ""
    windows = view.shown
    features = list(dict.fromkeys(f.feature for w in windows if w.drift for f in w.drift.features))
    outputs = list(dict.fromkeys(f.feature for w in windows if w.output_drift for f in w.output_drift.features))
    targets = list(dict.fromkeys(f.feature for w in windows if w.target_drift for f in w.target_drift.features))
    cells = [[feature_cell(w, name) for w in windows] for name in features]
    output_cells = [[report_cell(w.output_drift, name) for w in windows] for name in outputs]
    target_cells = [[report_cell(w.target_drift, name) for w in windows] for name in targets]
    shares = [drifted_share(w) for w in windows]
    chart = TimeChart(view.ends, {"share of drifted features": shares}, "share", alerts=view.alert_times, share=True)
    data = {
        "spec": view.spec,
        "windows": [window_label(w) for w in windows],
        "features": features,
        "states": [[state for state, _ in row] for row in cells],
        "psi": [[psi for _, psi in row] for row in cells],
        "drifted_share": shares,
        "outputs": outputs,
        "output_states": [[state for state, _ in row] for row in output_cells],
        "targets": targets,
        "target_states": [[state for state, _ in row] for row in target_cells],
    }
    rows = [
        *(("", name, row) for name, row in zip(features, cells, strict=True)),
        *(("prediction drift", name, row) for name, row in zip(outputs, output_cells, strict=True)),
        *(("target drift", name, row) for name, row in zip(targets, target_cells, strict=True)),
    ]
    return f"{empty}{_heat_map(windows, rows)}{_chart(chart, 'share of drifted features per window')}" + json_script(
        "loopline-drift-over-time", data
    )


def _heat_map(windows: Sequence[WindowResult], rows_in: list[tuple[str, str, list[tuple[str, float | None]]]]) -> str:
    """The heat map: one row per ``(group, column, cells)``, a group's header row before its first column."""
    if not rows_in:
        return '<p class="muted">No window has a drift report (too few rows in each).</p>'
    head = "".join(f'<th title="{escape(w.drift_skipped or "")}">{escape(window_label(w))}</th>' for w in windows)
    rows, group = [], ""
    for section, name, row in rows_in:
        if section != group:
            group = section
            rows.append(f'<tr><th class="section" colspan="{len(windows) + 1}">{escape(section)}</th></tr>')
        tds = "".join(_heat_cell(state, psi) for state, psi in row)
        rows.append(f'<tr><th class="feature">{escape(name)}</th>{tds}</tr>')
    legend = (
        '<p class="muted">PSI per feature and window; red: drifted, green: stable, grey: not enough data for a '
        "verdict (or no drift report: no rows). Under the features: prediction drift (the model's outputs against "
        "its own on the validation split: the predicted class, a classifier's probabilities) and target drift "
        "(the labels that arrived against the training labels).</p>"
    )
    table = (
        f'<table class="heatmap"><thead><tr><th>feature</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )
    return f'{legend}<div class="scroll">{table}</div>'


def _heat_cell(state: str, psi: float | None) -> str:
    text = "·" if psi is None else escape(format_value(psi))
    return f'<td class="heat {_css(state)}" title="{escape(state)}">{text}</td>'


def _css(state: str) -> str:
    return {"drifted": "drifted", "stable": "stable"}.get(state, "nodata")


# -- accuracy over time ---------------------------------------------------------------------------------------


def _estimates(window: WindowResult) -> dict[str, tuple[float, float | None, float | None]]:
    """``metric -> (value, lower, upper)`` from ``estimated_metrics`` (its band as ``METRIC_lower``/``_upper``)."""
    given = window.estimated_metrics or {}
    names = [k for k in given if not k.endswith(("_lower", "_upper"))]
    return {k: (given[k], given.get(f"{k}_lower"), given.get(f"{k}_upper")) for k in names}


def accuracy_over_time_html(view: WindowsView) -> str:
    """Realised metric per window with its label coverage, the estimate and its band; "no labels yet" slots."""
    empty = _empty(view)
    if not view.windows:
        return empty or ""
    windows = view.shown
    realised = sorted({k for w in windows for k in (w.realised_metrics or {})})
    estimated = sorted({k for w in windows for k in _estimates(w)})
    rows = [_accuracy_row(w, realised, estimated) for w in windows]
    headers = ["window", "rows", "label coverage", *realised, *(f"{m} (estimated)" for m in estimated)]
    charts = [_metric_chart(view, metric) for metric in dict.fromkeys([*realised, *estimated])]
    coverage = [w.label_coverage for w in windows]
    charts.append(_chart(TimeChart(view.ends, {"label coverage": coverage}, "share", share=True), "label coverage"))
    data = {
        "windows": [window_label(w) for w in windows],
        "label_coverage": coverage,
        "realised": {m: [(w.realised_metrics or {}).get(m) for w in windows] for m in realised},
        "estimated": {m: [list(_estimates(w).get(m, (None, None, None))) for w in windows] for m in estimated},
    }
    note = "" if realised or estimated else f'<p class="muted">No window has a metric yet: {NO_LABELS}.</p>'
    return f"{empty}{note}{html_table(headers, rows)}{''.join(charts)}" + json_script("loopline-accuracy", data)


def _accuracy_row(window: WindowResult, realised: list[str], estimated: list[str]) -> list[Any]:
    metrics, estimates = window.realised_metrics, _estimates(window)
    labelled = metrics is not None and (window.label_coverage is None or window.label_coverage > 0)
    values: list[Any] = (
        [metrics.get(m) if metrics else None for m in realised] if labelled else [NO_LABELS] * len(realised)
    )
    for m in estimated:
        value, lower, upper = estimates.get(m, (None, None, None))
        band = f" [{format_value(lower)}, {format_value(upper)}]" if lower is not None and upper is not None else ""
        values.append(None if value is None else f"{format_value(value)}{band}")
    coverage = NO_LABELS if window.label_coverage in (None, 0.0) and not metrics else window.label_coverage
    return [window_label(window), window.health.rows, coverage, *values]


def _metric_chart(view: WindowsView, metric: str) -> str:
    windows = view.shown
    estimates = [_estimates(w).get(metric, (None, None, None)) for w in windows]
    lines = {f"{metric} (realised)": [(w.realised_metrics or {}).get(metric) for w in windows]}
    lines[f"{metric} (estimated)"] = [value for value, _, _ in estimates]
    band = Band("estimate's band", [lower for _, lower, _ in estimates], [upper for _, _, upper in estimates])
    chart = TimeChart(view.ends, lines, metric, bands=(band,), alerts=view.alert_times)
    return _chart(chart, f"{metric} per window")


# -- predictions and service ----------------------------------------------------------------------------------


def prediction_lines(windows: Sequence[WindowResult]) -> tuple[str, dict[str, list[float | None]]]:
    """The prediction distribution per window: each frequent class's share, or the numeric p50/mean/min/max."""
    kinds = {w.health.prediction.kind for w in windows} - {"none"}
    if kinds == {"categorical"}:
        totals: dict[str, float] = {}
        for w in windows:
            for name, share in w.health.prediction.shares.items():
                totals[name] = totals.get(name, 0.0) + share
        top = sorted(totals, key=lambda name: (-totals[name], name))[:MAX_CLASSES]
        return "share of predictions", {name: [_share(w, name) for w in windows] for name in top}
    if kinds == {"numeric"}:
        stats = ("p50", "mean", "min", "max")
        return "prediction", {s: [getattr(w.health.prediction, s) for w in windows] for s in stats}
    return "prediction", {}


def _share(window: WindowResult, name: str) -> float | None:
    summary = window.health.prediction
    return None if summary.kind == "none" else summary.shares.get(name, 0.0)


def service_over_time_html(view: WindowsView) -> str:
    """The prediction distribution, latency p50/p99 and throughput per window, alerts marked, the alerts listed."""
    empty = _empty(view)
    if not view.windows:
        return empty or ""
    windows, alerts = view.shown, view.alert_times
    label, predictions = prediction_lines(windows)
    latency = {f"{p} (ms)": [getattr(w.health, f"latency_{p}_ms") for w in windows] for p in ("p50", "p99")}
    throughput = {"rows per second": [w.health.throughput_rps for w in windows]}
    errors = {"error rate": [w.health.error_rate for w in windows]}
    share = label.startswith("share")
    charts = [
        _chart(TimeChart(view.ends, predictions, label, alerts=alerts, share=share), "predictions per window"),
        _chart(TimeChart(view.ends, latency, "latency per prediction (ms)", alerts=alerts), "latency per window"),
        _chart(TimeChart(view.ends, throughput, "rows per second", alerts=alerts), "throughput per window"),
        _chart(TimeChart(view.ends, errors, "share of failed requests", alerts=alerts, share=True), "error rate"),
    ]
    rows = [
        [window_label(w), w.health.rows, w.health.latency_p50_ms, w.health.latency_p99_ms, w.health.throughput_rps,
         _errors(w)]
        for w in windows
    ]  # fmt: skip
    table = html_table(["window", "rows", "p50 (ms)", "p99 (ms)", "rows/s", "errors"], rows)
    data = {
        "windows": [window_label(w) for w in windows],
        "predictions": predictions,
        **latency,
        **throughput,
        **errors,
    }
    data["alerts"] = [a.isoformat() for a in alerts]
    return f"{empty}{''.join(charts)}{table}<h3>Alerts</h3>{_alerts_table(view)}" + json_script(
        "loopline-service", data
    )


def _errors(window: WindowResult) -> str:
    """The error rate and the failed requests by kind (``-`` for a window stored before failures were counted)."""
    health = window.health
    if health.error_rate is None:
        return "-"
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(health.errors.items()))
    return f"{health.error_rate:.1%}" + (f" ({kinds})" if kinds else "")


def _alerts_table(view: WindowsView) -> str:
    fired = sorted((a for a in view.alerts if a.spec == view.spec), key=lambda a: (a.window_end, a.rule))
    if not fired:
        return '<p class="muted">No alert fired.</p>'
    rows = [
        [f"{a.window_start:%Y-%m-%d %H:%M} to {a.window_end:%Y-%m-%d %H:%M}", a.rule, a.metric, a.value, a.op,
         a.threshold, "yes" if a.acknowledged else "no"]
        for a in fired
    ]  # fmt: skip
    return html_table(["window", "rule", "figure", "value", "op", "threshold", "acknowledged"], rows)
