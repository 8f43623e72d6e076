"""Conformance specs of the time transforms (see test_transforms_conform.py): sensor readings per key."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl

_T0 = datetime(2024, 3, 30, 22, 0, tzinfo=UTC)


def _at(hours: list[float | None]) -> list[datetime | None]:
    return [None if h is None else _T0 + timedelta(hours=h) for h in hours]


TRAIN = pl.DataFrame(
    {
        "ts": _at([0, 1, 1, 2, 3, 0, 2.5, 5, None, 4]),
        "day": [date(2024, 1, d) for d in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)],
        "sensor": ["a", "a", "a", "a", "a", "b", "b", "b", "a", None],
        "site": [1, 1, 1, 1, 1, 2, 2, 2, 1, 1],
        "temp": [1.5, 2.0, 3.0, None, 5.0, 10.0, float("nan"), 30.0, 7.0, 8.0],
        "count": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        "state": ["on", "off", "on", None, "on", "off", "off", "on", "on", "off"],
        "label": [0, 1, 0, 1, 0, 1, 0, 1, 1, 0],
    }
).with_columns(local=pl.col("ts").dt.convert_time_zone("Europe/Paris"))
TEST = pl.DataFrame(
    {
        "ts": _at([6, 1.5, 10, None, 0, 2]),
        "day": [date(2024, 2, 29), date(2023, 12, 31), None, date(2024, 1, 1), date(2025, 1, 1), date(2024, 6, 30)],
        "sensor": ["a", "a", "c", "b", "b", None],
        "site": [1, 1, 3, 2, 2, 1],
        "temp": [1.0, 2.0, 3.0, 4.0, float("inf"), None],
        "count": [1, 2, 3, 4, 5, 6],
        "state": ["on", None, "off", "on", "on", "off"],
    }
).with_columns(local=pl.col("ts").dt.convert_time_zone("Europe/Paris"))

_ALL_PARTS = ["year", "quarter", "month", "week", "day", "weekday", "dayofyear", "hour", "minute", "second"]

SPECS: dict[str, list[dict[str, Any]]] = {
    "datetime_parts": [
        {"columns": ["ts"]},
        {"columns": ["ts", "local", "day"], "parts": _ALL_PARTS, "cyclic": ["hour", "weekday", "month"]},
        {"columns": ["local"], "parts": [], "cyclic": {"dayofyear": 365.25, "year": 10}, "drop": True},
    ],
    "lag": [
        {"columns": ["temp"], "time": "ts"},
        {"columns": ["temp", "count", "state"], "time": "ts", "by": ["sensor", "site"], "lags": [1, 2, 3]},
        {"columns": ["count"], "time": "day", "by": ["sensor"], "lags": [2], "max_keys": 1},
    ],
    "rolling": [
        {"columns": ["temp"], "time": "ts", "by": ["sensor"]},
        {
            "columns": ["temp", "count"],
            "time": "local",
            "by": ["sensor"],
            "windows": [1, 2, 4],
            "stats": ["mean", "sum", "min", "max", "std"],
            "min_periods": 2,
        },
        {"columns": ["count"], "time": "site", "windows": [3], "stats": ["std", "max"]},
    ],
}
