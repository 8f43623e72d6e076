"""Two-sample tests on non-null values: Kolmogorov-Smirnov (``ks``, numeric) and chi-square (``chi2``, categorical).

Both compare the non-null values only (NaN counts as null); a change in the missing rate is PSI's to see.
A test that cannot run (a side without values, a single category) is skipped: statistic 0.0,
p-value 1.0 and a reason saying why, so that it never flags drift on its own.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import polars as pl
from scipy import stats

from loopline.monitor._drift_tests import (
    DriftTest,
    DriftTestResult,
    Kind,
    as_categorical,
    as_numeric,
    category_counts,
    require_rows,
    skipped_result,
)

MIN_EXPECTED = 5.0
"""Categories expected fewer times than this in the current sample are pooled (chi-square rule of thumb)."""

_EXACT_KS_MAX_PRODUCT = 10_000
_POOLED_FLOOR = 1e-4


class KolmogorovSmirnov(DriftTest):
    """``ks``: the two-sample Kolmogorov-Smirnov test on the non-null values of a numeric column."""

    name = "ks"
    kinds: ClassVar[tuple[Kind, ...]] = ("numeric",)

    def compare(self, reference: pl.Series, current: pl.Series) -> DriftTestResult:
        require_rows(self.name, reference, current)
        return ks_test(_values(reference), _values(current))


class ChiSquare(DriftTest):
    """``chi2``: chi-square goodness of fit of the current categories against the reference proportions.

    Compares the non-null values; categories are compared as strings (see :func:`chi2_test` for pooling).
    """

    name = "chi2"
    kinds: ClassVar[tuple[Kind, ...]] = ("categorical",)

    def compare(self, reference: pl.Series, current: pl.Series) -> DriftTestResult:
        require_rows(self.name, reference, current)
        return chi2_test(category_counts(as_categorical(reference)), category_counts(as_categorical(current)))


def _values(series: pl.Series) -> np.ndarray:
    return as_numeric(series).drop_nulls().to_numpy()


def ks_test(reference: np.ndarray, current: np.ndarray) -> DriftTestResult:
    """Two-sample KS on non-null values; exact for small samples, asymptotic otherwise (never warns)."""
    if reference.size == 0 or current.size == 0:
        side = "reference" if reference.size == 0 else "current"
        return skipped_result(f"KS skipped: the {side} sample has no non-null values")
    method = "exact" if reference.size * current.size <= _EXACT_KS_MAX_PRODUCT else "asymp"
    result = stats.ks_2samp(reference, current, method=method)
    return DriftTestResult(statistic=float(result.statistic), p_value=float(result.pvalue))


def chi2_test(reference: dict[str, int], current: dict[str, int]) -> DriftTestResult:
    """Chi-square goodness of fit of current counts against reference proportions.

    Expected counts are the reference proportions scaled to the current non-null total. Categories
    unseen in the reference and categories expected fewer than :data:`MIN_EXPECTED` times are pooled
    into one bin; a pooled bin with observations but no expectation gets a tiny expected share so the
    statistic stays finite (and large).
    """
    n_ref, n_cur = sum(reference.values()), sum(current.values())
    if n_ref == 0 or n_cur == 0:
        side = "reference" if n_ref == 0 else "current"
        return skipped_result(f"chi-square skipped: the {side} sample has no non-null values")
    observed, expected = _pooled_bins(reference, current, n_ref, n_cur)
    if observed.size < 2:
        return skipped_result("chi-square skipped: fewer than two categories to compare")
    result = stats.chisquare(observed, expected)
    return DriftTestResult(statistic=float(result.statistic), p_value=float(result.pvalue))


def _pooled_bins(
    reference: dict[str, int], current: dict[str, int], n_ref: int, n_cur: int
) -> tuple[np.ndarray, np.ndarray]:
    names = list(reference)
    expected = np.array([reference[name] for name in names], dtype=np.float64) / n_ref * n_cur
    observed = np.array([current.get(name, 0) for name in names], dtype=np.float64)
    small = expected < MIN_EXPECTED
    pooled_obs = float(n_cur - observed.sum() + observed[small].sum())
    pooled_exp = float(expected[small].sum())
    observed, expected = observed[~small], expected[~small]
    if pooled_obs > 0 or pooled_exp > 0:
        pooled_exp = max(pooled_exp, _POOLED_FLOOR * n_cur)
        observed = np.append(observed, pooled_obs)
        expected = np.append(expected, pooled_exp)
    return observed, expected * (n_cur / expected.sum())
