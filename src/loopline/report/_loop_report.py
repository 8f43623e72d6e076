"""One self-contained HTML report of a loop iteration: candidates, production, drift, decisions, service.

The monitor stage computes the records (drift report, decisions, service statistics); this page shows them.

Everything is inline (CSS, plots as base64 PNG); the file references no external URL. Every string
that comes from data (model names, feature names, metric names, reasons, notes) is HTML-escaped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from loopline.monitor import latency_figures
from loopline.report._drift_charts import distribution_chart, latency_chart, psi_chart
from loopline.report._html import BASE_CSS, html_cell, html_img, html_table, page, write_html
from loopline.report._timeline import timeline_html
from loopline.report._windows_page import accuracy_over_time_html, drift_over_time_html, service_over_time_html

if TYPE_CHECKING:
    from loopline.core.records import Finding, GateDecision, RetrainDecision
    from loopline.monitor import DriftReport, FeatureDrift
    from loopline.report._timeline import TimelineEntry
    from loopline.report._windows_page import WindowsView

MAX_DISTRIBUTION_PLOTS = 4
SERVER_LATENCY = (
    "From the prediction log of the monitored window, one value per prediction: the duration of the model call "
    "that made it divided by the rows of its batch. It leaves out HTTP, parsing, validation and queueing."
)
CLIENT_LATENCY = (
    "Measured by the HTTP client that sent the traffic, one value per request (a request may hold several rows): "
    "from sending the request to reading the answer, so HTTP, parsing, validation, queueing and the model."
)
_LATENCY_LABELS = {
    "count": "predictions",
    **{f"latency_{name}_ms": f"{name} (ms)" for name in ("p50", "p95", "p99", "mean", "max")},
}

_CSS = (
    BASE_CSS
    + """
.drifted{background:#f8d7da;color:#842029;font-weight:600}.stable{background:#d1e7dd;color:#0f5132}
.badge{display:inline-block;padding:.2rem .6rem;border-radius:.8rem;margin-right:.4rem}
.plots img{margin:.3rem}.nodata{background:#eee;color:#777}.scroll{overflow-x:auto}
table.heatmap td,table.heatmap th{font-size:.8rem;padding:.15rem .3rem;white-space:nowrap}
table.heatmap th.section{text-align:left;background:#f4f4f4}
details.quiet{margin:.5rem 0}.group h3{margin-bottom:.2rem}
"""
)


@dataclass
class ReportData:
    """What a report shows; every part but ``title`` may be empty and its section says so.

    ``findings`` are the training diagnostics' findings as ``(version, finding)``: empty, constant or
    target-derived features and near-perfect scores (see :mod:`loopline.train._diagnostics`).

    ``windows`` (closed monitoring windows) adds drift, accuracy and service over time; ``timeline`` (loop
    events and audit-trail changes) the decision timeline. None leaves the section out; empty ones say so."""

    title: str
    candidates: list[dict[str, Any]]
    production: dict[str, Any] | None
    drift: DriftReport | None
    reference: pl.DataFrame | None = None
    current: pl.DataFrame | None = None
    retrain: RetrainDecision | None = None
    gate: GateDecision | None = None
    service: dict[str, Any] | None = None
    """Server-side figures: :func:`loopline.monitor.service_stats` of the prediction log."""
    latencies_ms: list[float] | None = None
    """Client-side round trips, one per request, in ms (as measured by whoever sent the traffic)."""
    notes: list[str] = field(default_factory=list)
    findings: list[tuple[int, Finding]] = field(default_factory=list)
    windows: WindowsView | None = None
    timeline: list[TimelineEntry] | None = None
    timeline_truncated: bool = False


def write_html_report(path: str | Path, data: ReportData) -> Path:
    """Write the report to ``path`` (parents created, replaced atomically) and return the path."""
    return write_html(path, render_html_report(data))


def render_html_report(data: ReportData) -> str:
    """The report as one HTML string."""
    candidates = _records_table(data.candidates) if data.candidates else _none("No candidates.")
    production = _mapping_table(data.production) if data.production else _none("No production model.")
    sections = [
        _summary(data),
        _section("Candidates", candidates),
        _section("Training diagnostics", _findings(data.findings)),
        _section("Production model", production),
        _drift_section(data),
        *over_time_sections(data.windows),
        _section("Decisions", _decisions(data.retrain, data.gate)),
        *timeline_sections(data.timeline, truncated=data.timeline_truncated),
        _service_section(data.service, data.latencies_ms),
    ]
    if data.notes:
        sections.append(_section("Notes", _list(data.notes)))
    return page(data.title, sections, css=_CSS)


def render_history_html(
    title: str, timeline: list[TimelineEntry], windows: WindowsView | None = None, *, truncated: bool = False
) -> str:
    """The decision timeline (and drift, accuracy and service over ``windows`` when given) as one HTML page."""
    return page(title, [*timeline_sections(timeline, truncated=truncated), *over_time_sections(windows)], css=_CSS)


def write_history_html(
    path: str | Path,
    title: str,
    timeline: list[TimelineEntry],
    windows: WindowsView | None = None,
    *,
    truncated: bool = False,
) -> Path:
    """Write :func:`render_history_html` to ``path`` (parents created, replaced atomically)."""
    return write_html(path, render_history_html(title, timeline, windows, truncated=truncated))


def over_time_sections(windows: WindowsView | None) -> list[str]:
    """Drift, accuracy and service over the windows; nothing when ``windows`` is None."""
    if windows is None:
        return []
    spec = f" ({windows.spec} windows)" if windows.spec else ""
    return [
        _section("Drift over time" + spec, drift_over_time_html(windows)),
        _section("Accuracy over time" + spec, accuracy_over_time_html(windows)),
        _section("Service over time" + spec, service_over_time_html(windows)),
    ]


def timeline_sections(timeline: list[TimelineEntry] | None, *, truncated: bool = False) -> list[str]:
    """The decision timeline; nothing when ``timeline`` is None."""
    if timeline is None:
        return []
    return [_section("Decision timeline", timeline_html(timeline, truncated=truncated))]


def _section(heading: str, body: str) -> str:
    return f"<section><h2>{escape(heading)}</h2>{body}</section>"


def _none(text: str) -> str:
    return f'<p class="muted">{escape(text)}</p>'


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in items) + "</ul>"


def _records_table(records: list[dict[str, Any]]) -> str:
    headers = list(dict.fromkeys(key for record in records for key in record))
    return html_table(headers, [[record.get(key) for key in headers] for record in records])


def _mapping_table(mapping: dict[str, Any]) -> str:
    return html_table(["field", "value"], [[key, value] for key, value in mapping.items()])


def _badge(text: str, good: bool) -> str:
    return f'<span class="badge {"stable" if good else "drifted"}">{escape(text)}</span>'


def _findings(findings: list[tuple[int, Finding]]) -> str:
    if not findings:
        return _none("No findings: no empty, constant or target-derived feature, no near-perfect score.")
    head = "".join(f"<th>{h}</th>" for h in ("version", "finding", "feature", "action", "detail"))
    rows = []
    for version, f in findings:
        kind = f"<td{' class=drifted' if f.suspicious else ''}>{escape(f.kind)}</td>"
        cells = [html_cell(version), kind, html_cell(f.feature), html_cell(f.action), html_cell(f.detail)]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _summary(data: ReportData) -> str:
    badges = []
    if any(finding.suspicious for _, finding in data.findings):
        badges.append(_badge("suspicious candidate", False))
    if data.drift is not None:
        found = data.drift.dataset_drift
        badges.append(_badge("dataset drift" if found else "no dataset drift", not found))
    if data.retrain is not None:
        badges.append(_badge("retrain" if data.retrain.retrain else "no retrain", not data.retrain.retrain))
    if data.gate is not None:
        badges.append(_badge("promote challenger" if data.gate.promote else "keep champion", True))
    return f"<p>{''.join(badges)}</p>" if badges else ""


def _verdict_cell(feature: FeatureDrift) -> str:
    verdict = "drifted" if feature.drifted else "stable"
    return f'<td class="verdict {verdict}">{verdict}</td>'


def _drift_table(report: DriftReport) -> str:
    headers = ["feature", "kind", "PSI", "test", "statistic", "p-value", "n reference", "n current"]
    head = "".join(f"<th>{escape(header)}</th>" for header in [*headers, "verdict", "reason"])
    rows = []
    for f in report.features:
        values = [f.feature, f.kind, f.psi, f.test, f.statistic, f.p_value, f.n_reference, f.n_current]
        cells = "".join(html_cell(value) for value in values)
        rows.append(f"<tr>{cells}{_verdict_cell(f)}{html_cell(f.reason)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _drift_section(data: ReportData) -> str:
    report = data.drift
    if report is None:
        return _section("Drift", _none("No drift report."))
    config = report.config
    rule = (
        f"Drifted when PSI &gt; {config.psi_threshold:g}, or p-value &lt; {config.p_value:g} and "
        f"PSI &gt; {config.psi_threshold / 2:g}. Dataset drift when at least "
        f"{config.min_drifted_features} feature(s) drifted: {len(report.drifted)} did."
    )
    chart = html_img(psi_chart(report.features, config.psi_threshold), "PSI per feature")
    body = f"<p>{rule}</p>{chart}{_drift_table(report)}{_distributions(data, report)}"
    return _section("Drift", body)


def _distributions(data: ReportData, report: DriftReport) -> str:
    reference, current = data.reference, data.current
    if reference is None or current is None:
        return ""
    ranked = sorted(report.features, key=lambda feature: (not feature.drifted, -feature.psi))
    shown = [f for f in ranked if f.feature in reference.columns and f.feature in current.columns]
    images = [
        html_img(
            distribution_chart(f, reference.get_column(f.feature), current.get_column(f.feature)),
            f"{f.feature}: reference vs current",
        )
        for f in shown[:MAX_DISTRIBUTION_PLOTS]
    ]
    return '<h3>Reference vs current</h3><div class="plots">' + "".join(images) + "</div>"


def _decisions(retrain: RetrainDecision | None, gate: GateDecision | None) -> str:
    rows: list[list[Any]] = []
    if retrain is not None:
        rows.append(["retrain", "retrain" if retrain.retrain else "no retrain", retrain.reason])
    if gate is not None:
        rows.append(["promotion gate", "promote" if gate.promote else "keep champion", gate.reason])
    return html_table(["decision", "outcome", "reason"], rows) if rows else _none("No decisions were made.")


def _service_section(service: dict[str, Any] | None, latencies_ms: list[float] | None) -> str:
    """Two latencies, each labelled with its side, unit and window, with the same percentiles."""
    server = _mapping_table(_latency_labels(service)) if service else _none("No prediction log in the window.")
    client = _none("No client-side measurements.")
    if latencies_ms:
        figures = {"requests": len(latencies_ms), **latency_figures(latencies_ms)}
        label, unit = "client-side round trip per request (ms)", "requests"
        chart = html_img(latency_chart(latencies_ms, label=label, unit=unit), "client-side latency histogram")
        client = _mapping_table(_latency_labels(figures)) + chart
    return _section(
        "Service",
        f"<h3>Server-side: model time per prediction</h3><p>{escape(SERVER_LATENCY)}</p>{server}"
        f"<h3>Client-side: round trip per request</h3><p>{escape(CLIENT_LATENCY)}</p>{client}",
    )


def _latency_labels(figures: dict[str, Any]) -> dict[str, Any]:
    """``latency_p50_ms`` shown as ``p50 (ms)``, and so on; other fields as they are."""
    return {_LATENCY_LABELS.get(key, key): value for key, value in figures.items()}
