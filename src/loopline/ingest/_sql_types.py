"""Stable polars column types for database batches, whatever the driver returned.

Rules (the same for every driver, so a column keeps its type from batch to batch and run to run):
integers -> Int64 (UInt64 stays), floats and DECIMAL/NUMERIC -> Float64, timestamps -> Datetime("us", "UTC")
(naive values are taken as UTC), dates -> Date, text -> String. The first batch pins each column's
type; later batches are cast to it, and a value that does not fit is a DataError naming the column.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from loopline.core.errors import DataError

_INTS = (pl.Int8, pl.Int16, pl.Int32, pl.UInt8, pl.UInt16, pl.UInt32)


def stable_dtype(dtype: pl.DataType) -> pl.DataType:
    """The loopline type of a column that a driver returned as ``dtype``."""
    if isinstance(dtype, _INTS):
        return pl.Int64()
    if isinstance(dtype, pl.Float32 | pl.Decimal):
        return pl.Float64()
    if isinstance(dtype, pl.Datetime):
        return pl.Datetime("us", "UTC")
    return dtype


def _normalise_column(column: pl.Series) -> pl.Series:
    dtype = column.dtype
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            column = column.dt.replace_time_zone("UTC")
        elif dtype.time_zone != "UTC":
            column = column.dt.convert_time_zone("UTC")
        return column.dt.cast_time_unit("us")
    target = stable_dtype(dtype)
    return column if target == dtype else column.cast(target)


class Schema:
    """The pinned column types of one read; :meth:`apply` turns a raw Arrow table into stable polars rows."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name
        self.dtypes: dict[str, pl.DataType] = {}

    def apply(self, table: pa.Table) -> pl.DataFrame:
        frame = pl.from_arrow(table, rechunk=False)
        if not isinstance(frame, pl.DataFrame):  # pragma: no cover - a Table always gives a frame
            frame = frame.to_frame()
        columns = [self._pin(_normalise_column(frame.to_series(i))) for i in range(frame.width)]
        return pl.DataFrame(columns)

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.dtypes)

    def _pin(self, column: pl.Series) -> pl.Series:
        pinned = self.dtypes.get(column.name)
        if pinned is None or isinstance(pinned, pl.Null):
            self.dtypes[column.name] = column.dtype
            return column
        if column.dtype == pinned:
            return column
        try:
            return column.cast(pinned, strict=True)
        except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
            raise DataError(
                f"column {column.name!r} of {self.table_name} changed type: expected {pinned}, found {column.dtype}"
                f" ({' '.join(str(exc).split())[:200]}).",
                column=column.name,
                hint="Cast the column to one type in a `query:` (SQLite keeps any value in any column).",
            ) from None
