"""What a drift test sees of one column: sorted non-null values (numeric) or category counts (categorical).

A summary is cheap to compare and can be stored (see :class:`~loopline.monitor.ReferenceProfile`): the
built-in drift tests compare summaries, so a report against a stored profile and one against the training
frame give the same numbers. Nulls (and NaN) are counted, never compared as values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from loopline.core.errors import DataError

MISSING, PRESENT = "missing", "present"


@dataclass(frozen=True, eq=False)
class NumericSummary:
    """``values``: the sorted non-null values (or a sorted sample of them); ``count``: how many non-null
    values the column had; ``n_null``: its nulls (NaN included)."""

    values: np.ndarray
    count: int
    n_null: int

    def to_series(self, name: str) -> pl.Series:
        """The values (sorted) followed by the nulls, as a Float64 column."""
        return pl.Series(name, [*self.values.tolist(), *([None] * self.n_null)], dtype=pl.Float64)

    def unique_values(self) -> np.ndarray:
        """The distinct values, sorted."""
        if self.values.size == 0:
            return self.values
        keep = np.concatenate([[True], self.values[1:] != self.values[:-1]])
        return np.asarray(self.values[keep], dtype=np.float64)

    def as_categories(self) -> CategoricalSummary:
        """Each distinct value as a category (its text, as polars writes a Float64)."""
        unique, counts = np.unique(self.values, return_counts=True)
        names = pl.Series(unique, dtype=pl.Float64).cast(pl.String).to_list()
        return CategoricalSummary(dict(zip(names, counts.tolist(), strict=True)), self.n_null)


@dataclass(frozen=True)
class CategoricalSummary:
    """``counts``: category (as text) -> rows, sorted by category; ``n_null``: the nulls."""

    counts: dict[str, int]
    n_null: int

    @property
    def count(self) -> int:
        """Non-null rows."""
        return sum(self.counts.values())

    def to_series(self, name: str) -> pl.Series:
        """One row per counted value, then the nulls, as a String column."""
        values = [name_ for name_, count in self.counts.items() for _ in range(count)]
        return pl.Series(name, [*values, *([None] * self.n_null)], dtype=pl.String)


Summary = NumericSummary | CategoricalSummary


def is_numeric_dtype(series: pl.Series) -> bool:
    """Numbers, booleans and the all-null dtype are numeric; anything else is categorical."""
    return series.dtype.is_numeric() or series.dtype in (pl.Boolean, pl.Null)


def as_numeric(series: pl.Series) -> pl.Series:
    """A numeric column as Float64 with NaN as null; DataError naming the column when it is not numeric."""
    if not is_numeric_dtype(series):
        raise DataError(
            f"numeric feature {series.name!r} has dtype {series.dtype}.",
            column=series.name,
            hint="List it under categorical, or cast it to a number first.",
        )
    return series.cast(pl.Float64).fill_nan(None)


def as_categorical(series: pl.Series) -> pl.Series:
    """A categorical column as String (nulls stay null)."""
    return series.cast(pl.String)


def category_counts(values: pl.Series) -> dict[str, int]:
    """Non-null category -> count, categories as strings in sorted order (so sums are reproducible)."""
    counted = values.drop_nulls().cast(pl.String).value_counts().sort(by=pl.first())
    return dict(zip(counted[:, 0].to_list(), counted[:, 1].to_list(), strict=True))


def numeric_summary(series: pl.Series, *, sample: int | None = None, seed: int = 0) -> NumericSummary:
    """Sorted non-null values of a numeric column; at most ``sample`` of them (a seeded uniform sample)."""
    column = as_numeric(series)
    values = column.drop_nulls()
    count = values.len()
    if sample is not None and count > sample:
        values = values.sample(sample, seed=seed)
    return NumericSummary(values.sort().to_numpy(), count, column.null_count())


def numeric_summaries(frame: pl.DataFrame, names: list[str]) -> dict[str, NumericSummary]:
    """:func:`numeric_summary` of several columns, sorted in one (parallel) polars query."""
    for name in names:
        if not is_numeric_dtype(frame.get_column(name)):
            as_numeric(frame.get_column(name))  # raises the DataError naming the column
    ordered = frame.select([pl.col(name).cast(pl.Float64).fill_nan(None).sort(nulls_last=True) for name in names])
    found = {}
    for name in names:
        column = ordered.get_column(name)
        n_null = column.null_count()
        values = column.head(column.len() - n_null).to_numpy()
        found[name] = NumericSummary(values, values.size, n_null)
    return found


def categorical_summary(series: pl.Series) -> CategoricalSummary:
    """Category counts of a column (any dtype, compared as text)."""
    column = as_categorical(series)
    return CategoricalSummary(category_counts(column), column.null_count())


def summarise(series: pl.Series) -> Summary:
    """A numeric dtype gives a :class:`NumericSummary`, anything else a :class:`CategoricalSummary`."""
    return numeric_summary(series) if is_numeric_dtype(series) else categorical_summary(series)


def as_categories(summary: Summary) -> CategoricalSummary:
    """The summary as category counts (a numeric one: each distinct value is a category)."""
    return summary if isinstance(summary, CategoricalSummary) else summary.as_categories()


def missing_summary(summary: Summary) -> CategoricalSummary:
    """Missing vs present rows of a column, as a two-category summary."""
    counts = {MISSING: summary.n_null, PRESENT: summary.count}
    return CategoricalSummary({name: count for name, count in counts.items() if count}, 0)
