"""Two-sample tests with a p-value: Kolmogorov-Smirnov (``ks``), chi-square on the contingency table
(``chi2``) and the Z-test for two proportions (``ztest``).

All three compare the non-null values only (NaN counts as null); a change in the missing rate is the report's
missing-share check. A test that cannot give a sound p-value (a side without values, expected counts too
small) is skipped: statistic 0.0, p-value 1.0 and a reason, which the report shows as "not enough data".
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy import stats

from loopline.monitor._drift_tests import DriftTestResult, Kind, SummaryTest, skipped_result
from loopline.monitor._summary import CategoricalSummary, NumericSummary, Summary, as_categories

MIN_EXPECTED = 5.0
"""Every cell of a chi-square or Z-test table is expected at least this often (the textbook rule)."""

MIN_VALUES = 20
"""Non-null values each side needs before a p-value test is asked (below it: "not enough data")."""

_EXACT_KS_MAX_PRODUCT = 10_000


class KolmogorovSmirnov(SummaryTest):
    """``ks``: the two-sample Kolmogorov-Smirnov test on the non-null values of a numeric column."""

    name = "ks"
    kinds: ClassVar[tuple[Kind, ...]] = ("numeric",)
    min_values: ClassVar[int] = MIN_VALUES

    def compare_summaries(self, reference: Summary, current: Summary) -> DriftTestResult:
        if not (isinstance(reference, NumericSummary) and isinstance(current, NumericSummary)):
            raise TypeError("ks compares numeric summaries")
        return ks_test(reference.values, current.values)


class ChiSquare(SummaryTest):
    """``chi2``: Pearson's chi-square test of independence on the 2 x k table of category counts
    (reference row, current row), :func:`scipy.stats.chi2_contingency`. See :func:`chi2_test` for pooling."""

    name = "chi2"
    kinds: ClassVar[tuple[Kind, ...]] = ("categorical",)
    min_values: ClassVar[int] = MIN_VALUES

    def compare_summaries(self, reference: Summary, current: Summary) -> DriftTestResult:
        return chi2_test(as_categories(reference).counts, as_categories(current).counts)


class ZTest(SummaryTest):
    """``ztest``: the two-sample Z-test for proportions, meant for binary columns.

    Statistic: z, the current share of the first category (in sorted order) minus its reference share, over
    the pooled standard error; two-sided p-value. On more categories, see :func:`z_test`.
    """

    name = "ztest"
    kinds: ClassVar[tuple[Kind, ...]] = ("categorical",)
    min_values: ClassVar[int] = MIN_VALUES

    def compare_summaries(self, reference: Summary, current: Summary) -> DriftTestResult:
        return z_test(as_categories(reference), as_categories(current))


def ks_test(reference: np.ndarray, current: np.ndarray) -> DriftTestResult:
    """Two-sample KS on non-null values; exact for small samples, asymptotic otherwise (never warns)."""
    if reference.size == 0 or current.size == 0:
        side = "reference" if reference.size == 0 else "current"
        return skipped_result(f"KS skipped: the {side} sample has no non-null values")
    method = "exact" if reference.size * current.size <= _EXACT_KS_MAX_PRODUCT else "asymp"
    result = stats.ks_2samp(reference, current, method=method)
    return DriftTestResult(statistic=float(result.statistic), p_value=float(result.pvalue))


def chi2_test(reference: dict[str, int], current: dict[str, int]) -> DriftTestResult:
    """Chi-square test of independence of the 2 x k table (reference counts, current counts).

    Both samples are random, so neither side's proportions are taken as exact. Categories whose smallest
    expected cell count is below :data:`MIN_EXPECTED` are pooled into one bin (unseen categories included);
    when that bin is still below it, the next rarest categories join it. Which categories pool depends only on
    the category totals and the two sample sizes, so the test keeps its size. Fewer than two bins left:
    skipped. One category on both sides: no drift (statistic 0, p-value 1).
    """
    n_ref, n_cur = sum(reference.values()), sum(current.values())
    if n_ref == 0 or n_cur == 0:
        side = "reference" if n_ref == 0 else "current"
        return skipped_result(f"chi-square skipped: the {side} sample has no non-null values")
    names = sorted(set(reference) | set(current))
    if len(names) == 1:
        return DriftTestResult(statistic=0.0, p_value=1.0)
    table = np.array([[side.get(name, 0) for name in names] for side in (reference, current)], dtype=np.float64)
    pooled = _pooled(table)
    if pooled.shape[1] < 2:
        return skipped_result(
            f"chi-square skipped: fewer than two categories expected {MIN_EXPECTED:g} times in each sample"
        )
    statistic, p_value, _, _ = stats.chi2_contingency(pooled, correction=False)
    return DriftTestResult(statistic=float(statistic), p_value=float(p_value))


def _pooled(table: np.ndarray) -> np.ndarray:
    """The table with its rarest categories pooled until each bin's smallest expected count is >= 5."""
    totals = table.sum(axis=0)
    expected = totals * table.sum(axis=1).min() / totals.sum()
    order = np.argsort(expected, kind="stable")
    n_rare = int(np.count_nonzero(expected < MIN_EXPECTED))
    if n_rare == 0:
        return table
    reached = np.nonzero(np.cumsum(expected[order]) >= MIN_EXPECTED)[0]
    if reached.size == 0:
        return table[:, :0]
    n_pool = max(n_rare, int(reached[0]) + 1)
    pool = table[:, order[:n_pool]].sum(axis=1, keepdims=True)
    return np.hstack([table[:, order[n_pool:]], pool])


def z_test(reference: CategoricalSummary, current: CategoricalSummary) -> DriftTestResult:
    """Two-proportion Z-tests (pooled standard error) on each category's share, Bonferroni across them.

    A binary column is one test (its two shares move together). With more categories each one's share is
    tested against the rest and the smallest p-value is multiplied by the number of tested categories; the
    statistic is the z of largest size. A category whose smallest expected cell is below :data:`MIN_EXPECTED`
    is not tested; when none can be, the test is skipped. One category on both sides: no drift.
    """
    n_ref, n_cur = reference.count, current.count
    if n_ref == 0 or n_cur == 0:
        side = "reference" if n_ref == 0 else "current"
        return skipped_result(f"Z-test skipped: the {side} sample has no non-null values")
    names = sorted(set(reference.counts) | set(current.counts))
    if len(names) == 1:
        return DriftTestResult(statistic=0.0, p_value=1.0)
    hits = np.array(
        [
            [side.counts.get(name, 0) for name in names[: 1 if len(names) == 2 else None]]
            for side in (reference, current)
        ],
        dtype=np.float64,
    )
    pooled = hits.sum(axis=0) / (n_ref + n_cur)
    testable = min(n_ref, n_cur) * np.minimum(pooled, 1.0 - pooled) >= MIN_EXPECTED
    if not testable.any():
        return skipped_result(f"Z-test skipped: every cell is expected fewer than {MIN_EXPECTED:g} times")
    pooled = pooled[testable]
    error = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n_ref + 1.0 / n_cur))
    z = (hits[1, testable] / n_cur - hits[0, testable] / n_ref) / error
    largest = int(np.argmax(np.abs(z)))
    p_value = min(1.0, float(2.0 * stats.norm.sf(abs(z[largest]))) * z.size)
    return DriftTestResult(statistic=float(z[largest]), p_value=p_value)
