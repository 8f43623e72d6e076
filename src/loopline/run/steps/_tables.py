"""Table steps: join sources (by key, or as of a time), stack them, derive columns with SQL expressions, filter,
keep a time window."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import polars as pl
from pydantic import Field

from loopline.core.errors import DataError, did_you_mean
from loopline.core.step import StepConfig, StepContext, StepType
from loopline.ingest import parse_datetimes


class JoinConfig(StepConfig):
    """Join the second input onto the first by key columns."""

    on: Annotated[list[str], Field(min_length=1)]
    how: Literal["left", "inner"] = "left"
    columns: Annotated[list[str] | None, Field(description="Columns to take from the right input.")] = None


class WindowConfig(StepConfig):
    """Keep rows whose ``column`` lies in [start, end) (ISO-8601, UTC)."""

    column: str
    start: datetime | None = None
    end: datetime | None = None


class AsofJoinConfig(StepConfig):
    """For each row of the first input, the nearest row of the second at or before its time."""

    on: Annotated[str, Field(description="The time column of both inputs (timestamps, dates or numbers).")]
    by: Annotated[list[str], Field(description="Key columns a match must share, e.g. [sensor_id].")] = []
    tolerance: Annotated[
        str | float | None,
        Field(description="How far back a match may lie: '30s', '5m', '2h', '1d' for times, a number otherwise."),
    ] = None
    allow_exact_matches: Annotated[
        bool, Field(description="Whether a row of the second input at exactly the same time matches.")
    ] = True
    columns: Annotated[list[str] | None, Field(description="Columns to take from the second input.")] = None


class UnionConfig(StepConfig):
    """Stack the rows of every input; columns are matched by name."""

    columns: Annotated[
        Literal["all", "common"],
        Field(description="all: every column of any input (null where an input lacks it); common: those in all."),
    ] = "all"
    source_column: Annotated[
        str | None, Field(description="Add a column of this name with the position (1, 2, ...) of each row's input.")
    ] = None


class DeriveConfig(StepConfig):
    """Parse timestamps, add columns from SQL expressions, then filter rows, keep a time window, drop columns."""

    parse_dates: Annotated[list[str], Field(description="ISO-8601 text columns to parse as UTC timestamps.")] = []
    columns: Annotated[dict[str, str], Field(description="New column -> SQL expression, e.g. 'arr_delay > 15'.")] = {}
    filter: Annotated[str | None, Field(description="SQL condition rows must meet.")] = None
    window: WindowConfig | None = None
    drop: list[str] = []


class Join(StepType[JoinConfig]):
    """``type: join`` — left or inner join of two tables."""

    type_name = "join"
    Config = JoinConfig
    min_inputs = max_inputs = 2

    def run(self, config: JoinConfig, inputs: list[Any], ctx: StepContext) -> dict[str, Any]:
        left, right = inputs
        for side, frame in (("first", left), ("second", right)):
            require_columns(frame, config.on, f"the {side} input of the join")
        if config.columns:
            require_columns(right, config.columns, "the second input of the join")
            right = right.select([*config.on, *[c for c in config.columns if c not in config.on]])
        right = right.unique(subset=config.on, keep="first", maintain_order=True)
        left, right = _align_keys(left, right, config.on)
        return {"out": left.join(right, on=config.on, how=config.how, suffix="_right")}


class AsofJoin(StepType[AsofJoinConfig]):
    """``type: asof_join`` — each row of the first input with the nearest earlier row of the second input (by the
    time column ``on``, sharing the ``by`` keys, at most ``tolerance`` back): sensor readings as of each event.

    Rows of the first input keep their order and number; those with no match (or a null time) get nulls.
    """

    type_name = "asof_join"
    Config = AsofJoinConfig
    min_inputs = max_inputs = 2

    def run(self, config: AsofJoinConfig, inputs: list[Any], ctx: StepContext) -> dict[str, Any]:
        left, right = inputs
        keys = [config.on, *config.by]
        for side, frame in (("first", left), ("second", right)):
            require_columns(frame, keys, f"the {side} input of the asof join")
        if config.columns:
            require_columns(right, config.columns, "the second input of the asof join")
            right = right.select([*keys, *[c for c in config.columns if c not in keys]])
        left, right = _align_keys(left, right, keys)
        tolerance = _tolerance(config.on, left.schema[config.on], config.tolerance)
        row = "__loopline_row"
        indexed = left.with_row_index(row)
        timed = indexed.filter(pl.col(config.on).is_not_null()).sort(config.on)
        matched = timed.join_asof(
            right.filter(pl.col(config.on).is_not_null()).sort(config.on),
            on=config.on,
            by=config.by or None,
            strategy="backward",
            tolerance=tolerance,
            allow_exact_matches=config.allow_exact_matches,
            check_sortedness=False,
            suffix="_right",
        )
        untimed = indexed.filter(pl.col(config.on).is_null())
        out = pl.concat([matched, untimed], how="diagonal").sort(row).drop(row)
        return {"out": out}


class Union(StepType[UnionConfig]):
    """``type: union`` — the rows of every input, stacked in input order; columns matched by name.

    A column an input lacks is null in its rows (``columns: all``), or left out (``columns: common``). Types
    are unified: integers of any width to Int64, integers with floats to Float64, text with categories to
    String, timestamps of different units to microseconds (to UTC when one has a zone); anything else is an
    error naming the column and the inputs.
    """

    type_name = "union"
    Config = UnionConfig
    min_inputs = 2

    def run(self, config: UnionConfig, inputs: list[Any], ctx: StepContext) -> dict[str, Any]:
        frames: list[pl.DataFrame] = list(inputs)
        names = list(dict.fromkeys(name for frame in frames for name in frame.columns))
        if config.columns == "common":
            names = [n for n in names if all(n in frame.columns for frame in frames)]
        if config.source_column and config.source_column in names:
            raise DataError(
                f"union: source_column {config.source_column!r} is already a column of the inputs.",
                column=config.source_column,
                hint="Choose another name, e.g. source_column: input_no.",
            )
        types = {name: _unified(name, frames) for name in names}
        aligned = []
        for position, frame in enumerate(frames, start=1):
            columns = [_cast(pl.col(n), frame.schema[n], types[n]).alias(n) for n in names if n in frame.columns]
            if config.source_column:
                columns.append(pl.lit(position, dtype=pl.Int64).alias(config.source_column))
            aligned.append(frame.select(columns))
        out = pl.concat(aligned, how="diagonal")
        return {"out": out.select([*names, *([config.source_column] if config.source_column else [])])}


class Derive(StepType[DeriveConfig]):
    """``type: derive`` — stateless row-wise feature engineering (safe to run before the split)."""

    type_name = "derive"
    Config = DeriveConfig
    min_inputs = max_inputs = 1

    def run(self, config: DeriveConfig, inputs: list[Any], ctx: StepContext) -> dict[str, Any]:
        frame: pl.DataFrame = inputs[0]
        if config.parse_dates:
            frame = parse_datetimes(frame, config.parse_dates, source=f"the input of {ctx.step!r}")
        try:
            if config.columns:
                frame = frame.with_columns([pl.sql_expr(expr).alias(name) for name, expr in config.columns.items()])
            if config.filter:
                frame = frame.filter(pl.sql_expr(config.filter))
        except pl.exceptions.PolarsError as exc:
            raise DataError(
                f"a derive expression failed: {_first_line(exc)}",
                column=_missing_column(exc, frame),
                hint=_hint(exc, frame),
            ) from exc
        if config.window:
            frame = _window(frame, config.window)
        if config.drop:
            require_columns(frame, config.drop, "the input of derive")
            frame = frame.drop(config.drop)
        return {"out": frame}


def _align_keys(left: pl.DataFrame, right: pl.DataFrame, keys: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Timestamps in different units or zones join as UTC microseconds; other type differences are errors."""
    for key in keys:
        a, b = left.schema[key], right.schema[key]
        if a == b:
            continue
        if isinstance(a, pl.Datetime) and isinstance(b, pl.Datetime):
            left, right = (
                frame.with_columns(_utc_us(pl.col(key), zone))
                for frame, zone in ((left, a.time_zone), (right, b.time_zone))
            )
            continue
        if a.is_numeric() and b.is_numeric():
            left, right = (
                left.with_columns(pl.col(key).cast(pl.Float64)),
                right.with_columns(pl.col(key).cast(pl.Float64)),
            )
            continue
        parse = key if pl.String in (a, b) else None
        raise DataError(
            f"join key {key!r} is {a} in the first input and {b} in the second.",
            column=key,
            hint=f"Parse it first with a derive step: parse_dates: [{parse}]." if parse else "Cast one side first.",
        )
    return left, right


def _tolerance(column: str, dtype: pl.DataType, tolerance: str | float | None) -> str | int | float | None:
    """The tolerance as polars takes it for a time column of ``dtype``, or a DataError with the fix."""
    if tolerance is None:
        return None
    temporal = isinstance(dtype, pl.Datetime) or dtype == pl.Date
    if not temporal and not dtype.is_numeric():
        raise DataError(
            f"asof join column {column!r} is {dtype}; it must hold timestamps, dates or numbers.",
            column=column,
            hint=f"Parse it first with a derive step: parse_dates: [{column}].",
        )
    if temporal and not isinstance(tolerance, str):
        raise DataError(
            f"asof join tolerance {tolerance!r} is a number, but {column!r} holds times.",
            column=column,
            hint="Write a duration: tolerance: 5m (or 30s, 2h, 1d).",
        )
    if not temporal and isinstance(tolerance, str):
        raise DataError(
            f"asof join tolerance {tolerance!r} is a duration, but {column!r} holds numbers.",
            column=column,
            hint="Write a number in the column's unit: tolerance: 10.",
        )
    if isinstance(tolerance, float) and dtype.is_integer() and tolerance.is_integer():
        return int(tolerance)
    return tolerance


def _unified(name: str, frames: list[pl.DataFrame]) -> pl.DataType:
    """The one type of column ``name`` across the inputs that have it, or a DataError naming two that clash."""
    seen = [(i, frame.schema[name]) for i, frame in enumerate(frames, start=1) if name in frame.columns]
    typed = [(i, d) for i, d in seen if d != pl.Null]
    if not typed:
        return pl.Null()
    dtypes = [d for _, d in typed]
    first = dtypes[0]
    if all(d == first for d in dtypes):
        return first
    if all(d.is_integer() for d in dtypes):
        return pl.Int64()
    if all(d.is_numeric() for d in dtypes):
        return pl.Float64()
    if all(d == pl.String or d == pl.Categorical or isinstance(d, pl.Enum) for d in dtypes):
        return pl.String()
    if all(isinstance(d, pl.Datetime) for d in dtypes):
        zoned = any(isinstance(d, pl.Datetime) and d.time_zone for d in dtypes)
        return pl.Datetime("us", "UTC") if zoned else pl.Datetime("us")
    (a, da), (b, db) = typed[0], next((i, d) for i, d in typed if d != first)
    raise DataError(
        f"union: column {name!r} is {da} in input #{a} and {db} in input #{b}.",
        column=name,
        hint="Cast it to one type in a derive step before the union, or parse text timestamps with parse_dates.",
    )


def _cast(column: pl.Expr, dtype: pl.DataType, target: pl.DataType) -> pl.Expr:
    if dtype == target:
        return column
    if isinstance(target, pl.Datetime) and isinstance(dtype, pl.Datetime):
        return _utc_us(column, dtype.time_zone) if target.time_zone else column.dt.cast_time_unit("us")
    return column.cast(target)


def _utc_us(column: pl.Expr, zone: str | None) -> pl.Expr:
    zoned = column.dt.replace_time_zone("UTC") if zone is None else column.dt.convert_time_zone("UTC")
    return zoned.dt.cast_time_unit("us")


def require_columns(frame: pl.DataFrame, columns: list[str], where: str) -> None:
    """DataError naming the first missing column, with a did-you-mean."""
    for name in columns:
        if name not in frame.columns:
            hint = did_you_mean(name, frame.columns) or f"Columns: {', '.join(frame.columns)}."
            raise DataError(f"column {name!r} is not in {where}.", column=name, hint=hint)


def _window(frame: pl.DataFrame, window: WindowConfig) -> pl.DataFrame:
    require_columns(frame, [window.column], "the input of derive's window")
    column = pl.col(window.column)
    dtype = frame.schema[window.column]
    zone = dtype.time_zone if isinstance(dtype, pl.Datetime) else None
    if not isinstance(dtype, pl.Datetime):
        raise DataError(
            f"window column {window.column!r} is {dtype}, not a timestamp.",
            column=window.column,
            hint="Parse it first with 'parse_dates: [" + window.column + "]' on the source step.",
        )
    condition = pl.lit(True)
    for bound, op in ((window.start, "ge"), (window.end, "lt")):
        if bound is not None:
            value = (
                pl.lit(bound).dt.replace_time_zone(zone)
                if bound.tzinfo is None
                else pl.lit(bound).dt.convert_time_zone(zone or "UTC")
            )
            condition = condition & getattr(column, op)(value)
    return frame.filter(condition)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def _missing_column(exc: Exception, frame: pl.DataFrame) -> str | None:
    text = str(exc)
    if isinstance(exc, pl.exceptions.ColumnNotFoundError):
        return text.split('"')[1] if '"' in text else None
    return None


def _hint(exc: Exception, frame: pl.DataFrame) -> str:
    missing = _missing_column(exc, frame)
    if missing:
        return did_you_mean(missing, frame.columns) or f"Columns: {', '.join(frame.columns)}."
    return "Check the expression's SQL syntax and column types."
