"""Numeric transformations: ``log`` (log1p with an offset), ``power`` (Yeo-Johnson) and ``bin`` (learned edges).

The table path and the record path compute with the same float operations in the same order: ``log1p`` and
``exp`` come from the platform's libm on both sides (polars calls it as Python's ``math`` does), a division by
a learned constant is a multiplication by its reciprocal on both sides, and ``x ** y`` is never used (polars
computes ``x ** 2``, ``x ** 0.5`` and ``x ** 3`` by multiplication and square root, not by libm's ``pow``), so
Yeo-Johnson is written with ``exp`` and ``log1p``. Outputs are Float64 (``bin`` with ``labels``: text).
"""

from __future__ import annotations

import bisect
import itertools
import math
import warnings
from typing import Any

import numpy as np
import polars as pl

from loopline.core.errors import ConfigError, DataError
from loopline.prep._scaling import _as_float, _choice, _require_numeric
from loopline.prep._transform import Record, Transform

_LOG_ERRORS = ("null", "nan", "fail")
_BIN_STRATEGIES = ("uniform", "quantile")


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _finite(frame: pl.DataFrame, name: str) -> pl.Series:
    values = frame.get_column(name).cast(pl.Float64)
    return values.filter(values.is_finite())


def _scale(spread: float, center: float = 0.0) -> float:
    """A spread usable as a divisor: 1.0 for a constant (or non-finite) one."""
    return spread if math.isfinite(spread) and spread > 1e-12 * max(1.0, abs(center)) else 1.0


class Log(Transform):
    """``log1p(x + offset)``: the natural log of ``1 + x + offset``, for skewed non-negative amounts and counts.

    Values where ``x + offset <= -1`` are outside the domain and follow ``errors``: ``null`` (default) or
    ``nan``, counted (``"<column>: outside the log domain"``), or ``fail`` (a DataError naming the column and
    value). NaN and nulls pass through; ``inf`` gives ``inf``. The output is Float64.
    """

    type_name = "log"
    stateful = False

    def __init__(self, columns: list[str], offset: float = 0.0, errors: str = "null") -> None:
        self.columns = columns
        self.offset = offset
        self.errors = errors

    def check_params(self) -> None:
        _choice(self.type_name, "errors", self.errors, _LOG_ERRORS)
        if isinstance(self.offset, bool) or not isinstance(self.offset, int | float) or not math.isfinite(self.offset):
            raise ConfigError(
                f"log: offset must be a finite number, got {self.offset!r}.", key="offset", hint="Use offset: 0."
            )

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.require_columns(frame, self.columns)
        offset = float(self.offset)
        shifted = {}
        for name in self.columns:
            _require_numeric(self.type_name, frame, name)
            shifted[name] = pl.col(name).cast(pl.Float64) + offset
        outside = frame.select((v <= -1.0).sum().alias(n) for n, v in shifted.items()).row(0, named=True)
        for name in self.columns:
            if outside[name] and self.errors == "fail":
                row = int(frame.select((shifted[name] <= -1.0).arg_true().first()).item())
                raise self._outside(name, frame.get_column(name)[row], row)
            self.count(f"{name}: outside the log domain", int(outside[name]))
        invalid = pl.lit(None, dtype=pl.Float64) if self.errors == "null" else pl.lit(math.nan)
        return frame.with_columns(
            pl.when(v <= -1.0).then(invalid).otherwise(v.log1p()).alias(n) for n, v in shifted.items()
        )

    def transform_record(self, record: Record) -> Record:
        out = dict(record)
        for name in self.columns:
            value = out.get(name)
            if value is None:
                continue
            shifted = _as_float(self.type_name, name, value) + float(self.offset)
            if shifted <= -1.0:
                if self.errors == "fail":
                    raise self._outside(name, value)
                self.count(f"{name}: outside the log domain")
                out[name] = None if self.errors == "null" else math.nan
            else:
                out[name] = math.log1p(shifted)  # NaN and inf pass through
        return out

    def _outside(self, name: str, value: Any, row: int | None = None) -> DataError:
        where = f"column {name!r}" + (f", row {row}," if row is not None else "")
        return DataError(
            f"log: {where} has {value!r}, outside the domain of log1p(x + {self.offset}).",
            column=name,
            row=row,
            hint=f"Use an offset above {-1.0 - float(value):g}, or set errors: null (or nan) to accept such values.",
        )

    def lineage(self) -> dict[str, list[str]]:
        return {name: [name] for name in self.columns}


class Power(Transform):
    """The Yeo-Johnson power transform, to make skewed columns more Gaussian; any real value is accepted.

    ``lambda`` is fitted per column on the finite training values (``scipy.stats.yeojohnson_normmax``; 1.0, the
    identity, for a column with fewer than two distinct values or too narrow a spread to fit). With
    ``standardize`` (default) the result is then centred and scaled to unit variance on the training rows. NaN
    and nulls pass through; the output is Float64.
    """

    type_name = "power"

    def __init__(self, columns: list[str], standardize: bool = True) -> None:
        self.columns = columns
        self.standardize = standardize

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> Power:
        self.require_columns(frame, self.columns)
        self.lambdas_: dict[str, float] = {}
        self.centers_: dict[str, float] = {}
        self.scales_: dict[str, float] = {}
        for name in self.columns:
            _require_numeric(self.type_name, frame, name)
            values = _finite(frame, name)
            self.lambdas_[name] = _normmax(values)
            transformed = pl.select(_yeo_johnson(pl.lit(values), self.lambdas_[name])).to_series()
            transformed = transformed.filter(transformed.is_finite())
            center, spread = 0.0, 1.0
            if self.standardize and transformed.len():
                center = float(transformed.mean())  # type: ignore[arg-type]
                spread = _scale(float(transformed.std(ddof=0)), center)  # type: ignore[arg-type]
                if not math.isfinite(center):  # values so large that their sum overflows: left as they are
                    center, spread = 0.0, 1.0
            self.centers_[name], self.scales_[name] = center, spread
        return self

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.require_columns(frame, self.columns)
        exprs = []
        for name in self.columns:
            _require_numeric(self.type_name, frame, name)
            value = _yeo_johnson(pl.col(name).cast(pl.Float64), self.lambdas_[name])
            if self.standardize:
                value = (value - self.centers_[name]) * (1.0 / self.scales_[name])
            exprs.append(value.alias(name))
        return frame.with_columns(exprs)

    def transform_record(self, record: Record) -> Record:
        out = dict(record)
        for name in self.columns:
            value = out.get(name)
            if value is None:
                continue
            result = _yeo_johnson_value(_as_float(self.type_name, name, value), self.lambdas_[name])
            if self.standardize:
                result = (result - self.centers_[name]) * (1.0 / self.scales_[name])
            out[name] = result
        return out

    def lineage(self) -> dict[str, list[str]]:
        return {name: [name] for name in self.columns}


def _normmax(values: pl.Series) -> float:
    """The Yeo-Johnson lambda that makes ``values`` most Gaussian (1.0 when there is nothing to fit)."""
    if values.n_unique() < 2:
        return 1.0
    from scipy import stats

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            fitted = float(stats.yeojohnson_normmax(values.to_numpy()))
        except (ValueError, ArithmeticError):  # a spread so small (subnormal) that scipy finds no finite bounds
            return 1.0
    return fitted if math.isfinite(fitted) else 1.0


def _yeo_johnson(x: pl.Expr, lam: float) -> pl.Expr:
    """Yeo-Johnson of ``x`` (Float64): ``((1 + x) ** lam - 1) / lam`` for x >= 0, the mirror image below.

    polars orders NaN above 0, so NaN takes the first branch, where log1p(NaN) keeps it NaN. Lambda 1 is the
    identity, exactly.
    """
    if lam == 1.0:
        return x
    return pl.when(x >= 0.0).then(_branch(x.log1p(), lam)).otherwise(-_branch((-x).log1p(), 2.0 - lam))


def _branch(log1p: pl.Expr, lam: float) -> pl.Expr:
    """``((1 + x) ** lam - 1) / lam`` from ``log1p(x)``, as ``(exp(lam * log1p(x)) - 1) * (1 / lam)``."""
    return log1p if lam == 0.0 else ((lam * log1p).exp() - 1.0) * (1.0 / lam)


def _yeo_johnson_value(x: float, lam: float) -> float:
    """:func:`_yeo_johnson` for one value, with the same operations in the same order."""
    if math.isnan(x) or lam == 1.0:
        return x
    return _branch_value(math.log1p(x), lam) if x >= 0.0 else -_branch_value(math.log1p(-x), 2.0 - lam)


def _branch_value(log1p: float, lam: float) -> float:
    return log1p if lam == 0.0 else (_exp(lam * log1p) - 1.0) * (1.0 / lam)


class Bin(Transform):
    """Discretise numeric columns into ``n_bins`` (5) bins whose edges are learned on the training rows:
    ``strategy: quantile`` (default; equal-count bins) or ``uniform`` (equal-width, between the training min and
    max). The output is the bin index as Float64 (0 to n_bins - 1), or with ``labels`` (one per bin) the label.

    Bins include their lower edge (``[e_k, e_k+1)``); values below the training minimum fall in the first bin and
    above the maximum in the last, and are counted (``"<column>: outside the training range"``). Tied quantiles
    give empty bins rather than fewer: the index keeps its meaning. A constant column is all in bin 0. NaN gives
    NaN (null with labels); nulls stay null.
    """

    type_name = "bin"

    def __init__(
        self, columns: list[str], n_bins: int = 5, strategy: str = "quantile", labels: list[str] | None = None
    ) -> None:
        self.columns = columns
        self.n_bins = n_bins
        self.strategy = strategy
        self.labels = labels

    def check_params(self) -> None:
        _choice(self.type_name, "strategy", self.strategy, _BIN_STRATEGIES)
        if isinstance(self.n_bins, bool) or not isinstance(self.n_bins, int) or self.n_bins < 2:
            raise ConfigError(
                f"bin: n_bins must be an integer >= 2, got {self.n_bins!r}.", key="n_bins", hint="Use n_bins: 5."
            )
        if self.labels is not None and (
            len(self.labels) != self.n_bins or not all(isinstance(x, str) for x in self.labels)
        ):
            raise ConfigError(
                f"bin: labels must be {self.n_bins} texts, one per bin; got {self.labels!r}.",
                key="labels",
                hint=f"Give {self.n_bins} labels, e.g. [low, ..., high], or leave labels out for the bin index.",
            )

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> Bin:
        self.check_params()
        self.require_columns(frame, self.columns)
        self.edges_: dict[str, list[float]] = {}
        for name in self.columns:
            _require_numeric(self.type_name, frame, name)
            self.edges_[name] = self._edges(_finite(frame, name))
        return self

    def _edges(self, values: pl.Series) -> list[float]:
        """Every edge, the training min and max included; [] when there is no finite value."""
        if values.len() == 0:
            return []
        low, high = float(values.min()), float(values.max())  # type: ignore[arg-type]
        if high <= low:
            return [low + 0.0, high + 0.0]
        shares = [i / self.n_bins for i in range(1, self.n_bins)]
        if self.strategy == "uniform":  # (high - low) could overflow; this form cannot
            inner = [low * (1.0 - t) + high * t for t in shares]
        else:
            inner = [float(values.quantile(t, "linear")) for t in shares]  # type: ignore[arg-type]
        # within [low, high] and never decreasing, whatever rounding (or an overflowing interpolation) did
        tidy = [min(max(e, low), high) if not math.isnan(e) else low for e in inner]
        # + 0.0 turns -0.0 into 0.0: which of the two zeros min() or a quantile returns depends on the row order
        return [edge + 0.0 for edge in (low, *itertools.accumulate(tidy, max), high)]

    def _inner(self, name: str) -> list[float]:
        edges = self.edges_[name]
        return edges[1:-1] if len(edges) == self.n_bins + 1 else []

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.require_columns(frame, self.columns)
        exprs, outside = [], []
        for name in self.columns:
            _require_numeric(self.type_name, frame, name)
            value, edges = pl.col(name).cast(pl.Float64), self.edges_[name]
            inner = pl.lit(pl.Series(self._inner(name), dtype=pl.Float64))
            index = inner.search_sorted(value, side="right").cast(pl.Float64)
            index = pl.when(value.is_null()).then(None).when(value.is_nan()).then(math.nan).otherwise(index)
            if self.labels is not None:
                codes = [float(i) for i in range(self.n_bins)]
                index = index.replace_strict(codes, self.labels, default=None, return_dtype=pl.String)
            exprs.append(index.alias(name))
            beyond = (value < edges[0]) | (value > edges[-1]) if edges else pl.lit(False)
            outside.append((value.is_not_nan() & beyond).sum().alias(name))
        counts = frame.select(outside).row(0, named=True)
        for name in self.columns:
            self.count(f"{name}: outside the training range", int(counts[name]))
        return frame.with_columns(exprs)

    def transform_record(self, record: Record) -> Record:
        out = dict(record)
        for name in self.columns:
            value = out.get(name)
            if value is None:
                continue
            number, edges = _as_float(self.type_name, name, value), self.edges_[name]
            if edges and (number < edges[0] or number > edges[-1]):
                self.count(f"{name}: outside the training range")
            if math.isnan(number):
                out[name] = None if self.labels is not None else math.nan
                continue
            index = bisect.bisect_right(self._inner(name), number)
            out[name] = self.labels[index] if self.labels is not None else float(index)
        return out

    def lineage(self) -> dict[str, list[str]]:
        return {name: [name] for name in self.columns}
