"""loopline.monitor: data drift (pluggable drift tests) and service statistics.

Plain functions over polars frames and typed config; nothing here touches the store. What to do about
drift (retrain, gate, promote) is the loop policy's, in :mod:`loopline.run`; the HTML report of these records is
drawn by :mod:`loopline.report`.
"""

from loopline.monitor._drift import DriftReport, FeatureDrift, drift_report, drift_verdict
from loopline.monitor._drift_tests import DRIFT_TESTS, DriftTest, DriftTestResult, require_rows, skipped_result
from loopline.monitor._stats import latency_figures, service_stats
from loopline.monitor._window_alerts import check_alert_features, fired_alerts, window_value
from loopline.monitor._window_health import prediction_summary, window_health
from loopline.monitor._window_records import (
    AlertFiring,
    FeatureHealth,
    PredictionSummary,
    WindowHealth,
    WindowResult,
)
from loopline.monitor._window_spec import WindowSpec

__all__ = [  # noqa: RUF022 - plain sorted (tests/monitor/test_init.py), not isort-style
    "AlertFiring",
    "DRIFT_TESTS",
    "DriftReport",
    "DriftTest",
    "DriftTestResult",
    "FeatureDrift",
    "FeatureHealth",
    "PredictionSummary",
    "WindowHealth",
    "WindowResult",
    "WindowSpec",
    "check_alert_features",
    "drift_report",
    "drift_verdict",
    "fired_alerts",
    "latency_figures",
    "prediction_summary",
    "require_rows",
    "service_stats",
    "skipped_result",
    "window_health",
    "window_value",
]
