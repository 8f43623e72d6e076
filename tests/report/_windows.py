"""Windows, alerts and loop events for the over-time report tests, with text from data that must be escaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from loopline.monitor import DriftReport, FeatureDrift, PredictionSummary, WindowHealth, WindowResult

EVIL_FEATURE = '<img src=x onerror="alert(1)">'
EVIL_REASON = "probation failed: <script>alert('x')</script> & more"
START = datetime(2026, 11, 1, tzinfo=UTC)


def feature(name: str, psi: float, *, drifted: bool, n_current: int = 100, status: str | None = None) -> FeatureDrift:
    status = status or ("drift" if drifted else "no drift")
    return FeatureDrift(name, "numeric", psi, "ks", 0.1, 0.5, drifted, 1000, n_current, f"reason of {name}", status)


def health(seq: int, rows: int = 100) -> WindowHealth:
    return WindowHealth(
        rows=rows,
        versions={1: rows},
        first_at=START + timedelta(days=seq),
        last_at=START + timedelta(days=seq, hours=23),
        latency_p50_ms=1.0 + seq,
        latency_p99_ms=5.0 + seq,
        latency_mean_ms=2.0,
        latency_max_ms=9.0,
        throughput_rps=10.0 * (seq + 1),
        prediction=PredictionSummary("categorical", {"yes": 0.2 + 0.1 * seq, "no": 0.8 - 0.1 * seq}),
    )


def window(seq: int, features: list[FeatureDrift] | None, **fields: object) -> WindowResult:
    """Window ``seq`` of spec 1d; ``features`` None: no drift report (too few rows)."""
    drift = None
    if features is not None:
        drift = DriftReport(features, [f.feature for f in features if f.drifted], any(f.drifted for f in features))
    start = START + timedelta(days=seq)
    skipped = None if features is not None else "too few rows"
    return WindowResult(
        "churn",
        "1d",
        seq,
        start,
        start + timedelta(days=1),
        "closed",
        health(seq),
        drift,
        skipped,
        **fields,  # type: ignore[arg-type]
    )


def three_windows() -> list[WindowResult]:
    """#0 stable, #1 without a drift report nor labels, #2 with EVIL_FEATURE drifted, labels and an estimate."""
    return [
        window(0, [feature("age", 0.01, drifted=False), feature(EVIL_FEATURE, 0.02, drifted=False)]),
        window(1, None, estimated_metrics={"roc_auc": 0.8, "roc_auc_lower": 0.7, "roc_auc_upper": 0.9}),
        window(
            2,
            [feature("age", 0.05, drifted=False), feature(EVIL_FEATURE, 0.6, drifted=True)],
            realised_metrics={"roc_auc": 0.75},
            estimated_metrics={"roc_auc": 0.78, "roc_auc_lower": 0.7, "roc_auc_upper": 0.86},
            label_coverage=0.5,
        ),
    ]
