from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from loopline.monitor._psi import (
    EPSILON,
    categorical_counts,
    category_counts,
    numeric_counts,
    psi,
    quantile_edges,
    sorted_counts,
    sorted_quantiles,
)


def test_psi_of_identical_counts_is_zero() -> None:
    counts = np.array([10, 20, 30, 0])
    assert psi(counts, counts) == 0.0


def test_psi_matches_the_formula_and_clips_empty_bins() -> None:
    ref, cur = np.array([50, 50, 0]), np.array([25, 75, 0])
    expected = (0.25 - 0.5) * np.log(0.25 / 0.5) + (0.75 - 0.5) * np.log(0.75 / 0.5)
    assert psi(ref, cur) == pytest.approx(expected)
    one_sided = psi(np.array([100, 0]), np.array([0, 100]))
    assert np.isfinite(one_sided)
    assert one_sided == pytest.approx(2 * (1 - EPSILON) * np.log(1 / EPSILON))


def test_quantile_edges_are_distinct_and_open_ended() -> None:
    values = np.arange(100, dtype=float)
    edges = quantile_edges(values, 10)
    assert len(edges) == 9
    counts = numeric_counts(np.array([-1e9, 50.0, 1e9]), edges, n_null=2)
    assert counts.tolist()[0] == 1 and counts.tolist()[-2] == 1 and counts.tolist()[-1] == 2
    assert counts.sum() == 5


def test_constant_reference_gives_one_edge_and_empty_gives_none() -> None:
    assert quantile_edges(np.full(50, 3.0), 10).tolist() == [3.0]
    assert quantile_edges(np.empty(0), 10).size == 0
    assert numeric_counts(np.array([1.0, 2.0]), np.empty(0), n_null=1).tolist() == [2, 1]


def test_categorical_counts_pool_unseen_categories() -> None:
    counts = category_counts(pl.Series(["a", "b", "z", "y", None, "a"]))
    assert counts == {"a": 2, "b": 1, "z": 1, "y": 1}
    bins, unseen = categorical_counts(["a", "b", "c"], counts, n_null=1)
    assert bins.tolist() == [2, 1, 0, 2, 1]
    assert unseen == 2


def test_sorted_lookups_match_numpy() -> None:
    values = np.sort(np.random.default_rng(8).normal(size=1001))
    levels = np.linspace(0.0, 1.0, 11)[1:-1]
    assert np.allclose(sorted_quantiles(values, levels), np.quantile(values, levels))
    edges = quantile_edges(values, 10)
    assert sorted_counts(values, edges, 3).tolist() == numeric_counts(values, edges, 3).tolist()
