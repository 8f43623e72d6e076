"""Calibration: under no drift the p-values are uniform (never too small), and a report's dataset verdict
raises a false alarm at most ``alpha`` of the time, on small windows and with a 200-category column too."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
import pytest
from scipy import stats

from loopline.core.config import DriftConfig
from loopline.monitor import DRIFT_TESTS, ReferenceProfile, drift_report
from loopline.testing import shifted_tables

DRAWS = 300
Sampler = Callable[[np.random.Generator, int], pl.Series]


def _normal(rng: np.random.Generator, n: int) -> pl.Series:
    return pl.Series("x", rng.normal(0.0, 1.0, n))


def _codes(shares: np.ndarray) -> Sampler:
    def draw(rng: np.random.Generator, n: int) -> pl.Series:
        return pl.Series("c", rng.choice(shares.size, n, p=shares)).cast(pl.String)

    return draw


_FIVE = _codes(np.array([0.4, 0.25, 0.2, 0.1, 0.05]))
_BINARY = _codes(np.array([0.3, 0.7]))
_CITIES = _codes((1.0 / np.arange(1, 201)) / (1.0 / np.arange(1, 201)).sum())


def _p_values(test: str, draw: Sampler, n_ref: int, n_cur: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    compare = DRIFT_TESTS.get(test).compare
    found = [compare(draw(rng, n_ref), draw(rng, n_cur)).p_value for _ in range(DRAWS)]
    return np.array([p for p in found if p is not None])


@pytest.mark.parametrize(
    ("test", "draw", "n_ref", "n_cur", "continuous"),
    [
        ("ks", _normal, 100, 100, False),  # exact: discrete p-values
        ("ks", _normal, 5000, 300, True),
        ("ks", _normal, 5000, 5000, True),
        ("chi2", _FIVE, 100, 100, False),
        ("chi2", _FIVE, 5000, 5000, False),
        ("chi2", _CITIES, 5000, 300, False),  # 200 categories, rare ones pooled
        ("ztest", _BINARY, 100, 100, False),
        ("ztest", _BINARY, 5000, 5000, False),
    ],
)
def test_p_values_are_uniform_under_no_drift(
    test: str, draw: Sampler, n_ref: int, n_cur: int, continuous: bool
) -> None:
    p = _p_values(test, draw, n_ref, n_cur, seed=n_ref + n_cur)
    assert p.size == DRAWS
    # never too small (a discrete statistic may make them larger: conservative, still valid)
    assert stats.kstest(p, "uniform", alternative="greater").pvalue > 0.001
    if continuous:
        assert stats.kstest(p, "uniform").pvalue > 0.001
    # P(Binomial(300, 0.01) >= 10) < 0.001
    assert np.count_nonzero(p < 0.01) <= 9


@pytest.fixture(scope="module")
def null_pool() -> tuple[ReferenceProfile, pl.DataFrame, list[str], list[str]]:
    """A 20k-row reference profile and 150k more rows of the same distribution to cut windows from."""
    tables = shifted_tables(20_000, 11, current_rows=150_000, drift=False)
    profile = ReferenceProfile.from_frame(tables.reference, numeric=tables.numeric, categorical=tables.categorical)
    return profile, tables.current, tables.numeric, tables.categorical


WINDOWS = 200


@pytest.mark.parametrize(("window", "alpha", "most"), [(100, 0.01, 7), (400, 0.05, 20)])
def test_the_dataset_verdict_false_alarm_rate_is_at_most_alpha(
    null_pool: tuple[ReferenceProfile, pl.DataFrame, list[str], list[str]], window: int, alpha: float, most: int
) -> None:
    """11 features (a 200-category one among them), 200 windows of one distribution: the dataset verdict
    fires at most alpha of the time (``most``: about the binomial 0.999 quantile of 200 draws at rate alpha)."""
    profile, pool, numeric, categorical = null_pool
    config = DriftConfig(p_value=alpha)
    alarms = 0
    for start in range(0, WINDOWS * window, window):
        report = drift_report(
            profile, pool.slice(start, window), numeric=numeric, categorical=categorical, config=config
        )
        alarms += report.dataset_drift
    assert alarms <= most


def test_a_200_category_column_on_small_windows_does_not_cry_wolf() -> None:
    """Issue 13: retraining fired in 20 of 20 no-drift draws at 100-500 rows with a 200-category column."""
    rng = np.random.default_rng(13)
    reference = pl.DataFrame({"city": _CITIES(rng, 100_000)})
    statuses = []
    for window in (100, 200, 300, 400, 500) * 4:
        report = drift_report(reference, pl.DataFrame({"city": _CITIES(rng, window)}), numeric=[], categorical=["city"])
        assert report.features[0].test == "chi2"
        statuses.append(report.features[0].status)
    assert "drift" not in statuses and statuses.count("no drift") == 20
