"""loopline.monitor: data drift, retrain and promotion decisions, service statistics, and the HTML report.

Plain functions over polars frames and typed config; nothing here touches the store.
"""

from loopline.monitor._drift import DriftReport, FeatureDrift, drift_report, drift_verdict
from loopline.monitor._policy import GateDecision, RetrainDecision, decide_retrain, gate
from loopline.monitor._report import ReportData, render_html_report, write_html_report
from loopline.monitor._stats import service_stats

__all__ = [
    "DriftReport",
    "FeatureDrift",
    "GateDecision",
    "ReportData",
    "RetrainDecision",
    "decide_retrain",
    "drift_report",
    "drift_verdict",
    "gate",
    "render_html_report",
    "service_stats",
    "write_html_report",
]
