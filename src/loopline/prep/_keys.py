"""What the transforms that keep rows in their state share: key text, value kinds, JSON-safe floats.

A **key** (``by`` columns of lags, ``on`` columns of a lookup) is compared as text, built the same way from a
table and from a record: each value as text (``_encoding._text``: a boolean is ``"true"``/``"false"``, a null is
its own value), joined by ``\\x1f``. Key columns are text, integers, booleans or dates, whose text polars and
Python write alike; floats are refused (``1e-07`` vs ``1e-7``).

A **value** kept in a state is JSON: floats that are NaN or infinite are written ``"nan"``, ``"inf"``,
``"-inf"`` and read back as floats, so a state never holds a bare NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import polars as pl

from loopline.core.errors import DataError
from loopline.prep._encoding import MISSING, _text

SEPARATOR = "\x1f"
#: value kinds a state can keep, and their polars types
KINDS: dict[str, pl.DataType] = {"int": pl.Int64(), "float": pl.Float64(), "bool": pl.Boolean(), "str": pl.String()}
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def check_keys(transform: str, frame: pl.DataFrame, columns: Sequence[str]) -> None:
    """DataError for a key column whose values do not compare as text alike in both paths."""
    for name in columns:
        dtype = frame.schema[name]
        if not (
            dtype in (pl.String, pl.Boolean, pl.Date, pl.Null, pl.Categorical)
            or dtype.is_integer()
            or isinstance(dtype, pl.Enum)
        ):
            raise DataError(
                f"{transform}: key column {name!r} is {dtype}; keys must be text, integers, booleans or dates.",
                column=name,
                hint=f"Cast {name!r} to an integer or a string first.",
            )


def key_expr(frame: pl.DataFrame, columns: Sequence[str], *, nulls: bool = True) -> pl.Expr:
    """The key of each row as text; with ``nulls=False`` a key with a null part is null (it matches nothing)."""
    if not columns:
        return pl.lit("", dtype=pl.String)
    parts = []
    for name in columns:
        part = pl.col(name) if frame.schema[name] == pl.String else pl.col(name).cast(pl.String)
        parts.append(part.fill_null(MISSING) if nulls else part)
    return pl.concat_str(parts, separator=SEPARATOR, ignore_nulls=False)


def key_value(record: dict[str, Any], columns: Sequence[str], *, nulls: bool = True) -> str | None:
    """The key of one record, as :func:`key_expr` writes it."""
    values = [record.get(name) for name in columns]
    if not nulls and any(v is None for v in values):
        return None
    return SEPARATOR.join(_text(v) for v in values)


def value_kind(transform: str, frame: pl.DataFrame, name: str, *, numeric: bool = False) -> str:
    """The kind of a value column (``int``, ``float``, ``bool``, ``str``), or a DataError naming the fix."""
    dtype = frame.schema[name]
    if dtype.is_integer():
        return "int"
    if dtype.is_float() or dtype == pl.Null:
        return "float"
    if not numeric and dtype == pl.Boolean:
        return "bool"
    if not numeric and (dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum)):
        return "str"
    allowed = "numbers" if numeric else "numbers, booleans or text"
    raise DataError(
        f"{transform}: column {name!r} is {dtype}; it can hold {allowed}.",
        column=name,
        hint=f"Cast {name!r} first, or leave it out.",
    )


def encode(value: Any) -> Any:
    """A value as JSON (non-finite floats as text)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def decode(value: Any, kind: str) -> Any:
    """The value :func:`encode` wrote, for a column of ``kind``."""
    if value is None:
        return None
    if kind == "float":
        return _NON_FINITE[value] if isinstance(value, str) else float(value)
    return value
