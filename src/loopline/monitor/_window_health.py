"""Service health of one window of logged predictions: rows, versions, latency, throughput, missing and unseen
values per feature, and the distribution of the predictions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import polars as pl

from loopline.monitor._stats import latency_figures
from loopline.monitor._window_records import FeatureHealth, PredictionSummary, WindowHealth

TOP_CLASSES = 20
"""How many classes a categorical prediction summary keeps (the most frequent)."""


def window_health(
    frame: pl.DataFrame,
    *,
    numeric: list[str],
    categorical: list[str],
    reference_categories: Mapping[str, frozenset[str]],
    span_s: float | None = None,
    errors: Mapping[str, int] | None = None,
) -> WindowHealth:
    """The health of the predictions in ``frame`` (columns ``created_at``, ``model_version``, ``latency_ms``,
    ``prediction`` and the features; a feature column may be absent: every row then misses it).

    ``reference_categories`` holds each categorical feature's values in the training reference, as strings;
    ``span_s`` is the window's length in seconds (None: first to last row). ``errors``: the requests the
    service failed in the window, by kind (None: not known, and ``error_rate`` is None too).
    """
    rows = frame.height
    first, last = _span(frame)
    if span_s is None and first is not None and last is not None:
        span_s = (last - first).total_seconds()
    figures = latency_figures(frame.get_column("latency_ms").cast(pl.Float64).drop_nulls().to_numpy())
    features = [_feature(frame, name, None) for name in numeric]
    features += [_feature(frame, name, reference_categories.get(name, frozenset())) for name in categorical]
    versions = frame.get_column("model_version").value_counts(sort=True) if rows else None
    failed = sum((errors or {}).values())
    return WindowHealth(
        rows=rows,
        versions={} if versions is None else {int(v): int(n) for v, n in versions.iter_rows()},
        first_at=first,
        last_at=last,
        latency_p50_ms=figures["latency_p50_ms"],
        latency_p99_ms=figures["latency_p99_ms"],
        latency_mean_ms=figures["latency_mean_ms"],
        latency_max_ms=figures["latency_max_ms"],
        throughput_rps=rows / span_s if span_s and rows else (0.0 if span_s else None),
        features=tuple(features),
        prediction=prediction_summary(frame.get_column("prediction") if "prediction" in frame.columns else None),
        error_rate=failed / (failed + rows) if errors is not None and failed + rows else None,
        errors={kind: n for kind, n in (errors or {}).items() if n},
    )


def prediction_summary(predictions: pl.Series | None) -> PredictionSummary:
    """Class shares of categorical predictions (strings, booleans, integers), figures of numeric (float) ones;
    nothing for nested outputs (lists, objects)."""
    if predictions is None or predictions.drop_nulls().is_empty() or predictions.dtype.is_nested():
        return PredictionSummary()
    values = predictions.drop_nulls()
    if values.dtype.is_float():
        numbers = values.cast(pl.Float64)
        return PredictionSummary(
            kind="numeric",
            mean=_number(numbers.mean()),
            std=_number(numbers.std()) if numbers.len() > 1 else None,
            min=_number(numbers.min()),
            p50=_number(numbers.median()),
            max=_number(numbers.max()),
        )
    counts = values.cast(pl.String).value_counts(sort=True).head(TOP_CLASSES)
    total = values.len()
    return PredictionSummary(kind="categorical", shares={str(k): n / total for k, n in counts.iter_rows()})


def _feature(frame: pl.DataFrame, name: str, seen: frozenset[str] | None) -> FeatureHealth:
    rows = frame.height
    if rows == 0:
        return FeatureHealth(name, 0.0, None if seen is None else 0.0)
    if name not in frame.columns:
        return FeatureHealth(name, 1.0, None if seen is None else 0.0)
    column = frame.get_column(name)
    missing = column.null_count() + (int(column.is_nan().sum()) if column.dtype.is_float() else 0)
    if seen is None:
        return FeatureHealth(name, missing / rows)
    present = column.drop_nulls().cast(pl.String)
    unseen = int((~present.is_in(list(seen))).sum()) if present.len() else 0
    return FeatureHealth(name, missing / rows, unseen / rows)


def _span(frame: pl.DataFrame) -> tuple[datetime | None, datetime | None]:
    times = frame.get_column("created_at").drop_nulls()
    if times.is_empty():
        return None, None
    first, last = times.min(), times.max()
    return (first if isinstance(first, datetime) else None), (last if isinstance(last, datetime) else None)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
