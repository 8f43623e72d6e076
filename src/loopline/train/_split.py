"""Splitting a table into train, valid and test rows: by time, stratified or at random."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl

from loopline.core.errors import ConfigError, DataError, did_you_mean

SPLIT_METHODS = ("time", "stratified", "random")
_KEY = "__loopline_split_time__"
_ROW = "__loopline_split_row__"


def split_table(
    df: pl.DataFrame,
    *,
    method: str,
    target: str,
    time_column: str | None = None,
    valid_from: datetime | str | None = None,
    test_from: datetime | str | None = None,
    valid_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> dict[str, pl.DataFrame]:
    """``{"train", "valid", "test"}`` tables.

    ``time``: rows before ``valid_from`` train, rows from ``valid_from`` up to
    ``test_from`` validate, the rest test (empty when ``test_from`` is None); each
    part is sorted by time. Times may be datetimes or ISO 8601 strings ("...Z");
    naive times count as UTC. ``stratified`` keeps each target class's share in
    every part; ``random`` shuffles. Both use ``seed`` and keep the original row
    order inside a part. An empty train or valid part (or an empty test part that
    was asked for) raises DataError.
    """
    _require(df, target, "target")
    if method == "time":
        parts = _by_time(df, time_column, valid_from, test_from)
        _check_not_empty(parts, test_wanted=test_from is not None, method=method)
        return parts
    if method not in SPLIT_METHODS:
        hint = did_you_mean(method, SPLIT_METHODS) or f"Use one of: {', '.join(SPLIT_METHODS)}."
        raise ConfigError(f"unknown split method {method!r}.", key="method", hint=hint)
    _check_fractions(valid_fraction, test_fraction)
    groups = _class_groups(df, target) if method == "stratified" else [np.arange(df.height)]
    rng = np.random.default_rng(seed)
    chosen: dict[str, list[np.ndarray]] = {"train": [], "valid": [], "test": []}
    for rows in groups:
        for name, part in _cut(rng.permutation(rows), valid_fraction, test_fraction).items():
            chosen[name].append(part)
    parts = {name: df[np.sort(np.concatenate(idx))] for name, idx in chosen.items()}
    _check_not_empty(parts, test_wanted=test_fraction > 0, method=method)
    return parts


def _require(df: pl.DataFrame, column: str, role: str) -> None:
    if column not in df.columns:
        raise DataError(
            f"{role} column {column!r} is missing from the table.",
            column=column,
            hint=did_you_mean(column, df.columns) or f"Columns present: {', '.join(df.columns)}.",
        )


def _by_time(
    df: pl.DataFrame,
    time_column: str | None,
    valid_from: datetime | str | None,
    test_from: datetime | str | None,
) -> dict[str, pl.DataFrame]:
    if time_column is None or valid_from is None:
        raise ConfigError(
            "a time split needs time_column and valid_from.",
            key="time_column" if time_column is None else "valid_from",
            hint="Set both, e.g. time_column: time_hour and valid_from: 2013-10-01T00:00:00Z.",
        )
    _require(df, time_column, "time")
    start = _instant(valid_from, "valid_from")
    end = _instant(test_from, "test_from") if test_from is not None else None
    if end is not None and end < start:
        raise ConfigError(
            f"test_from ({end.isoformat()}) is before valid_from ({start.isoformat()}).",
            key="test_from",
            hint="Set test_from to a later time than valid_from.",
        )
    keyed = df.with_columns(_utc_times(df, time_column).alias(_KEY)).sort(_KEY, maintain_order=True)
    key = pl.col(_KEY)
    parts = {
        "train": keyed.filter(key < start),
        "valid": keyed.filter(key >= start) if end is None else keyed.filter((key >= start) & (key < end)),
        "test": keyed.clear() if end is None else keyed.filter(key >= end),
    }
    return {name: part.drop(_KEY) for name, part in parts.items()}


def _utc_times(df: pl.DataFrame, name: str) -> pl.Series:
    column = df.get_column(name)
    try:
        if column.dtype == pl.String:
            times = column.str.to_datetime(time_unit="us", time_zone="UTC")
        elif column.dtype == pl.Date:
            times = column.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        elif isinstance(column.dtype, pl.Datetime):
            times = _as_utc(column)
        else:
            raise TypeError(f"type {column.dtype}")
    except (pl.exceptions.PolarsError, TypeError) as exc:
        raise DataError(
            f"time column {name!r} cannot be read as times ({exc}).".replace("\n", " "),
            column=name,
            hint="Use datetimes or ISO 8601 strings such as 2013-01-01T05:00:00Z, in one format.",
        ) from None
    if times.null_count():
        raise DataError(
            f"time column {name!r} has {times.null_count()} null rows.",
            column=name,
            hint="Drop or fill rows without a time before splitting.",
        )
    return times


def _as_utc(column: pl.Series) -> pl.Series:
    if getattr(column.dtype, "time_zone", None) is None:
        return column.dt.replace_time_zone("UTC")
    return column.dt.convert_time_zone("UTC")


def _instant(value: datetime | str, key: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ConfigError(
                f"{key} {value!r} is not an ISO 8601 time.",
                key=key,
                hint="Write it like 2013-10-01T00:00:00Z.",
            ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _check_fractions(valid_fraction: float, test_fraction: float) -> None:
    if not (0 < valid_fraction < 1 and 0 <= test_fraction < 1 and valid_fraction + test_fraction < 1):
        raise ConfigError(
            f"split fractions valid={valid_fraction}, test={test_fraction} leave no training rows.",
            key="valid_fraction",
            hint="Use 0 < valid_fraction, 0 <= test_fraction and valid_fraction + test_fraction < 1.",
        )


def _class_groups(df: pl.DataFrame, target: str) -> list[np.ndarray]:
    rows = df.select(pl.col(target)).with_row_index(_ROW)
    groups = rows.group_by(target, maintain_order=True).agg(pl.col(_ROW))
    return [np.asarray(indices, dtype=np.int64) for indices in groups.get_column(_ROW).to_list()]


def _cut(rows: np.ndarray, valid_fraction: float, test_fraction: float) -> dict[str, np.ndarray]:
    n_test = round(rows.size * test_fraction)
    n_valid = round(rows.size * valid_fraction)
    return {
        "test": rows[:n_test],
        "valid": rows[n_test : n_test + n_valid],
        "train": rows[n_test + n_valid :],
    }


def _check_not_empty(parts: dict[str, pl.DataFrame], *, test_wanted: bool, method: str) -> None:
    for name in ("train", "valid", "test"):
        if parts[name].height == 0 and (name != "test" or test_wanted):
            hint = (
                "Move valid_from/test_from so that every part gets rows."
                if method == "time"
                else "Use more rows or larger fractions."
            )
            raise DataError(f"the {name!r} split is empty.", hint=hint)
