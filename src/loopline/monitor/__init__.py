"""loopline.monitor: data drift, retrain and promotion decisions, service statistics.

Plain functions over polars frames and typed config; nothing here touches the store. The HTML report of
these records is drawn by :mod:`loopline.report`.
"""

from loopline.monitor._drift import DriftReport, FeatureDrift, drift_report, drift_verdict
from loopline.monitor._policy import GateDecision, RetrainDecision, decide_retrain, gate
from loopline.monitor._stats import service_stats

__all__ = [
    "DriftReport",
    "FeatureDrift",
    "GateDecision",
    "RetrainDecision",
    "decide_retrain",
    "drift_report",
    "drift_verdict",
    "gate",
    "service_stats",
]
