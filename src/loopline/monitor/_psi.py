"""Population stability index (PSI) over binned counts.

Bins are built from the reference sample only:

- numeric: edges at the reference quantiles ``1/bins, …, (bins-1)/bins`` with duplicates removed, so the
  outer bins are open-ended (``(-inf, e1]`` and ``(ek, inf)``) and a constant reference gives two bins;
- categorical: one bin per reference category plus one pooled bin for categories never seen in the reference;
- both: nulls (and NaN) count in a bin of their own, so a change in the missing rate is drift too.

Empty bins get proportion :data:`EPSILON` instead of zero, which keeps the logarithm finite.

PSI is the distance every feature of a drift report gets, and a registered drift test of its own
(:class:`PopulationStability`, ``psi``), so it can stand in as a feature's test too.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import polars as pl

from loopline.monitor._drift_tests import DriftTestResult, Kind, SummaryTest
from loopline.monitor._summary import (
    NumericSummary,
    Summary,
    as_categories,
    categorical_summary,
    category_counts,
    is_numeric_dtype,
    numeric_summary,
)

__all__ = [
    "EPSILON",
    "PSI_THRESHOLD",
    "PopulationStability",
    "categorical_counts",
    "category_counts",
    "numeric_counts",
    "psi",
    "quantile_edges",
    "series_psi",
    "sorted_counts",
    "sorted_quantiles",
    "summary_psi",
]

EPSILON = 1e-4
DEFAULT_BINS = 10


PSI_THRESHOLD = 0.1
"""The ``psi`` test's default threshold (``monitor.drift.psi_threshold``): Evidently's. PSI is about eight
times the Jensen-Shannon divergence for small shifts, so 0.1 is close to a Jensen-Shannon distance of 0.1."""


class PopulationStability(SummaryTest):
    """``psi``: the population stability index, a distance (no p-value), for numeric and categorical columns.

    Nulls count: they fill a bin of their own, so a change in the missing rate moves the distance. The bins
    come from the reference (see the module docstring); ``bins`` is the number of numeric quantile bins.
    Its threshold is :data:`PSI_THRESHOLD` (in a report: ``monitor.drift.psi_threshold``, and the report's
    PSI column uses ``monitor.drift.bins``).
    """

    name = "psi"
    kinds: ClassVar[tuple[Kind, ...]] = ("numeric", "categorical")
    min_values: ClassVar[int] = 100

    def __init__(self, bins: int = DEFAULT_BINS) -> None:
        self.bins = bins

    def compare_summaries(self, reference: Summary, current: Summary) -> DriftTestResult:
        value, _ = summary_psi(reference, current, self.bins)
        return DriftTestResult(statistic=value, threshold=PSI_THRESHOLD)


def series_psi(reference: pl.Series, current: pl.Series, bins: int) -> tuple[float, int]:
    """PSI of one column, and how many current values fall in categories the reference never had.

    A numeric dtype (Boolean included) is binned at the reference quantiles, anything else by category.
    """
    if is_numeric_dtype(reference):
        return summary_psi(numeric_summary(reference), numeric_summary(current), bins)
    return summary_psi(categorical_summary(reference), categorical_summary(current), bins)


def summary_psi(reference: Summary, current: Summary, bins: int) -> tuple[float, int]:
    """PSI of two summaries of one kind, and the current values in categories the reference never had."""
    if isinstance(reference, NumericSummary) and isinstance(current, NumericSummary):
        edges = quantile_edges(reference.values, bins)
        ref_bins = sorted_counts(reference.values, edges, reference.n_null)
        return psi(ref_bins, sorted_counts(current.values, edges, current.n_null)), 0
    ref, cur = as_categories(reference), as_categories(current)
    categories = list(ref.counts)
    ref_bins, _ = categorical_counts(categories, ref.counts, ref.n_null)
    cur_bins, unseen = categorical_counts(categories, cur.counts, cur.n_null)
    return psi(ref_bins, cur_bins), unseen


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """PSI = sum((c - r) * ln(c / r)) over bin proportions, empty bins clipped to :data:`EPSILON`."""
    ref = _proportions(reference_counts)
    cur = _proportions(current_counts)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _proportions(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    shares = counts / total if total > 0 else np.zeros(len(counts))
    return np.clip(shares.astype(np.float64), EPSILON, None)


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Distinct finite interior edges at the quantiles of the *sorted* reference ``values``; empty when
    ``values`` is empty."""
    if values.size == 0:
        return np.empty(0)
    edges = sorted_quantiles(values, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return np.unique(edges[np.isfinite(edges)])


def sorted_quantiles(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """``np.quantile(values, levels)`` (linear interpolation) of *sorted* ``values``, read off by index.

    np.quantile partitions its input on every call; summaries are sorted once, so the quantiles are a lookup.
    """
    position = levels * (values.size - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, values.size - 1)
    fraction = position - low
    with np.errstate(invalid="ignore"):  # inf - inf at an infinite edge: np.quantile gives nan there too
        return np.asarray(values[low] + fraction * (values[high] - values[low]), dtype=np.float64)


def numeric_counts(values: np.ndarray, edges: np.ndarray, n_null: int) -> np.ndarray:
    """Counts per bin ``(-inf, e1], (e1, e2], …, (ek, inf)``, then the null count last."""
    index = np.searchsorted(edges, values, side="left")
    counts = np.bincount(index, minlength=len(edges) + 1)
    return np.append(counts, n_null)


def sorted_counts(values: np.ndarray, edges: np.ndarray, n_null: int) -> np.ndarray:
    """:func:`numeric_counts` of *sorted* ``values``, found by bisecting them at the edges (no pass over them)."""
    below = np.searchsorted(values, edges, side="right")
    return np.append(np.diff(np.concatenate([[0], below, [values.size]])), n_null)


def categorical_counts(categories: list[str], counts: dict[str, int], n_null: int) -> tuple[np.ndarray, int]:
    """Counts over ``categories`` + one pooled unseen bin + the null bin; also returns the unseen count."""
    known = np.array([counts.get(name, 0) for name in categories], dtype=np.int64)
    unseen = sum(counts.values()) - int(known.sum())
    return np.concatenate([known, [unseen, n_null]]), unseen
