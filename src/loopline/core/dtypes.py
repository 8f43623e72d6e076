"""Column types as text (how schema contracts are stored) and back to polars types."""

from __future__ import annotations

from typing import Any, Literal

_SIMPLE = (
    "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64",
    "Float32", "Float64", "Boolean", "String", "Date", "Time",
)  # fmt: skip


def check_dtype_name(name: str) -> str:
    """``name`` if it names a column type (``Int64``, ``Float64``, ``String``, ``Datetime``...), else ValueError."""
    if name in _SIMPLE or name.startswith(("Datetime", "Duration")):
        return name
    from loopline.core.errors import did_you_mean

    hint = did_you_mean(name, [*_SIMPLE, "Datetime", "Duration"]) or f"Use one of {', '.join(_SIMPLE)}, Datetime."
    raise ValueError(f"unknown column type {name!r}. {hint}")


def polars_dtype(name: str) -> Any:
    """The polars dtype whose ``str()`` is ``name``; unknown names read as String."""
    import polars as pl  # imported on use: the core layer stays light

    if name in _SIMPLE:
        return getattr(pl, name)
    if name.startswith("Datetime"):
        unit: Literal["ns", "us", "ms"] = next((u for u in ("ns", "us", "ms") if f"'{u}'" in name), "us")
        zone = name.split("time_zone=")[-1].rstrip(")").strip("'\"") if "time_zone=" in name else None
        return pl.Datetime(unit, None if zone in (None, "None") else zone)
    if name.startswith("Duration"):
        return pl.Duration("us")
    return pl.String
