"""The ``auto`` drift test: which built-in compares a column, decided from the column and the sample sizes.

Like Evidently's default choice, with one change: "large" asks both samples, not only the reference, because
a distance's sampling noise is set by the smaller one (a 200-row window against a 100k-row reference is small),
and it is large enough that no-drift noise stays below the distance's threshold (measured: the normed
Wasserstein of two samples of one normal, 1001 values against 20k, passes 0.1 in about 1 draw of 1000; at
2000 values the 99.9th percentile is 0.09 even for a log-normal).

- numeric with more than :data:`FEW_VALUES` distinct values (both samples together): ``ks`` when the smaller
  sample has at most :data:`LARGE_NUMERIC` values, else ``wasserstein`` (normed);
- numeric with few distinct values is compared as categories;
- categorical: ``jensenshannon`` when the smaller sample has more than :data:`LARGE` values and at least
  :data:`PER_CATEGORY` per category; otherwise ``ztest`` for two categories, ``chi2`` for more.

Small samples get a test with a calibrated p-value (false alarms at most ``alpha``); large ones a distance
with a threshold (shifts too small to matter are not drift, however significant).
"""

from __future__ import annotations

import numpy as np

from loopline.monitor._summary import CategoricalSummary, NumericSummary, Summary, as_categories

LARGE = 1000
"""Non-null values the smaller sample needs for Jensen-Shannon (Evidently's reference-size rule)."""

LARGE_NUMERIC = 2000
"""Non-null values the smaller sample needs for the normed Wasserstein distance."""

FEW_VALUES = 5
"""A numeric column with at most this many distinct values is compared as categories (Evidently's rule)."""

PER_CATEGORY = 100
"""Values per category the smaller sample needs for Jensen-Shannon: below it, sampling noise alone moves the
distance past 0.1 (its null mean is about (categories - 1) / (8 n) in squared distance)."""


def auto_test(reference: Summary, current: Summary) -> tuple[str, Summary, Summary]:
    """The built-in test for these samples, and the summaries to give it (a few-valued numeric column as
    categories)."""
    smaller = min(reference.count, current.count)
    if (
        isinstance(reference, NumericSummary)
        and isinstance(current, NumericSummary)
        and _distinct(reference, current) > FEW_VALUES
    ):
        return ("ks" if smaller <= LARGE_NUMERIC else "wasserstein"), reference, current
    ref, cur = as_categories(reference), as_categories(current)
    return _categorical_test(ref, cur, smaller), ref, cur


def _categorical_test(reference: CategoricalSummary, current: CategoricalSummary, smaller: int) -> str:
    categories = len(set(reference.counts) | set(current.counts))
    if smaller > max(LARGE, PER_CATEGORY * categories):
        return "jensenshannon"
    return "ztest" if categories <= 2 else "chi2"


def _distinct(reference: NumericSummary, current: NumericSummary) -> int:
    """Distinct values of both samples together (stops counting past :data:`FEW_VALUES`)."""
    ref = reference.unique_values()
    if ref.size > FEW_VALUES:
        return int(ref.size)
    cur = current.unique_values()
    if cur.size > FEW_VALUES:
        return int(cur.size)
    return int(np.union1d(ref, cur).size)
