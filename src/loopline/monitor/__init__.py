"""loopline.monitor: data drift (pluggable drift tests chosen per column, a reference profile of the training
data and of the model's outputs, multivariate drift by a domain classifier), drift of predictions and labels,
service statistics, windows and alerts, realised and estimated performance.

Plain functions over polars frames and typed config; nothing here touches the store. What to do about
drift (retrain, gate, promote) is the loop policy's, in :mod:`loopline.run`; the HTML report of these records is
drawn by :mod:`loopline.report`.
"""

from loopline.monitor._drift import DriftReport, FeatureDrift, drift_report, drift_verdict
from loopline.monitor._drift_tests import DRIFT_TESTS, DriftTest, DriftTestResult, require_rows, skipped_result
from loopline.monitor._estimation import (
    Estimate,
    EstimatedPerformance,
    ExpectedConfusion,
    PerformanceEstimator,
    estimate_by_period,
)
from loopline.monitor._labels import LabelMatch, conform_label, match_label_source
from loopline.monitor._multivariate import MultivariateDrift, multivariate_drift
from loopline.monitor._outputs import prediction_drift, profile_outputs, target_drift
from loopline.monitor._overlay import FeatureOverlay, feature_overlay
from loopline.monitor._performance import (
    MIN_LABELS,
    PerformanceFigures,
    RealisedPerformance,
    SliceFigures,
    estimated_performance,
    fit_estimator,
    performance_figures,
    realised_performance,
)
from loopline.monitor._profile import ReferenceProfile
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

__all__ = [
    "DRIFT_TESTS",
    "MIN_LABELS",
    "AlertFiring",
    "DriftReport",
    "DriftTest",
    "DriftTestResult",
    "Estimate",
    "EstimatedPerformance",
    "ExpectedConfusion",
    "FeatureDrift",
    "FeatureHealth",
    "FeatureOverlay",
    "LabelMatch",
    "MultivariateDrift",
    "PerformanceEstimator",
    "PerformanceFigures",
    "PredictionSummary",
    "RealisedPerformance",
    "ReferenceProfile",
    "SliceFigures",
    "WindowHealth",
    "WindowResult",
    "WindowSpec",
    "check_alert_features",
    "conform_label",
    "drift_report",
    "drift_verdict",
    "estimate_by_period",
    "estimated_performance",
    "feature_overlay",
    "fired_alerts",
    "fit_estimator",
    "latency_figures",
    "match_label_source",
    "multivariate_drift",
    "performance_figures",
    "prediction_drift",
    "prediction_summary",
    "profile_outputs",
    "realised_performance",
    "require_rows",
    "service_stats",
    "skipped_result",
    "target_drift",
    "window_health",
    "window_value",
]
