"""Service statistics over logged predictions: count, latency percentiles, throughput."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from loopline.core.errors import DataError, did_you_mean

REQUIRED_COLUMNS = ("created_at", "latency_ms")
LATENCY_KEYS = ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "latency_mean_ms", "latency_max_ms")
_PARSE_HINT = "Parse it first, e.g. pl.col('created_at').str.to_datetime()."


def service_stats(predictions: pl.DataFrame) -> dict[str, Any]:
    """Summarise a prediction log (columns ``created_at`` datetime and ``latency_ms``).

    The log's ``latency_ms`` is server-side model time per prediction: the model call's duration divided by
    the rows of its batch (no HTTP, parsing, validation or queueing).

    Returns ``count``, ``latency_p50_ms``, ``latency_p95_ms``, ``latency_p99_ms``, ``latency_mean_ms``,
    ``latency_max_ms`` (over non-null latencies, linear interpolation), ``span_s`` (first to last
    ``created_at``), ``throughput_rps`` (count / span) and ``first_at``/``last_at`` (ISO strings).
    A value that cannot be computed (no rows, no latencies, a zero span) is None.
    Raises DataError naming a missing column or a ``created_at`` that is not a datetime.
    """
    _check(predictions)
    stats: dict[str, Any] = {"count": predictions.height, **_latency(predictions.get_column("latency_ms"))}
    stats.update(_span(predictions.get_column("created_at"), predictions.height))
    return stats


def _check(predictions: pl.DataFrame) -> None:
    for name in REQUIRED_COLUMNS:
        if name not in predictions.columns:
            raise DataError(
                f"the prediction log has no column {name!r}.",
                column=name,
                hint=did_you_mean(name, predictions.columns) or "Read it with PredictionLog.read().",
            )
    dtype = predictions.schema["created_at"]
    if not isinstance(dtype, pl.Datetime):
        raise DataError(
            f"column 'created_at' has dtype {dtype}, not a datetime.",
            column="created_at",
            hint=_PARSE_HINT,
        )


def latency_figures(latencies_ms: Iterable[float]) -> dict[str, float | None]:
    """``latency_p50_ms``, ``latency_p95_ms``, ``latency_p99_ms``, ``latency_mean_ms``, ``latency_max_ms`` of
    the finite values (percentiles by linear interpolation; all None without one).

    The one definition of the figures: :func:`service_stats`, the report's tables and its histogram lines, and
    the quickstart's console all use it, whichever side measured the latencies.
    """
    values = np.fromiter(latencies_ms, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return dict.fromkeys(LATENCY_KEYS)
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    numbers = (p50, p95, p99, values.mean(), values.max())
    return {key: float(number) for key, number in zip(LATENCY_KEYS, numbers, strict=True)}


def _latency(latency: pl.Series) -> dict[str, float | None]:
    return latency_figures(latency.cast(pl.Float64).drop_nulls().to_numpy())


def _span(created_at: pl.Series, count: int) -> dict[str, Any]:
    times = created_at.drop_nulls()
    if times.is_empty():
        return {"span_s": None, "throughput_rps": None, "first_at": None, "last_at": None}
    first, last = times.min(), times.max()
    if not (isinstance(first, datetime) and isinstance(last, datetime)):
        raise DataError("column 'created_at' holds no datetimes.", column="created_at", hint=_PARSE_HINT)
    span_s = (last - first).total_seconds()
    return {
        "span_s": span_s,
        "throughput_rps": count / span_s if span_s > 0 else None,
        "first_at": first.isoformat(),
        "last_at": last.isoformat(),
    }
