"""Numeric transforms: imputation with missing indicators, and scaling (standard, min-max, robust)."""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from loopline.core.errors import ConfigError, DataError, did_you_mean
from loopline.prep._transform import Record, Transform

_IMPUTE = ("mean", "median", "most_frequent", "constant")
_SCALE = ("standard", "minmax", "robust")


def _choice(transform: str, key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        hint = did_you_mean(str(value), choices) or f"Use one of: {', '.join(choices)}."
        raise ConfigError(f"{transform}: invalid {key} {value!r}.", key=key, hint=hint)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _require_numeric(transform: str, frame: pl.DataFrame, name: str) -> None:
    """A DataError unless ``name`` holds numbers (booleans count as 0 and 1)."""
    dtype = frame.schema[name]
    if not (dtype.is_numeric() or dtype in (pl.Boolean, pl.Null)):
        raise DataError(
            f"{transform}: column {name!r} is {dtype}; it needs numbers.",
            column=name,
            hint=f"Convert it first, e.g. {{type: cast, columns: {{{name}: float}}}}, or leave it out of columns.",
        )


def _as_float(transform: str, name: str, value: Any) -> float:
    """One record's value as the float the table path computes with (a DataError for anything but a number)."""
    if isinstance(value, int | float):
        return float(value)
    raise DataError(
        f"{transform}: column {name!r} has {type(value).__name__} value {value!r}; it needs numbers.",
        column=name,
        hint=f"Send a number, or convert it first with {{type: cast, columns: {{{name}: float}}}}.",
    )


class Impute(Transform):
    """Fill nulls (and NaN/inf in float columns) with the training mean, median, most frequent value or a constant.

    ``add_indicator`` adds ``<column>_missing`` (true where the value was missing) before filling.
    Fill values are learned on the training rows; a column with no value at all there gets ``fill_value``.
    """

    type_name = "impute"

    def __init__(
        self,
        columns: list[str],
        strategy: str = "median",
        fill_value: Any = None,
        add_indicator: bool = False,
    ) -> None:
        self.columns = columns
        self.strategy = strategy
        self.fill_value = fill_value
        self.add_indicator = add_indicator

    def check_params(self) -> None:
        _choice(self.type_name, "strategy", self.strategy, _IMPUTE)
        if self.strategy == "constant" and self.fill_value is None:
            raise ConfigError(
                "impute: strategy 'constant' needs a fill_value.", key="fill_value", hint="Add fill_value: 0."
            )

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> Impute:
        self.check_params()
        self.require_columns(frame, self.columns)
        self.fill_ = {name: self._fill(frame.get_column(name)) for name in self.columns}
        return self

    def _fill(self, series: pl.Series) -> Any:
        if self.strategy == "constant":
            return self.fill_value
        present = series.drop_nulls()
        if present.dtype.is_float():
            present = present.filter(present.is_finite())
        if present.len() == 0:
            return self.fill_value
        if self.strategy == "most_frequent":
            counts = present.value_counts(sort=True)
            top = counts.filter(pl.col("count") == counts["count"][0]).get_column(series.name).sort()
            return _plain(top[0])
        if not present.dtype.is_numeric():
            raise DataError(
                f"impute: column {series.name!r} is {present.dtype}; {self.strategy} needs numbers.",
                column=str(series.name),
                hint="Use strategy most_frequent or constant for text columns.",
            )
        value = present.mean() if self.strategy == "mean" else present.median()
        return float(value)  # type: ignore[arg-type]

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.require_columns(frame, self.columns)
        exprs: list[pl.Expr] = []
        for name in self.columns:
            column = pl.col(name)
            dtype = frame.schema[name]
            missing = column.is_null() | (~column.is_finite() if dtype.is_float() else pl.lit(False))
            if self.add_indicator:
                exprs.append(missing.alias(f"{name}_missing"))
            fill = self.fill_[name]
            if fill is None:
                exprs.append(column)
            elif dtype.is_float() or (dtype.is_integer() and isinstance(fill, float)):
                exprs.append(pl.when(missing).then(pl.lit(fill)).otherwise(column.cast(pl.Float64)).alias(name))
            else:
                exprs.append(column.fill_null(pl.lit(fill)).alias(name))
        return frame.with_columns(exprs)

    def transform_record(self, record: Record) -> Record:
        out = dict(record)
        for name in self.columns:
            value = out.get(name)
            missing = _missing(value)
            if self.add_indicator:
                out[f"{name}_missing"] = missing
            if missing and self.fill_[name] is not None:
                out[name] = self.fill_[name]
            elif isinstance(self.fill_[name], float) and isinstance(value, int) and not isinstance(value, bool):
                out[name] = float(value)
        return out

    def lineage(self) -> dict[str, list[str]]:
        out = {name: [name] for name in self.columns}
        if self.add_indicator:
            out.update({f"{name}_missing": [name] for name in self.columns})
        return out


class Scale(Transform):
    """Scale numeric columns: ``standard`` ((x - mean) / std), ``minmax`` (to [0, 1]), ``robust``
    ((x - median) / IQR). A constant column keeps a scale of 1. Nulls stay null; the output is Float64."""

    type_name = "scale"

    def __init__(self, columns: list[str], method: str = "standard") -> None:
        self.columns = columns
        self.method = method

    def check_params(self) -> None:
        _choice(self.type_name, "method", self.method, _SCALE)

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> Scale:
        self.check_params()
        self.require_columns(frame, self.columns)
        self.center_: dict[str, float] = {}
        self.scale_: dict[str, float] = {}
        for name in self.columns:
            values = frame.get_column(name).cast(pl.Float64)
            values = values.filter(values.is_finite())
            center, spread = self._statistics(values)
            self.center_[name] = center
            self.scale_[name] = spread if spread > 1e-12 * max(1.0, abs(center)) and math.isfinite(spread) else 1.0
        return self

    def _statistics(self, values: pl.Series) -> tuple[float, float]:
        if values.len() == 0:
            return 0.0, 1.0
        if self.method == "standard":
            return float(values.mean()), float(values.std(ddof=0))  # type: ignore[arg-type]
        if self.method == "minmax":
            low, high = float(values.min()), float(values.max())  # type: ignore[arg-type]
            return low, high - low
        q1, q3 = values.quantile(0.25, "linear"), values.quantile(0.75, "linear")
        return float(values.median()), float(q3 - q1)  # type: ignore[arg-type, operator]

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.require_columns(frame, self.columns)
        return frame.with_columns(  # times the reciprocal: polars divides a one-row column exactly, others not
            ((pl.col(n).cast(pl.Float64) - self.center_[n]) * (1.0 / self.scale_[n])).alias(n) for n in self.columns
        )

    def transform_record(self, record: Record) -> Record:
        out = dict(record)
        for name in self.columns:
            value = out.get(name)
            if value is not None:  # times the reciprocal, as the table path
                out[name] = (float(value) - self.center_[name]) * (1.0 / self.scale_[name])
        return out

    def lineage(self) -> dict[str, list[str]]:
        return {name: [name] for name in self.columns}


def _plain(value: Any) -> Any:
    """A polars scalar as a JSON-able Python value."""
    return value.isoformat() if hasattr(value, "isoformat") else value
