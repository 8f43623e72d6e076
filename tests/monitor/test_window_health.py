from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from loopline.core.config import AlertRule, MonitorConfig
from loopline.monitor import WindowHealth, WindowResult, fired_alerts, prediction_summary, window_health

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def frame(n: int, **columns: list[object]) -> pl.DataFrame:
    base = {
        "created_at": [T0 + timedelta(seconds=i) for i in range(n)],
        "model_version": [1] * (n - 1) + [2] if n else [],
        "latency_ms": [float(i) for i in range(n)],
    }
    return pl.DataFrame({**base, **columns}).with_columns(
        pl.col("created_at").cast(pl.Datetime("us", "UTC")), pl.col("model_version").cast(pl.Int64)
    )


def test_health_of_a_window() -> None:
    data = frame(
        5, prediction=[0.5, 1.5, 2.5, None, 3.5], age=[1.0, None, 3.0, None, 5.0], city=["a", "z", None, "b", "z"]
    )
    health = window_health(
        data, numeric=["age", "gone"], categorical=["city"], reference_categories={"city": frozenset({"a", "b"})}
    )
    assert (health.rows, health.versions, health.first_at, health.last_at) == (
        5,
        {1: 4, 2: 1},
        T0,
        T0 + timedelta(seconds=4),
    )
    assert (health.latency_p50_ms, health.latency_max_ms) == (2.0, 4.0)
    assert health.throughput_rps == pytest.approx(5 / 4)  # first to last row without a span
    assert [(f.feature, f.missing_share, f.unseen_share) for f in health.features] == [
        ("age", 0.4, None),
        ("gone", 1.0, None),
        ("city", 0.2, 0.4),
    ]
    assert health.prediction.kind == "numeric" and health.prediction.p50 == 2.0 and health.error_rate is None
    assert WindowHealth.from_dict(health.to_dict()) == health


def test_an_empty_window_and_its_alerts() -> None:
    health = window_health(
        frame(0, prediction=[]), numeric=["age"], categorical=[], reference_categories={}, span_s=3600
    )
    assert (health.rows, health.latency_p99_ms, health.throughput_rps, health.prediction.kind) == (0, None, 0.0, "none")
    window = WindowResult("m", "1h", 1, T0, T0 + timedelta(hours=1), "closed", health)
    rules = [
        AlertRule(when="rows", below=1),
        AlertRule(when="latency_p99_ms", above=0),
        AlertRule(when="drift.age", above=0),
    ]
    [fired] = fired_alerts(window, rules)
    assert (fired.rule, fired.value, fired.threshold, fired.op) == ("rows below 1", 0.0, 1.0, "below")
    assert WindowResult.from_dict(window.to_dict()) == window


def test_a_stored_band_without_a_value_reads_back_as_nan() -> None:
    health = window_health(
        frame(0, prediction=[]), numeric=["age"], categorical=[], reference_categories={}, span_s=3600
    )
    window = WindowResult("m", "500", 1, T0, T0 + timedelta(hours=1), "closed", health)
    # the store writes NaN as JSON null: precision has no value when a window holds no positive prediction
    stored = {**window.to_dict(), "estimated_bands": {"precision": [None, None], "roc_auc": [0.6, 0.7]}}
    bands = WindowResult.from_dict(stored).estimated_bands
    assert bands is not None and bands["roc_auc"] == (0.6, 0.7)
    assert all(math.isnan(bound) for bound in bands["precision"])


def test_prediction_summaries() -> None:
    assert prediction_summary(pl.Series(["yes", "no", "yes", None])).shares == {"yes": 2 / 3, "no": 1 / 3}
    assert prediction_summary(pl.Series([True, False])).kind == "categorical"
    assert prediction_summary(pl.Series([None, None])).kind == "none"
    numeric = prediction_summary(pl.Series([1.0, 3.0]))
    assert (numeric.mean, numeric.min, numeric.max, numeric.std) == (2.0, 1.0, 3.0, pytest.approx(2**0.5))


def test_alert_rules_are_validated() -> None:
    assert AlertRule(when="unseen_share.city", above=0.1).label == "unseen_share.city above 0.1"
    with pytest.raises(ValueError, match="Did you mean 'throughput_rps'"):
        AlertRule(when="throughput", below=1)
    with pytest.raises(ValueError, match="needs exactly one of 'above' or 'below'"):
        AlertRule(when="rows")
    with pytest.raises(ValueError, match="alerts_webhook_env"):
        MonitorConfig(model="m", alerts_webhook_env="https://hooks.example/secret")
