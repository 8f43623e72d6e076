"""Distances with their own threshold: Wasserstein normed by the reference spread (``wasserstein``),
Jensen-Shannon distance (``jensenshannon``) and Hellinger distance (``hellinger``).

A distance measures how far the distributions are apart, not how sure we are that they differ: on large
samples it ignores shifts too small to matter, where a p-value would flag them. All three compare non-null
values only. Defaults: 0.1 each (Evidently's for Wasserstein and Jensen-Shannon). For small differences
Hellinger and Jensen-Shannon (natural log) distances are nearly equal (both about sqrt(PSI / 8)), so 0.1
means the same shift for both, a PSI of about 0.08.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy import stats
from scipy.spatial import distance

from loopline.monitor._drift_tests import DriftTestResult, Kind, SummaryTest, skipped_result
from loopline.monitor._psi import sorted_counts, sorted_quantiles
from loopline.monitor._summary import NumericSummary, Summary, as_categories

WASSERSTEIN_THRESHOLD = 0.1
JENSEN_SHANNON_THRESHOLD = 0.1
HELLINGER_THRESHOLD = 0.1

MIN_VALUES = 100
"""Non-null values each side needs before a distance is asked: on fewer, sampling noise alone moves it."""

SKETCH_POINTS = 4096
"""Wasserstein compares the quantile functions at this many evenly spaced levels once a side is larger."""

DISTANCE_BINS = 20
"""Numeric columns are binned at this many reference quantiles for Jensen-Shannon and Hellinger."""


class Wasserstein(SummaryTest):
    """``wasserstein``: the Wasserstein-1 distance of the non-null values divided by the reference's standard
    deviation (:func:`scipy.stats.wasserstein_distance`), so 0.1 means "moved by a tenth of a spread".

    A side larger than :data:`SKETCH_POINTS` values is represented by that many quantiles (mid-point levels of
    its sorted values): the distance then differs from the exact one by far less than the threshold and takes
    milliseconds at any size. Non-finite values are left out. A constant reference is normed by the pooled
    standard deviation of both samples.
    """

    name = "wasserstein"
    kinds: ClassVar[tuple[Kind, ...]] = ("numeric",)
    min_values: ClassVar[int] = MIN_VALUES

    def compare_summaries(self, reference: Summary, current: Summary) -> DriftTestResult:
        if not (isinstance(reference, NumericSummary) and isinstance(current, NumericSummary)):
            raise TypeError("wasserstein compares numeric summaries")
        ref, cur = _finite(reference.values), _finite(current.values)
        if ref.size == 0 or cur.size == 0:
            side = "reference" if ref.size == 0 else "current"
            return skipped_result(f"Wasserstein skipped: the {side} sample has no finite values", p_value=False)
        spread = float(np.std(ref)) or float(np.std(np.concatenate([ref, cur])))
        raw = stats.wasserstein_distance(_sketch(ref), _sketch(cur))
        value = float(raw / spread) if spread > 0 else 0.0
        return DriftTestResult(statistic=value, threshold=WASSERSTEIN_THRESHOLD)


class JensenShannon(SummaryTest):
    """``jensenshannon``: the Jensen-Shannon distance (natural log, :func:`scipy.spatial.distance.jensenshannon`)
    between the category shares, or between the shares of :data:`DISTANCE_BINS` reference-quantile bins of a
    numeric column. Unseen categories count as categories of their own."""

    name = "jensenshannon"
    kinds: ClassVar[tuple[Kind, ...]] = ("numeric", "categorical")
    min_values: ClassVar[int] = MIN_VALUES

    def compare_summaries(self, reference: Summary, current: Summary) -> DriftTestResult:
        shares = _shares(reference, current)
        if isinstance(shares, DriftTestResult):
            return shares
        value = float(distance.jensenshannon(*shares))
        return DriftTestResult(statistic=value if np.isfinite(value) else 0.0, threshold=JENSEN_SHANNON_THRESHOLD)


class Hellinger(SummaryTest):
    """``hellinger``: the Hellinger distance sqrt(1 - sum(sqrt(p * q))) between the same shares as
    ``jensenshannon`` (computed as a Euclidean distance of square roots, :mod:`scipy.spatial.distance`)."""

    name = "hellinger"
    kinds: ClassVar[tuple[Kind, ...]] = ("numeric", "categorical")
    min_values: ClassVar[int] = MIN_VALUES

    def compare_summaries(self, reference: Summary, current: Summary) -> DriftTestResult:
        shares = _shares(reference, current)
        if isinstance(shares, DriftTestResult):
            return shares
        value = float(distance.euclidean(np.sqrt(shares[0]), np.sqrt(shares[1])) / np.sqrt(2.0))
        return DriftTestResult(statistic=value, threshold=HELLINGER_THRESHOLD)


def _finite(values: np.ndarray) -> np.ndarray:
    """The finite part of *sorted* non-null values: a slice between the infinities."""
    low, high = np.searchsorted(values, -np.inf, side="right"), np.searchsorted(values, np.inf, side="left")
    return values[low:high]


def _sketch(values: np.ndarray) -> np.ndarray:
    """Sorted ``values`` as they are, or :data:`SKETCH_POINTS` of their quantiles (mid-point levels)."""
    if values.size <= SKETCH_POINTS:
        return values
    levels = (np.arange(SKETCH_POINTS) + 0.5) / SKETCH_POINTS
    return values[(levels * values.size).astype(np.int64)]


def _shares(reference: Summary, current: Summary) -> tuple[np.ndarray, np.ndarray] | DriftTestResult:
    """The two samples' shares over common bins, or a skipped result when a side has no value."""
    if reference.count == 0 or current.count == 0:
        side = "reference" if reference.count == 0 else "current"
        return skipped_result(f"skipped: the {side} sample has no non-null values", p_value=False)
    if isinstance(reference, NumericSummary) and isinstance(current, NumericSummary):
        finite = _finite(reference.values)
        levels = np.linspace(0, 1, DISTANCE_BINS + 1)[1:-1]
        edges = np.unique(sorted_quantiles(finite, levels)) if finite.size else finite
        counts = [sorted_counts(side.values, edges, 0)[:-1] for side in (reference, current)]
    else:
        ref_counts, cur_counts = as_categories(reference).counts, as_categories(current).counts
        names = sorted(set(ref_counts) | set(cur_counts))
        counts = [np.array([side.get(name, 0) for name in names]) for side in (ref_counts, cur_counts)]
    return counts[0] / counts[0].sum(), counts[1] / counts[1].sum()
