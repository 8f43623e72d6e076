"""loopline.monitor: data drift (pluggable drift tests, chosen per column; a reference profile of the training
data) and service statistics.

Plain functions over polars frames and typed config; nothing here touches the store. What to do about
drift (retrain, gate, promote) is the loop policy's, in :mod:`loopline.run`; the HTML report of these records is
drawn by :mod:`loopline.report`.
"""

from loopline.monitor._drift import DriftReport, FeatureDrift, drift_report, drift_verdict
from loopline.monitor._drift_tests import DRIFT_TESTS, DriftTest, DriftTestResult, require_rows, skipped_result
from loopline.monitor._profile import ReferenceProfile
from loopline.monitor._stats import latency_figures, service_stats

__all__ = [
    "DRIFT_TESTS",
    "DriftReport",
    "DriftTest",
    "DriftTestResult",
    "FeatureDrift",
    "ReferenceProfile",
    "drift_report",
    "drift_verdict",
    "latency_figures",
    "require_rows",
    "service_stats",
    "skipped_result",
]
