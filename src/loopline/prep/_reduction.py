"""Reduction transforms: sampling, PCA / truncated SVD, dropping near-constant and highly correlated columns.

``sample`` is ``train_only``: it reduces the training rows in ``fit_transform`` and is the identity on
validation, test and live data. The others learn on the training rows and apply the same function to tables
and records; ``pca`` and ``svd`` compute each output as the same left-to-right sum in both paths, so they
give identical values.
"""

from __future__ import annotations

import math
import operator
from datetime import UTC, date, datetime, timedelta
from functools import reduce
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from loopline.core.errors import ConfigError, DataError
from loopline.prep._fitting import (
    ColumnDrop,
    Resampler,
    check_columns,
    check_number,
    check_seed,
    feature_columns,
    groups,
    matrix,
    plain,
    take,
)
from loopline.prep._transform import Record, Transform

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# -- sampling --------------------------------------------------------------------------------------


class Sample(Resampler):
    """Keep a random sample of the training rows (training only: validation, test and live rows are untouched).

    Options:

    - ``n`` rows or a ``fraction`` of them (rounded); asking for as many rows as there are keeps them all.
    - ``stratify``: ``true`` keeps each class of the target in proportion, a column name does the same for that
      column's values (largest-remainder rounding, so the total is exact).
    - ``time_column`` with ``start`` and/or ``end`` (ISO 8601, ``start <= t < end``): only rows in that window;
      with neither ``n`` nor ``fraction``, the window is the whole sample. A bound without an offset is read in
      the column's time zone (UTC for a column without one).
    - ``seed``: the same seed and rows give the same sample.

    Kept rows stay in their original order.
    """

    type_name = "sample"

    def __init__(
        self,
        n: int | None = None,
        fraction: float | None = None,
        stratify: bool | str = False,
        time_column: str | None = None,
        start: str | None = None,
        end: str | None = None,
        seed: int = 0,
    ) -> None:
        self.n = n
        self.fraction = fraction
        self.stratify = stratify
        self.time_column = time_column
        self.start = start
        self.end = end
        self.seed = seed

    def check_params(self) -> None:
        name = self.type_name
        check_number(name, "n", self.n, low=1, integer=True, optional=True)
        check_number(name, "fraction", self.fraction, low=0, high=1, above=True, optional=True)
        check_seed(name, self.seed)
        if self.n is not None and self.fraction is not None:
            raise ConfigError("sample: give n or fraction, not both.", key="n", hint="Remove one of them.")
        if not isinstance(self.stratify, bool | str):
            raise ConfigError(
                f"sample: stratify must be true, false or a column name, not {self.stratify!r}.",
                key="stratify",
                hint="Set stratify: true (by the target) or stratify: <column>.",
            )
        windowed = self.start is not None or self.end is not None
        if windowed != (self.time_column is not None):
            raise ConfigError(
                "sample: a time window needs time_column and at least one of start, end.",
                key="time_column",
                hint="Set time_column: <datetime column> with start: 2024-01-01 and/or end: 2024-07-01.",
            )
        if self.n is None and self.fraction is None and not windowed:
            raise ConfigError(
                "sample: nothing to sample by.", key="n", hint="Set n: 10000, fraction: 0.1, or a time window."
            )
        low, high = _instant("start", self.start), _instant("end", self.end)
        if low is not None and high is not None and _epoch_us(low, None) >= _epoch_us(high, None):
            raise ConfigError(
                f"sample: start {self.start!r} is not before end {self.end!r}.", key="start", hint="Swap them."
            )

    def resample(self, frame: pl.DataFrame, target: str | None) -> pl.DataFrame:
        if self.time_column is not None:
            frame = frame.filter(self._window(frame))
            if frame.height == 0:
                raise DataError(
                    f"sample: no training row has {self.time_column!r} in [{self.start}, {self.end}).",
                    column=self.time_column,
                    hint="Check start, end and the column's time zone.",
                )
        size = self.n if self.fraction is None else round(self.fraction * frame.height)
        if size is None or size >= frame.height:
            return frame
        if size == 0:
            raise DataError(
                f"sample: a fraction of {self.fraction} of {frame.height} rows keeps no row.",
                hint="Raise fraction, or use n.",
            )
        rng = np.random.default_rng(self.seed)
        if self.stratify is False:
            return take(frame, np.sort(rng.choice(frame.height, size, replace=False)))
        column = self._strata_column(frame, target)
        strata = groups(frame, column)
        counts = allocate([len(rows) for _, rows in strata], size)
        picked = [rng.choice(rows, k, replace=False) for (_, rows), k in zip(strata, counts, strict=True)]
        return take(frame, np.sort(np.concatenate(picked)))

    def _strata_column(self, frame: pl.DataFrame, target: str | None) -> str:
        column = target if self.stratify is True else self.stratify
        if not isinstance(column, str):
            raise DataError(
                "sample: stratify: true needs the target column.",
                hint="Fit with a target, or set stratify: <column>.",
            )
        self.require_columns(frame, [column])
        return column

    def _window(self, frame: pl.DataFrame) -> pl.Expr:
        name = str(self.time_column)
        self.require_columns(frame, [name])
        dtype = frame.schema[name]
        if isinstance(dtype, pl.Datetime):
            zone, instant = dtype.time_zone, pl.col(name).dt.epoch("us")
        elif dtype == pl.Date:
            zone, instant = None, pl.col(name).cast(pl.Datetime("us")).dt.epoch("us")
        else:
            raise DataError(
                f"sample: time_column {name!r} is {dtype}, not a date or datetime.",
                column=name,
                hint="Parse it into a datetime column first, or pick another time_column.",
            )
        keep = pl.lit(True)
        low, high = _instant("start", self.start), _instant("end", self.end)
        if low is not None:
            keep = keep & (instant >= _epoch_us(low, zone))
        if high is not None:
            keep = keep & (instant < _epoch_us(high, zone))
        return keep


def allocate(sizes: list[int], total: int) -> list[int]:
    """``total`` split in proportion to ``sizes`` by largest remainder (ties to the first), exact in integers."""
    whole = sum(sizes)
    counts = [total * s // whole for s in sizes]
    remainders = [total * s % whole for s in sizes]
    order = sorted(range(len(sizes)), key=lambda i: (-remainders[i], i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _instant(key: str, value: Any) -> datetime | None:
    """A bound as a datetime (ISO 8601 text, or the date / datetime YAML already parsed)."""
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(
            f"sample: {key} {value!r} is not a date or time.",
            key=key,
            hint=f"Use ISO 8601, e.g. {key}: 2024-01-31 or {key}: 2024-01-31T12:00:00+00:00.",
        ) from None


def _epoch_us(moment: datetime, zone: str | None) -> int:
    """Microseconds since 1970 UTC; a moment without an offset is read in ``zone`` (UTC when None)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone) if zone else UTC)
    return (moment - _EPOCH) // _MICROSECOND


# -- projections -----------------------------------------------------------------------------------


class _Projection(Transform):
    """Shared by pca and svd: outputs ``<prefix>_0..<prefix>_{k-1}`` replace the input columns.

    Output j is ``((x_0 - m_0) * c_j0 + (x_1 - m_1) * c_j1) + ...`` summed left to right in both paths
    (``m`` is zero for svd), so tables and records agree to the last bit. A missing input gives a missing
    output (counted as ``missing input``); NaN and infinity follow float arithmetic.
    """

    centered: ClassVar[bool]
    components_: list[list[float]]

    def __init__(self, columns: list[str], n_components: int = 2, prefix: str | None = None) -> None:
        self.columns = columns
        self.n_components = n_components
        self.prefix = prefix

    def check_params(self) -> None:
        check_columns(self.type_name, "columns", self.columns, optional=False)
        check_number(self.type_name, "n_components", self.n_components, low=1, integer=True)
        if self.prefix is not None and (not isinstance(self.prefix, str) or not self.prefix):
            raise ConfigError(
                f"{self.type_name}: prefix must be a non-empty text, not {self.prefix!r}.",
                key="prefix",
                hint=f"Set prefix: {self.type_name}_a (outputs {self.type_name}_a_0, ...).",
            )

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> _Projection:
        self.check_params()
        values = matrix(self, frame, feature_columns(self, frame, self.columns, target))
        limit = min(values.shape)
        if self.n_components > limit:
            raise DataError(
                f"{self.type_name}: n_components {self.n_components} is more than the {len(self.columns)} columns "
                f"or {frame.height} training rows allow.",
                hint=f"Set n_components: {limit} or less.",
            )
        if not np.ptp(values, axis=0).any():
            raise DataError(
                f"{self.type_name}: the columns {self.columns} are constant in the training rows.",
                hint="Drop them first (type: drop_constant).",
            )
        mean, components, ratio = self._learn(values)
        self.mean_ = [float(m) for m in mean]
        self.components_ = [[float(c) for c in row] for row in components]
        self.explained_variance_ratio_ = [plain(r) for r in ratio]
        self.outputs_ = [f"{self.prefix or self.type_name}_{j}" for j in range(len(self.components_))]
        return self

    def _learn(self, values: np.ndarray[Any, Any]) -> tuple[Any, Any, Any]:
        """(mean, components, explained variance ratio)."""
        raise NotImplementedError

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.require_columns(frame, self.columns)
        missing = frame.select(pl.any_horizontal(pl.col(n).is_null() for n in self.columns).sum()).item()
        self.count("missing input", int(missing))
        centered = [pl.col(c).cast(pl.Float64) - m for c, m in zip(self.columns, self.mean_, strict=True)]
        outputs = [  # summed left to right, as the record path
            reduce(operator.add, [x * w for x, w in zip(centered, component, strict=True)]).alias(name)
            for name, component in zip(self.outputs_, self.components_, strict=True)
        ]
        return frame.with_columns(outputs).drop(self.columns)

    def transform_record(self, record: Record) -> Record:
        self.require_columns(record, self.columns)
        out = dict(record)
        values = [out.pop(column) for column in self.columns]
        if any(v is None for v in values):
            self.count("missing input")
            out.update((name, None) for name in self.outputs_)
            return out
        centered = [float(v) - m for v, m in zip(values, self.mean_, strict=True)]
        for name, component in zip(self.outputs_, self.components_, strict=True):
            total = centered[0] * component[0]
            for x, weight in zip(centered[1:], component[1:], strict=True):
                total = total + x * weight
            out[name] = total
        return out

    def lineage(self) -> dict[str, list[str]]:
        return {name: list(self.columns) for name in self.outputs_}


class PCA(_Projection):
    """Principal components of numeric ``columns``, fitted on the training rows with scikit-learn (full SVD).

    ``n_components`` outputs ``pca_0..pca_{k-1}`` (or ``<prefix>_j``) replace the inputs. State: ``mean_``,
    ``components_`` (one row per output) and ``explained_variance_ratio_``. The training rows must have no
    missing value in these columns (impute first). Outputs equal scikit-learn's ``PCA.transform`` to rounding.
    """

    type_name = "pca"

    def _learn(self, values: np.ndarray[Any, Any]) -> tuple[Any, Any, Any]:
        from sklearn.decomposition import PCA as SkPCA

        model = SkPCA(n_components=self.n_components, svd_solver="full").fit(values)
        return model.mean_, model.components_, model.explained_variance_ratio_


class SVD(_Projection):
    """Truncated SVD of numeric ``columns`` (no centring: suits sparse or count-like data), with scikit-learn.

    Like ``pca`` (outputs ``svd_0..``, the inputs replaced) but without subtracting the mean, so ``mean_`` is
    all zeros. ``seed`` fixes scikit-learn's randomized solver.
    """

    type_name = "svd"

    def __init__(self, columns: list[str], n_components: int = 2, prefix: str | None = None, seed: int = 0) -> None:
        super().__init__(columns, n_components, prefix)
        self.seed = seed

    def check_params(self) -> None:
        super().check_params()
        check_seed(self.type_name, self.seed)

    def _learn(self, values: np.ndarray[Any, Any]) -> tuple[Any, Any, Any]:
        from sklearn.decomposition import TruncatedSVD

        model = TruncatedSVD(n_components=self.n_components, random_state=self.seed).fit(values)
        return np.zeros(values.shape[1]), model.components_, model.explained_variance_ratio_


# -- dropping columns ------------------------------------------------------------------------------


class DropConstant(ColumnDrop):
    """Drop near-constant columns: those whose most frequent value (missing counts as a value) fills at least
    ``threshold`` of the training rows (1.0, the default: only constant columns).

    ``columns`` defaults to every column but the target. State: ``dropped_`` and ``shares_`` (the top share of
    each column checked).
    """

    type_name = "drop_constant"

    def __init__(self, columns: list[str] | None = None, threshold: float = 1.0) -> None:
        self.columns = columns
        self.threshold = threshold

    def check_params(self) -> None:
        check_columns(self.type_name, "columns", self.columns)
        check_number(self.type_name, "threshold", self.threshold, low=0, high=1, above=True)

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> DropConstant:
        self.check_params()
        names = [n for n in frame.columns if n != target] if self.columns is None else self.columns
        self.require_columns(frame, names)
        self.shares_: dict[str, float] = {}
        for name in names:
            top = frame.get_column(name).value_counts(sort=True).get_column("count")[0]
            self.shares_[name] = float(top) / frame.height
        self.dropped_ = [name for name in names if self.shares_[name] >= self.threshold]
        return self


class DropCorrelated(ColumnDrop):
    """Drop numeric columns strongly correlated with an earlier one: going through ``columns`` in order, a
    column whose absolute Pearson correlation with an already kept column exceeds ``threshold`` is dropped.

    Correlations are computed on the training rows where both columns have a finite value; a constant column
    correlates with nothing. ``columns`` defaults to every numeric column but the target. State: ``dropped_``
    and ``pairs_`` (``[dropped, kept, correlation]`` for each drop).
    """

    type_name = "drop_correlated"

    def __init__(self, columns: list[str] | None = None, threshold: float = 0.95) -> None:
        self.columns = columns
        self.threshold = threshold

    def check_params(self) -> None:
        check_columns(self.type_name, "columns", self.columns)
        check_number(self.type_name, "threshold", self.threshold, low=0, high=1)

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> DropCorrelated:
        self.check_params()
        names = feature_columns(self, frame, self.columns, target)
        values = frame.select(pl.col(n).cast(pl.Float64) for n in names).to_numpy()
        kept: list[int] = []
        self.dropped_ = []
        self.pairs_: list[list[Any]] = []
        for j, name in enumerate(names):
            for i in kept:
                r = _pearson(values[:, i], values[:, j])
                if abs(r) > self.threshold:
                    self.dropped_.append(name)
                    self.pairs_.append([name, names[i], r])
                    break
            else:
                kept.append(j)
        return self


def _pearson(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    """Pearson correlation over the rows where both are finite; 0.0 when either is constant there."""
    both = np.isfinite(a) & np.isfinite(b)
    if not both.any():
        return 0.0
    x, y = a[both] - a[both].mean(), b[both] - b[both].mean()
    scale = math.sqrt(float(x @ x) * float(y @ y))
    return min(1.0, max(-1.0, float(x @ y) / scale)) if scale > 0 else 0.0
