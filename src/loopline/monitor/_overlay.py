"""One feature's distribution in the training reference beside its distribution in a window: the bins of the
reference profile (quantile bins of a numeric feature, the categories of a categorical one) counted on both sides.

What a dashboard draws as the reference-vs-window overlay. The reference side is the stored
:class:`~loopline.monitor.ReferenceProfile`; the window side is one column of that window's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import polars as pl

from loopline.core.errors import DataError, did_you_mean
from loopline.monitor._drift_tests import Kind
from loopline.monitor._profile import NumericProfile, ReferenceProfile
from loopline.monitor._psi import numeric_counts
from loopline.monitor._summary import categorical_summary, numeric_summary

MAX_CATEGORIES = 30
"""Categories shown by name (the reference's most common); the rest of the reference's pool into ``other``."""
MISSING, UNSEEN, OTHER = "missing", "unseen", "other"


@dataclass(frozen=True)
class FeatureOverlay:
    """``bins`` (labels) with the reference's and the window's row counts in each; ``missing`` is the last bin,
    ``unseen`` (window categories the reference never had) the one before it for a categorical feature."""

    feature: str
    kind: Kind
    bins: list[str]
    reference: list[int]
    current: list[int]

    def shares(self, side: str) -> list[float]:
        """Each bin's share of that side's rows (``reference`` or ``current``); zeros for an empty side."""
        counts = self.reference if side == "reference" else self.current
        total = sum(counts)
        return [count / total if total else 0.0 for count in counts]


def feature_overlay(
    profile: ReferenceProfile, feature: str, current: pl.Series, *, max_categories: int = MAX_CATEGORIES
) -> FeatureOverlay:
    """Count ``current`` (one feature's values in a window) in the bins ``profile`` holds for ``feature``;
    DataError naming the feature when the profile lacks it, or a numeric feature's values are not numeric."""
    column = profile.columns.get(feature)
    if column is None:
        raise DataError(
            f"the reference profile has no feature {feature!r}.",
            column=feature,
            hint=did_you_mean(feature, profile.columns) or "Choose a feature the model monitors.",
        )
    if isinstance(column, NumericProfile):
        summary = numeric_summary(current.rename(feature))
        edges = np.asarray(column.edges, dtype=np.float64)
        counts = numeric_counts(summary.values, edges, summary.n_null)
        return FeatureOverlay(feature, "numeric", _numeric_bins(column.edges), column.bin_counts, counts.tolist())
    reference = column.summary.counts
    ranked = sorted(reference, key=lambda name: (-reference[name], name))
    shown, pooled = ranked[:max_categories], set(ranked[max_categories:])
    window = categorical_summary(current.rename(feature))
    seen = window.counts
    ref_counts = [reference[name] for name in shown]
    cur_counts = [seen.get(name, 0) for name in shown]
    bins = list(shown)
    if pooled:
        bins.append(OTHER)
        ref_counts.append(sum(reference[name] for name in pooled))
        cur_counts.append(sum(count for name, count in seen.items() if name in pooled))
    unseen = sum(count for name, count in seen.items() if name not in reference)
    bins += [UNSEEN, MISSING]
    ref_counts += [0, column.summary.n_null]
    cur_counts += [unseen, window.n_null]
    return FeatureOverlay(feature, "categorical", bins, ref_counts, cur_counts)


def _numeric_bins(edges: list[float]) -> list[str]:
    """``≤ e1``, ``e1 – e2``, …, ``> ek``, ``missing`` (one bin, ``all``, without edges)."""
    if not edges:
        return ["all", MISSING]
    text = [f"{edge:.4g}" for edge in edges]
    middle = [f"{low} – {high}" for low, high in pairwise(text)]
    return [f"≤ {text[0]}", *middle, f"> {text[-1]}", MISSING]
