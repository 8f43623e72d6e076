"""Table steps: join sources, derive columns with SQL expressions, filter, keep a time window."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import polars as pl
from pydantic import Field

from loopline.core.errors import DataError, did_you_mean
from loopline.core.step import STEP_TYPES, StepConfig, StepContext, StepType
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


class DeriveConfig(StepConfig):
    """Parse timestamps, add columns from SQL expressions, then filter rows, keep a time window, drop columns."""

    parse_dates: Annotated[list[str], Field(description="ISO-8601 text columns to parse as UTC timestamps.")] = []
    columns: Annotated[dict[str, str], Field(description="New column -> SQL expression, e.g. 'arr_delay > 15'.")] = {}
    filter: Annotated[str | None, Field(description="SQL condition rows must meet.")] = None
    window: WindowConfig | None = None
    drop: list[str] = []


class Join(StepType):
    """``type: join`` — left or inner join of two tables."""

    type_name = "join"
    Config = JoinConfig
    min_inputs = max_inputs = 2

    def run(self, config: Any, inputs: list[Any], ctx: StepContext) -> dict[str, Any]:
        left, right = inputs
        for side, frame in (("first", left), ("second", right)):
            require_columns(frame, config.on, f"the {side} input of the join")
        if config.columns:
            require_columns(right, config.columns, "the second input of the join")
            right = right.select([*config.on, *[c for c in config.columns if c not in config.on]])
        right = right.unique(subset=config.on, keep="first", maintain_order=True)
        left, right = _align_keys(left, right, config.on)
        return {"out": left.join(right, on=config.on, how=config.how, suffix="_right")}


class Derive(StepType):
    """``type: derive`` — stateless row-wise feature engineering (safe to run before the split)."""

    type_name = "derive"
    Config = DeriveConfig
    min_inputs = max_inputs = 1

    def run(self, config: Any, inputs: list[Any], ctx: StepContext) -> dict[str, Any]:
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


STEP_TYPES.register(Join.type_name, Join())
STEP_TYPES.register(Derive.type_name, Derive())
