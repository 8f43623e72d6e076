from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from loopline.core.errors import DataError
from loopline.monitor import service_stats

START = datetime(2024, 5, 1, tzinfo=UTC)


def log(latencies: Sequence[float | None], seconds: Sequence[float]) -> pl.DataFrame:
    times = [START + timedelta(seconds=s) for s in seconds]
    return pl.DataFrame({"created_at": times, "latency_ms": latencies, "prediction_id": [str(i) for i in seconds]})


def test_percentiles_and_throughput() -> None:
    latencies = [float(v) for v in range(1, 101)]
    stats = service_stats(log(latencies, [i * 0.5 for i in range(100)]))  # 100 rows over 49.5 s
    assert stats["count"] == 100
    assert stats["latency_p50_ms"] == pytest.approx(np.percentile(latencies, 50))
    assert stats["latency_p95_ms"] == pytest.approx(95.05)
    assert stats["latency_p99_ms"] == pytest.approx(99.01)
    assert stats["latency_mean_ms"] == pytest.approx(50.5) and stats["latency_max_ms"] == 100.0
    assert stats["span_s"] == pytest.approx(49.5)
    assert stats["throughput_rps"] == pytest.approx(100 / 49.5)
    assert stats["first_at"] == "2024-05-01T00:00:00+00:00"


def test_null_latencies_are_ignored_and_zero_span_has_no_throughput() -> None:
    stats = service_stats(log([None, 4.0, float("nan")], [0, 0, 0]))
    assert stats["count"] == 3 and stats["latency_p50_ms"] == 4.0
    assert stats["span_s"] == 0.0 and stats["throughput_rps"] is None


def test_empty_log() -> None:
    empty = pl.DataFrame(schema={"created_at": pl.Datetime("us", "UTC"), "latency_ms": pl.Float64})
    stats = service_stats(empty)
    assert stats["count"] == 0
    assert stats["latency_p99_ms"] is None and stats["throughput_rps"] is None


def test_missing_column_and_wrong_dtype() -> None:
    with pytest.raises(DataError, match=r"no column 'latency_ms'\. Did you mean 'latency'"):
        service_stats(pl.DataFrame({"created_at": [START], "latency": [1.0]}))
    with pytest.raises(DataError, match=r"'created_at' has dtype String, not a datetime\. Parse it first"):
        service_stats(pl.DataFrame({"created_at": ["2024-05-01"], "latency_ms": [1.0]}))
