"""Population stability index (PSI) over binned counts.

Bins are built from the reference sample only:

- numeric: edges at the reference quantiles ``1/bins, …, (bins-1)/bins`` with duplicates removed, so the
  outer bins are open-ended (``(-inf, e1]`` and ``(ek, inf)``) and a constant reference gives two bins;
- categorical: one bin per reference category plus one pooled bin for categories never seen in the reference;
- both: nulls (and NaN) count in a bin of their own, so a change in the missing rate is drift too.

Empty bins get proportion :data:`EPSILON` instead of zero, which keeps the logarithm finite.
"""

from __future__ import annotations

import numpy as np
import polars as pl

EPSILON = 1e-4


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
    """Distinct finite interior edges at the reference quantiles; empty when ``values`` is empty."""
    if values.size == 0:
        return np.empty(0)
    edges = np.quantile(values, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return np.unique(edges[np.isfinite(edges)])


def numeric_counts(values: np.ndarray, edges: np.ndarray, n_null: int) -> np.ndarray:
    """Counts per bin ``(-inf, e1], (e1, e2], …, (ek, inf)``, then the null count last."""
    index = np.searchsorted(edges, values, side="left")
    counts = np.bincount(index, minlength=len(edges) + 1)
    return np.append(counts, n_null)


def category_counts(values: pl.Series) -> dict[str, int]:
    """Non-null category -> count, categories as strings."""
    counted = values.drop_nulls().cast(pl.String).value_counts()
    return dict(zip(counted[:, 0].to_list(), counted[:, 1].to_list(), strict=True))


def categorical_counts(categories: list[str], counts: dict[str, int], n_null: int) -> tuple[np.ndarray, int]:
    """Counts over ``categories`` + one pooled unseen bin + the null bin; also returns the unseen count."""
    known = np.array([counts.get(name, 0) for name in categories], dtype=np.int64)
    unseen = sum(counts.values()) - int(known.sum())
    return np.concatenate([known, [unseen, n_null]]), unseen
