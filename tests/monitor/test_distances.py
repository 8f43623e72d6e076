"""The distances: Wasserstein normed by the reference spread, Jensen-Shannon and Hellinger, with threshold 0.1."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats
from scipy.spatial import distance

from loopline.monitor._distances import SKETCH_POINTS, Hellinger, JensenShannon, Wasserstein


def test_wasserstein_is_scipys_divided_by_the_reference_std() -> None:
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(5.0, 2.0, 800), rng.normal(5.5, 2.0, 600)
    result = Wasserstein().compare(pl.Series("x", [*ref, None]), pl.Series("x", [*cur, float("nan")]))
    assert result.statistic == pytest.approx(stats.wasserstein_distance(ref, cur) / ref.std(), rel=1e-12)
    assert result.p_value is None and result.threshold == 0.1 and not result.skipped
    assert 0.15 < result.statistic < 0.35  # half a spread... of a spread of 2: a quarter


def test_wasserstein_on_large_samples_stays_close_to_the_exact_distance() -> None:
    rng = np.random.default_rng(2)
    ref, cur = rng.lognormal(0, 1, 60_000), rng.lognormal(0.1, 1.1, 50_000)
    assert ref.size > SKETCH_POINTS
    exact = stats.wasserstein_distance(ref, cur) / ref.std()
    assert Wasserstein().compare(pl.Series(ref), pl.Series(cur)).statistic == pytest.approx(exact, abs=0.005)


def test_wasserstein_of_a_constant_reference_uses_the_pooled_spread() -> None:
    same = Wasserstein().compare(pl.Series([7.0] * 200), pl.Series([7.0] * 200))
    assert same.statistic == 0.0
    moved = Wasserstein().compare(pl.Series([7.0] * 200), pl.Series([8.0] * 200))
    assert moved.statistic == pytest.approx(2.0)  # a distance of 1 over a pooled std of 0.5


def test_jensen_shannon_and_hellinger_of_categories() -> None:
    reference = pl.Series("c", ["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    current = pl.Series("c", ["a"] * 30 + ["b"] * 30 + ["c"] * 30 + ["new"] * 10 + [None] * 7)
    p, q = np.array([0.5, 0.3, 0.2, 0.0]), np.array([0.3, 0.3, 0.3, 0.1])
    js = JensenShannon().compare(reference, current)
    assert js.statistic == pytest.approx(distance.jensenshannon(p, q), rel=1e-12) and js.threshold == 0.1
    hellinger = Hellinger().compare(reference, current)
    assert hellinger.statistic == pytest.approx(np.sqrt(1.0 - np.sum(np.sqrt(p * q))), rel=1e-12)
    assert hellinger.threshold == 0.1
    # for a small change the two are nearly equal, and about sqrt(PSI / 8): one threshold means one shift size
    near = pl.Series("c", ["a"] * 46 + ["b"] * 30 + ["c"] * 24)
    small_js, small_h = JensenShannon().compare(reference, near), Hellinger().compare(reference, near)
    assert small_h.statistic == pytest.approx(small_js.statistic, rel=0.05)


def test_numeric_columns_are_binned_at_reference_quantiles() -> None:
    rng = np.random.default_rng(3)
    ref = pl.Series("x", rng.normal(0, 1, 5000))
    assert JensenShannon().compare(ref, pl.Series("x", rng.normal(0, 1, 5000))).statistic < 0.05
    assert JensenShannon().compare(ref, pl.Series("x", rng.normal(1, 1, 5000))).statistic > 0.3
    assert Hellinger().compare(ref, pl.Series("x", rng.normal(1, 1, 5000))).statistic > 0.3


@pytest.mark.parametrize("test", [Wasserstein(), JensenShannon(), Hellinger()])
def test_a_side_without_values_is_skipped_without_a_p_value(test: Wasserstein | JensenShannon | Hellinger) -> None:
    nulls, values = pl.Series("x", [None] * 10, dtype=pl.Float64), pl.Series("x", np.arange(10.0))
    result = test.compare(nulls, values)
    assert (result.statistic, result.p_value) == (0.0, None) and "reference sample has no" in result.skipped
