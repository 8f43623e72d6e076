"""Splitting a table into train, valid and test rows: by time, stratified, by group or at random."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from loopline.core.errors import ConfigError, DataError, did_you_mean

SPLIT_METHODS = ("time", "stratified", "group", "random")
_KEY = "__loopline_split_time__"

TimePoint = datetime | date | int | float | str
"""A boundary of a time split: a datetime, a date or an ISO 8601 string for a time column; a number for a
column of numbers (years, periods)."""
Gap = timedelta | int | float | str | None
"""A gap before a boundary: a duration (``"7d"``, a timedelta) for times; a number in the column's units
(``1`` year) for a column of numbers."""
_ROW = "__loopline_split_row__"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def split_table(
    df: pl.DataFrame,
    *,
    method: str,
    target: str,
    time_column: str | None = None,
    valid_from: TimePoint | None = None,
    test_from: TimePoint | None = None,
    valid_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    group_column: str | None = None,
    gap: Gap = None,
) -> dict[str, pl.DataFrame]:
    """``{"train", "valid", "test"}`` tables.

    ``time``: rows before ``valid_from`` train, rows from ``valid_from`` up to
    ``test_from`` validate, the rest test (empty when ``test_from`` is None); each
    part is sorted by time. Times may be datetimes, dates or ISO 8601 strings ("...Z"),
    naive times counting as UTC, with boundaries written the same way; or numbers (an integer
    year, a period index), with number boundaries (``valid_from: 2013``) and a number gap.
    ``gap`` (a timedelta or a duration such as "7d", "12h", "1d12h"; see :func:`parse_gap`)
    drops the rows less than ``gap`` before ``valid_from`` from train and before ``test_from`` from valid, so that no
    label window leaks across a boundary; the dropped rows are the input rows
    missing from the parts. ``stratified`` keeps each target class's share in
    every part; ``group`` puts all rows of a ``group_column`` value (null is one
    group) in one part, with the fractions met by rows approximately; ``random``
    shuffles. These three use ``seed`` and keep the original row order inside a
    part. An empty train or valid part (or an empty test part that was asked
    for) raises DataError.
    """
    _require(df, target, "target")
    _check_method_options(method, group_column, gap)
    if method == "time":
        parts = _by_time(df, time_column, valid_from, test_from, gap)
        _check_not_empty(parts, test_wanted=test_from is not None, method=method, gap=gap)
        return parts
    _check_fractions(valid_fraction, test_fraction)
    rng = np.random.default_rng(seed)
    if method == "group":
        parts = _by_group(df, group_column, valid_fraction, test_fraction, rng)
        _check_not_empty(parts, test_wanted=test_fraction > 0, method=method)
        return parts
    groups = row_groups(df, target) if method == "stratified" else [np.arange(df.height)]
    chosen: dict[str, list[np.ndarray]] = {"train": [], "valid": [], "test": []}
    for rows in groups:
        for name, part in _cut(rng.permutation(rows), valid_fraction, test_fraction).items():
            chosen[name].append(part)
    parts = {name: df[_joined(idx)] for name, idx in chosen.items()}
    _check_not_empty(parts, test_wanted=test_fraction > 0, method=method)
    return parts


def parse_gap(gap: timedelta | str | None) -> timedelta:
    """A gap as a timedelta; None is no gap.

    A string is one or more number-unit pairs with the units w (weeks), d, h,
    m (minutes) and s: "7d", "12h", "1d12h", "1.5h". Negative gaps raise ConfigError.
    """
    if gap is None:
        return timedelta(0)
    if isinstance(gap, str):
        text = gap.strip().lower().replace(" ", "")
        pieces = _DURATION.findall(text)
        if not pieces or "".join(number + unit for number, unit in pieces) != text:
            raise ConfigError(
                f"gap {gap!r} is not a duration.",
                key="gap",
                hint='Write it like "7d", "12h" or "1d12h" (units w, d, h, m for minutes, s).',
            )
        gap = timedelta(seconds=sum(float(number) * _UNIT_SECONDS[unit] for number, unit in pieces))
    if gap < timedelta(0):
        raise ConfigError(f"gap {gap} is negative.", key="gap", hint="Use a positive duration, or leave gap out.")
    return gap


def gap_width(gap: Gap, keys: pl.Series, column: str) -> timedelta | int | float:
    """``gap`` in the units of ``keys`` (see :func:`time_keys`): a timedelta for times, a number for numbers."""
    numeric = keys.dtype.is_numeric()
    if isinstance(gap, bool):
        raise ConfigError(f"gap {gap!r} is not a duration.", key="gap", hint='Write it like "7d", or a number.')
    if isinstance(gap, int | float):
        if not numeric:
            raise ConfigError(
                f"gap {gap!r} is a number, but time column {column!r} holds times.",
                key="gap",
                hint='Write the gap as a duration such as "7d" or "12h".',
            )
        if gap < 0:
            raise ConfigError(f"gap {gap} is negative.", key="gap", hint="Use a positive number, or leave gap out.")
        return gap
    width = parse_gap(gap)
    if numeric and width:
        raise ConfigError(
            f"gap {gap!r} is a duration, but time column {column!r} holds numbers ({keys.dtype}).",
            key="gap",
            hint="Write the gap in the column's own units, e.g. gap: 1 for one year.",
        )
    return 0 if numeric else width


def _check_method_options(method: str, group_column: str | None, gap: Gap) -> None:
    if method not in SPLIT_METHODS:
        hint = did_you_mean(method, SPLIT_METHODS) or f"Use one of: {', '.join(SPLIT_METHODS)}."
        raise ConfigError(f"unknown split method {method!r}.", key="method", hint=hint)
    if group_column is not None and method != "group":
        raise ConfigError(
            f"group_column only applies to method 'group', not {method!r}.",
            key="group_column",
            hint="Set method: group, or remove group_column.",
        )
    if gap is not None and method != "time":
        raise ConfigError(
            f"gap only applies to method 'time', not {method!r}.",
            key="gap",
            hint="Use method: time (with time_column and valid_from), or remove gap.",
        )


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
    valid_from: TimePoint | None,
    test_from: TimePoint | None,
    gap: Gap,
) -> dict[str, pl.DataFrame]:
    if time_column is None or valid_from is None:
        raise ConfigError(
            "a time split needs time_column and valid_from.",
            key="time_column" if time_column is None else "valid_from",
            hint="Set both, e.g. time_column: time_hour and valid_from: 2013-10-01T00:00:00Z (or year and 2013).",
        )
    keys = time_keys(df, time_column)
    width = gap_width(gap, keys, time_column)
    start: Any = time_bound(valid_from, "valid_from", keys, time_column)  # both times, or both numbers
    end: Any = time_bound(test_from, "test_from", keys, time_column) if test_from is not None else None
    if end is not None and end < start:
        raise ConfigError(
            f"test_from ({_text(end)}) is before valid_from ({_text(start)}).",
            key="test_from",
            hint="Set test_from to a later time than valid_from.",
        )
    keyed = df.with_columns(keys.alias(_KEY)).sort(_KEY, maintain_order=True)
    key = pl.col(_KEY)
    parts = {
        "train": keyed.filter(key < start - width),
        "valid": keyed.filter(key >= start) if end is None else keyed.filter((key >= start) & (key < end - width)),
        "test": keyed.clear() if end is None else keyed.filter(key >= end),
    }
    return {name: part.drop(_KEY) for name, part in parts.items()}


def time_keys(df: pl.DataFrame, name: str) -> pl.Series:
    """What a time split orders column ``name`` by: numbers (an integer year) as they are; datetimes, dates
    and ISO 8601 strings as UTC datetimes. DataError if unreadable or null."""
    _require(df, name, "time")
    column = df.get_column(name)
    if not column.dtype.is_numeric():
        return utc_times(df, name)
    if column.null_count() or (column.dtype.is_float() and column.is_nan().any()):
        raise DataError(
            f"time column {name!r} has null or NaN rows.",
            column=name,
            hint="Drop or fill rows without a time before splitting.",
        )
    return column


def time_bound(value: TimePoint, key: str, keys: pl.Series, column: str) -> datetime | int | float:
    """A boundary (``valid_from``) in the units of ``keys``; ConfigError when it is written as the other kind."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if keys.dtype.is_numeric():
        if isinstance(value, int | float) and number:
            return value
        raise ConfigError(
            f"{key} {value!r} is not a number, but time column {column!r} holds numbers ({keys.dtype}).",
            key=key,
            hint=f"Write {key} as one of the column's values, e.g. {key}: {keys.max()!r}.",
        )
    if number:
        raise ConfigError(
            f"{key} {value!r} is a number, but time column {column!r} holds times.",
            key=key,
            hint=f"Write {key} as a date or time, e.g. 2013-10-01 or 2013-10-01T00:00:00Z.",
        )
    return _instant(value, key)  # type: ignore[arg-type]  # a bool: refused by the config, read as text here


def _text(value: datetime | int | float) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def utc_times(df: pl.DataFrame, name: str) -> pl.Series:
    """Column ``name`` as UTC datetimes (from datetimes, dates or ISO 8601 strings); DataError if unreadable or null."""
    _require(df, name, "time")
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


def _instant(value: datetime | date | str, key: str) -> datetime:
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
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


def row_groups(df: pl.DataFrame, column: str) -> list[np.ndarray]:
    """Row positions per distinct value of ``column`` (null is one value), in order of first appearance."""
    rows = df.select(pl.col(column)).with_row_index(_ROW)
    groups = rows.group_by(column, maintain_order=True).agg(pl.col(_ROW))
    return [np.asarray(indices, dtype=np.int64) for indices in groups.get_column(_ROW).to_list()]


def _by_group(
    df: pl.DataFrame,
    column: str | None,
    valid_fraction: float,
    test_fraction: float,
    rng: np.random.Generator,
) -> dict[str, pl.DataFrame]:
    """Whole groups, shuffled and laid end to end, go to the part their middle row falls in
    (test, valid, then train); test (when wanted) and valid get at least one group each."""
    if column is None:
        raise ConfigError(
            "a group split needs group_column.",
            key="group_column",
            hint="Name the column whose rows must stay together, e.g. group_column: customer_id.",
        )
    _require(df, column, "group")
    groups = row_groups(df, column)
    wanted = 3 if test_fraction > 0 else 2
    if len(groups) < wanted:
        raise DataError(
            f"group column {column!r} has {len(groups)} distinct value(s); a group split into {wanted} parts "
            f"needs at least {wanted}.",
            column=column,
            hint="Use a column with more groups, set test_fraction: 0, or use method: stratified or random.",
        )
    shuffled = [groups[i] for i in rng.permutation(len(groups))]
    sizes = np.array([rows.size for rows in shuffled])
    middles = np.cumsum(sizes) - sizes / 2
    n_test = int(np.searchsorted(middles, test_fraction * df.height))
    n_test = max(n_test, 1) if test_fraction > 0 else 0
    n_valid = max(int(np.searchsorted(middles, (test_fraction + valid_fraction) * df.height)), n_test + 1)
    cut = {"train": shuffled[n_valid:], "valid": shuffled[n_test:n_valid], "test": shuffled[:n_test]}
    return {name: df[_joined(idx)] for name, idx in cut.items()}


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)


def _cut(rows: np.ndarray, valid_fraction: float, test_fraction: float) -> dict[str, np.ndarray]:
    n_test = round(rows.size * test_fraction)
    n_valid = round(rows.size * valid_fraction)
    return {
        "test": rows[:n_test],
        "valid": rows[n_test : n_test + n_valid],
        "train": rows[n_test + n_valid :],
    }


def _check_not_empty(parts: dict[str, pl.DataFrame], *, test_wanted: bool, method: str, gap: Gap = None) -> None:
    hints = {
        "time": "Move valid_from/test_from so that every part gets rows"
        + (f", or shorten the gap ({gap})." if gap else "."),
        "group": "Use more (or smaller) groups, or larger fractions.",
    }
    for name in ("train", "valid", "test"):
        if parts[name].height == 0 and (name != "test" or test_wanted):
            raise DataError(
                f"the {name!r} split is empty.", hint=hints.get(method, "Use more rows or larger fractions.")
            )
