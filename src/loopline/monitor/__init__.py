"""loopline.monitor: data drift, service statistics, and the HTML report.

Plain functions over polars frames and typed config; nothing here touches the store. What to do about
drift (retrain, gate, promote) is the loop policy's, in :mod:`loopline.run`.
"""

from loopline.monitor._drift import DriftReport, FeatureDrift, drift_report, drift_verdict
from loopline.monitor._report import ReportData, render_html_report, write_html_report
from loopline.monitor._stats import service_stats

__all__ = [
    "DriftReport",
    "FeatureDrift",
    "ReportData",
    "drift_report",
    "drift_verdict",
    "render_html_report",
    "service_stats",
    "write_html_report",
]
