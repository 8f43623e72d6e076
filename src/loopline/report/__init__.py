"""loopline.report: HTML pages and plots of what the stages computed, for the CLI and a dashboard alike.

The stages compute plain records (a drift report, decisions, service statistics, a dataset profile);
this package turns them into self-contained HTML (inline CSS, plots as base64 PNG, every string from data
escaped) and into single charts a dashboard can embed. It renders, it fetches nothing: no store, no runs.

Plots need matplotlib, the ``report`` extra (``pip install 'loopline[report]'``). Importing this package
does not import matplotlib; drawing without it raises :class:`~loopline.core.errors.MissingExtraError`
naming the extra, and :func:`require_plotting` checks for it up front. Figures are drawn on their own Agg
canvas: no pyplot, no backend switch, nothing global touched.
"""

from loopline.report._drift_charts import distribution_chart, latency_chart, psi_chart
from loopline.report._figures import plotting_available, require_plotting
from loopline.report._html import finite, format_value, html_table, json_script, page, write_html
from loopline.report._loop_report import (
    ReportData,
    render_history_html,
    render_html_report,
    write_history_html,
    write_html_report,
)
from loopline.report._profile_charts import profile_histogram_chart
from loopline.report._profile_page import render_profile_html, write_profile_html
from loopline.report._study_page import optimisation_history, render_study_html, write_study_html
from loopline.report._timeline import AuditEntry, TimelineEntry, TimelineGroup, group_timeline, timeline_entries
from loopline.report._windows_page import WindowAlert, WindowsView, prediction_lines, report_cell, window_label

__all__ = [
    "AuditEntry",
    "ReportData",
    "TimelineEntry",
    "TimelineGroup",
    "WindowAlert",
    "WindowsView",
    "distribution_chart",
    "finite",
    "format_value",
    "group_timeline",
    "html_table",
    "json_script",
    "latency_chart",
    "optimisation_history",
    "page",
    "plotting_available",
    "prediction_lines",
    "profile_histogram_chart",
    "psi_chart",
    "render_history_html",
    "render_html_report",
    "render_profile_html",
    "render_study_html",
    "report_cell",
    "require_plotting",
    "timeline_entries",
    "window_label",
    "write_history_html",
    "write_html",
    "write_html_report",
    "write_profile_html",
    "write_study_html",
]
