"""Two-sample tests on non-null values: Kolmogorov-Smirnov (numeric) and chi-square (categorical).

A test that cannot run (a side without values, a single category) is skipped: statistic 0.0,
p-value 1.0 and a reason saying why, so that it never flags drift on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

MIN_EXPECTED = 5.0
"""Categories expected fewer times than this in the current sample are pooled (chi-square rule of thumb)."""

_EXACT_KS_MAX_PRODUCT = 10_000
_POOLED_FLOOR = 1e-4


@dataclass(frozen=True)
class TestResult:
    """A test's statistic and p-value; ``skipped`` says why the test did not run, or is empty."""

    __test__ = False  # not a pytest class

    statistic: float
    p_value: float
    skipped: str = ""


def _skip(reason: str) -> TestResult:
    return TestResult(statistic=0.0, p_value=1.0, skipped=reason)


def ks_test(reference: np.ndarray, current: np.ndarray) -> TestResult:
    """Two-sample KS on non-null values; exact for small samples, asymptotic otherwise (never warns)."""
    if reference.size == 0 or current.size == 0:
        side = "reference" if reference.size == 0 else "current"
        return _skip(f"KS skipped: the {side} sample has no non-null values")
    method = "exact" if reference.size * current.size <= _EXACT_KS_MAX_PRODUCT else "asymp"
    result = stats.ks_2samp(reference, current, method=method)
    return TestResult(statistic=float(result.statistic), p_value=float(result.pvalue))


def chi2_test(reference: dict[str, int], current: dict[str, int]) -> TestResult:
    """Chi-square goodness of fit of current counts against reference proportions.

    Expected counts are the reference proportions scaled to the current non-null total. Categories
    unseen in the reference and categories expected fewer than :data:`MIN_EXPECTED` times are pooled
    into one bin; a pooled bin with observations but no expectation gets a tiny expected share so the
    statistic stays finite (and large).
    """
    n_ref, n_cur = sum(reference.values()), sum(current.values())
    if n_ref == 0 or n_cur == 0:
        side = "reference" if n_ref == 0 else "current"
        return _skip(f"chi-square skipped: the {side} sample has no non-null values")
    observed, expected = _pooled_bins(reference, current, n_ref, n_cur)
    if observed.size < 2:
        return _skip("chi-square skipped: fewer than two categories to compare")
    result = stats.chisquare(observed, expected)
    return TestResult(statistic=float(result.statistic), p_value=float(result.pvalue))


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
