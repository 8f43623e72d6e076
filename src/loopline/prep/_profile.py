"""A dataset profile: what each column of a table holds, as plain JSON, computed by polars in two passes.

    profile = profile_table(frame)
    profile["rows"], profile["n_columns"]             # the table's shape
    profile["columns"][0]["missing_share"]            # columns in the table's order, one dict each

Every column has ``name``, ``dtype``, ``kind``, ``count`` (values present), ``nulls``, ``nan`` (floats),
``missing_share`` (nulls and NaN over rows), ``distinct`` and ``distinct_exact``: distinct present values,
counted exactly while a HyperLogLog estimate says there are at most ``distinct_cap`` of them and estimated
above (``distinct_exact`` false). Then, by ``kind``:

- ``numeric`` (integers, floats, decimals): ``infinite``, ``min``, ``max``, ``mean``, ``std``, ``quantiles``
  (``p01`` ... ``p99``), all over the finite values, and ``histogram`` ``{"type": "bins", "edges", "counts"}``
  with fixed-width bins from min to max (integers get one bin per value when they span fewer values);
- ``datetime`` (Date, Datetime, Time): ``min``, ``max`` as ISO-8601 text and a ``bins`` histogram whose edges
  are ISO-8601 text too;
- ``string``, ``categorical`` (Categorical, Enum) and ``boolean``: ``top``, the ``top_k`` most frequent values
  with their counts (ties by value), and ``histogram`` ``{"type": "top", "labels", "counts", "other"}``
  (``other``: present values outside the top); strings also have ``length`` (min, max, mean characters);
- ``other`` (lists, structs, binary, durations, all-null ``Null`` columns): the common keys only.

Pass one is every aggregate that needs nothing else (counts, moments, quantiles, distinct estimates); pass
two uses its results (exact distinct counts under the cap, histogram edges, top values). Each pass is one
``select`` that polars runs over the columns in parallel. The result holds no NaN or infinity, so it is
valid JSON as it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any

import polars as pl

PROFILE_FORMAT = 1
"""Bumped when the profile's keys change, so that stored profiles of an older format are recomputed."""
TOP_K = 10
HISTOGRAM_BINS = 20
DISTINCT_CAP = 100_000
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)

_TEMPORAL = (pl.Date, pl.Datetime, pl.Time)
_CATEGORICAL = (pl.Categorical, pl.Enum)


def profile_table(
    frame: pl.DataFrame, *, top_k: int = TOP_K, bins: int = HISTOGRAM_BINS, distinct_cap: int = DISTINCT_CAP
) -> dict[str, Any]:
    """The profile of ``frame`` (see the module docstring): plain JSON, columns in the frame's order."""
    columns = [_Column(index, name, dtype) for index, (name, dtype) in enumerate(frame.schema.items())]
    first = _one_row(frame, [expr for column in columns for expr in column.first_pass()])
    second = _one_row(
        frame, [expr for column in columns for expr in column.second_pass(first, bins, distinct_cap, top_k)]
    )
    return {
        "format": PROFILE_FORMAT,
        "rows": frame.height,
        "n_columns": frame.width,
        "settings": {"top_k": top_k, "bins": bins, "distinct_cap": distinct_cap, "quantiles": list(QUANTILES)},
        "columns": [column.profile(first, second, frame.height) for column in columns],
    }


def column_kind(dtype: pl.DataType) -> str:
    """``numeric``, ``boolean``, ``string``, ``categorical``, ``datetime`` or ``other``."""
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_numeric():
        return "numeric"
    if dtype == pl.String:
        return "string"
    if isinstance(dtype, _CATEGORICAL):
        return "categorical"
    if isinstance(dtype, _TEMPORAL):
        return "datetime"
    return "other"


def _one_row(frame: pl.DataFrame, exprs: list[pl.Expr]) -> dict[str, Any]:
    return frame.select(exprs).row(0, named=True) if exprs else {}


class _Column:
    """The expressions of one column's profile and the assembly of their results.

    Results are read back under ``"<index>/<statistic>"`` aliases, so any column name is safe.
    """

    def __init__(self, index: int, name: str, dtype: pl.DataType) -> None:
        self.index = index
        self.name = name
        self.dtype = dtype
        self.kind = column_kind(dtype)
        self.is_float = dtype.is_float()
        self.edges_: list[float] = []

    def key(self, statistic: str) -> str:
        return f"{self.index}/{statistic}"

    # -- expressions ---------------------------------------------------------------------------------
    def column(self) -> pl.Expr:
        return pl.col(self.name)

    def present(self) -> pl.Expr:
        """Values that are neither null nor NaN (categoricals as text: they sort and print as such)."""
        col = self.column()
        if self.is_float:
            return col.filter(col.is_not_nan()).drop_nulls()
        if self.kind == "categorical":
            return col.cast(pl.String).drop_nulls()
        return col.drop_nulls()

    def finite(self) -> pl.Expr:
        """Numeric values the statistics are taken over (decimals as floats); temporals as their integers."""
        col = self.column()
        if self.kind == "datetime":
            return col.drop_nulls().to_physical().cast(pl.Float64)
        if self.is_float:
            return col.filter(col.is_finite())
        return col.cast(pl.Float64) if isinstance(self.dtype, pl.Decimal) else col.drop_nulls()

    def first_pass(self) -> list[pl.Expr]:
        col, key = self.column(), self.key
        exprs = [col.null_count().alias(key("nulls"))]
        if self.is_float:
            exprs += [col.is_nan().sum().alias(key("nan")), col.is_infinite().sum().alias(key("infinite"))]
        if self.kind != "other":
            exprs.append(self.present().approx_n_unique().alias(key("approx_distinct")))
        if self.kind == "numeric":
            exprs += self._moments()
        elif self.kind == "datetime":
            exprs += [col.min().alias(key("min")), col.max().alias(key("max"))]
            exprs += [self.finite().min().alias(key("low")), self.finite().max().alias(key("high"))]
        elif self.kind == "string":
            length = col.str.len_chars()
            exprs += [length.min().alias(key("len_min")), length.max().alias(key("len_max"))]
            exprs.append(length.mean().alias(key("len_mean")))
        return exprs

    def _moments(self) -> list[pl.Expr]:
        values, key = self.finite(), self.key
        exprs = [
            values.min().alias(key("min")),
            values.max().alias(key("max")),
            values.mean().alias(key("mean")),
            values.std().alias(key("std")),
        ]
        return exprs + [values.quantile(q).alias(key(_quantile_name(q))) for q in QUANTILES]

    def second_pass(self, first: dict[str, Any], bins: int, distinct_cap: int, top_k: int) -> list[pl.Expr]:
        exprs = []
        if self.kind != "other" and first[self.key("approx_distinct")] <= distinct_cap:
            exprs.append(self.present().n_unique().alias(self.key("distinct")))
        if self.kind in ("numeric", "datetime"):
            self.edges_ = self._edges(first, bins)
            if self.edges_ and self.edges_[0] != self.edges_[-1]:
                exprs.append(self._binned().value_counts(name="count").implode().alias(self.key("histogram")))
        elif self.kind != "other":
            exprs.append(self._top_values(top_k).alias(self.key("top")))
        return exprs

    def _top_values(self, top_k: int) -> pl.Expr:
        """The ``top_k`` most frequent present values with their counts, ties broken by value."""
        counted = self.present().alias("value").value_counts(name="count")
        ranked = counted.sort_by(counted.struct.field("count"), counted.struct.field("value"), descending=[True, False])
        return ranked.head(top_k).implode()

    def _edges(self, first: dict[str, Any], bins: int) -> list[float]:
        """Bin edges from the finite min to max (empty: nothing to bin; ``[v, v]``: one value), increasing.

        Integers and dates spanning at most ``bins`` values get one bin per value, ``[v, v + 1)``.
        """
        low, high = (first[self.key(k)] for k in (("min", "max") if self.kind == "numeric" else ("low", "high")))
        if low is None or high is None:
            return []
        low, high = float(low), float(high)
        if low == high:
            return [low, high]
        if (self.dtype.is_integer() or self.dtype == pl.Date) and high - low < bins:
            return [low + i for i in range(int(high - low) + 2)]
        edges = [low + (high - low) * i / bins for i in range(bins)] + [high]
        return sorted(set(edges))  # a spread of a few ulps rounds some edges together: fewer, distinct bins

    def _binned(self) -> pl.Expr:
        """Each finite value's bin number: ``[e_i, e_i+1)``, the last bin closed (numpy's convention).

        Found by searching the edges, not by dividing by the bin width: a subnormal width has no finite
        reciprocal, and polars divides by a scalar as a multiplication by its reciprocal (0 * inf is NaN).
        """
        edges = pl.lit(pl.Series(self.edges_, dtype=pl.Float64))
        bins = len(self.edges_) - 1
        found = edges.search_sorted(self.finite().cast(pl.Float64), side="right").cast(pl.Int64) - 1
        return found.clip(0, bins - 1).alias("bin")

    # -- assembly ------------------------------------------------------------------------------------
    def profile(self, first: dict[str, Any], second: dict[str, Any], rows: int) -> dict[str, Any]:
        nulls = int(first[self.key("nulls")])
        nan = int(first.get(self.key("nan")) or 0)
        present = rows - nulls - nan
        out: dict[str, Any] = {
            "name": self.name,
            "dtype": str(self.dtype),
            "kind": self.kind,
            "count": present,
            "nulls": nulls,
            "nan": nan,
            "missing_share": (nulls + nan) / rows if rows else 0.0,
            **self._distinct(first, second, present),
        }
        if self.kind == "numeric":
            out.update(self._numeric(first, second, out["count"]))
        elif self.kind == "datetime":
            out.update(self._datetime(first, second, out["count"]))
        elif self.kind != "other":
            out.update(self._top(second, out["count"]))
            if self.kind == "string":
                out["length"] = {stat: _number(first[self.key(f"len_{stat}")]) for stat in ("min", "max", "mean")}
        return out

    def _distinct(self, first: dict[str, Any], second: dict[str, Any], present: int) -> dict[str, Any]:
        if self.kind == "other":
            return {"distinct": None, "distinct_exact": None}
        exact = second.get(self.key("distinct"))
        if exact is not None:
            return {"distinct": int(exact), "distinct_exact": True}
        # HyperLogLog is off by a percent or two either way: never more distinct values than values
        return {"distinct": min(int(first[self.key("approx_distinct")]), present), "distinct_exact": False}

    def _numeric(self, first: dict[str, Any], second: dict[str, Any], out_of: int) -> dict[str, Any]:
        stats = {stat: _number(first[self.key(stat)]) for stat in ("min", "max", "mean", "std")}
        quantiles = {_quantile_name(q): _number(first[self.key(_quantile_name(q))]) for q in QUANTILES}
        infinite = int(first.get(self.key("infinite")) or 0)
        histogram = self._bins(second, out_of=out_of - infinite, label=_number)
        return {"infinite": infinite, **stats, "quantiles": quantiles, "histogram": histogram}

    def _datetime(self, first: dict[str, Any], second: dict[str, Any], out_of: int) -> dict[str, Any]:
        def as_text(physical: float) -> str | None:
            return _iso(pl.Series([round(physical)], dtype=pl.Int64).cast(self.dtype).item())

        low, high = _iso(first[self.key("min")]), _iso(first[self.key("max")])
        return {"min": low, "max": high, "histogram": self._bins(second, out_of=out_of, label=as_text)}

    def _bins(self, second: dict[str, Any], *, out_of: int, label: Callable[[float], Any]) -> dict[str, Any]:
        """Fixed bins; when every value is the same, one bin (edges min == max) holds all ``out_of``."""
        counted = second.get(self.key("histogram"))
        if counted is None:
            counts = [out_of] if self.edges_ else []
        else:
            counts = [0] * (len(self.edges_) - 1)
            for item in counted:
                counts[item["bin"]] = int(item["count"])
        return {"type": "bins", "edges": [label(edge) for edge in self.edges_], "counts": counts}

    def _top(self, second: dict[str, Any], present: int) -> dict[str, Any]:
        ranked = second.get(self.key("top")) or []
        top = [{"value": _scalar(item["value"]), "count": int(item["count"])} for item in ranked]
        counts = [item["count"] for item in top]
        histogram = {"type": "top", "labels": [str(i["value"]) for i in top], "counts": counts}
        return {"top": top, "histogram": {**histogram, "other": present - sum(counts)}}


def _quantile_name(q: float) -> str:
    return f"p{round(q * 100):02d}"


def _number(value: Any) -> Any:
    """``value`` as a JSON number (None for missing, NaN or infinite)."""
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime | date | time) else None


def _scalar(value: Any) -> Any:
    return value if isinstance(value, str | bool | int | float) or value is None else str(value)
