from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from loopline.monitor._stattests import MIN_EXPECTED, _pooled, chi2_test, ks_test, z_test
from loopline.monitor._summary import CategoricalSummary


def test_ks_detects_a_shift_and_not_a_resample() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(0, 1, 3000)
    assert ks_test(base, rng.normal(0, 1, 3000)).p_value > 0.01
    assert ks_test(base, rng.normal(0.5, 1, 3000)).p_value < 1e-10


def test_ks_small_samples_use_the_exact_method() -> None:
    result = ks_test(np.arange(10.0), np.arange(10.0) + 100)
    assert result.statistic == 1.0
    assert result.p_value < 1e-4


def test_ks_is_skipped_without_values() -> None:
    result = ks_test(np.empty(0), np.arange(5.0))
    assert (result.statistic, result.p_value) == (0.0, 1.0)
    assert "reference sample has no non-null values" in result.skipped


def test_chi2_same_mix_is_not_significant() -> None:
    result = chi2_test({"a": 500, "b": 300, "c": 200}, {"a": 510, "b": 290, "c": 200})
    assert result.p_value > 0.5
    assert not result.skipped


def test_chi2_pools_unseen_and_rare_categories() -> None:
    reference = {"a": 500, "b": 500, "rare": 1}
    result = chi2_test(reference, {"a": 500, "b": 400, "new": 100})
    assert np.isfinite(result.statistic)
    assert result.p_value < 1e-10


def test_chi2_single_category_on_both_sides_is_no_drift() -> None:
    result = chi2_test({"a": 100}, {"a": 80})
    assert (result.statistic, result.p_value, result.skipped) == (0.0, 1.0, "")
    empty = chi2_test({"a": 100}, {})
    assert "current sample has no non-null values" in empty.skipped


def test_chi2_is_the_two_sample_contingency_test() -> None:
    reference, current = {"a": 500, "b": 300, "c": 200}, {"a": 450, "b": 330, "c": 220}
    result = chi2_test(reference, current)
    statistic, p_value, _, _ = stats.chi2_contingency([[500, 300, 200], [450, 330, 220]], correction=False)
    assert (result.statistic, result.p_value) == (pytest.approx(statistic), pytest.approx(p_value))


def test_chi2_of_an_unchanged_column_on_large_samples_is_not_significant() -> None:
    """Issue 13: goodness of fit took the reference shares as exact and gave unchanged columns p < 1e-14."""
    rng = np.random.default_rng(21)
    shares = [0.4, 0.25, 0.2, 0.1, 0.05]
    reference = dict(zip("abcde", rng.multinomial(100_000, shares).tolist(), strict=True))
    current = dict(zip("abcde", rng.multinomial(100_000, shares).tolist(), strict=True))
    assert chi2_test(reference, current).p_value > 0.05


def test_chi2_pools_rare_categories_until_each_bin_is_expected_five_times() -> None:
    table = np.array([[1000.0, 500.0, 95.0, 20.0, 5.0, 1.0], [50.0, 20.0, 7.0, 1.0, 0.0, 0.0]])
    pooled = _pooled(table)
    expected = pooled.sum(axis=0) * table.sum(axis=1).min() / table.sum()
    assert pooled.shape == (2, 3) and expected.min() >= MIN_EXPECTED
    assert pooled.sum() == table.sum()


def test_chi2_without_two_bins_expected_five_times_is_skipped() -> None:
    reference = {f"c{i}": 500 for i in range(200)}
    current = {"c0": 3, "c1": 2, "c7": 4}  # 9 values over 200 equally common categories
    result = chi2_test(reference, current)
    assert (result.statistic, result.p_value) == (0.0, 1.0)
    assert "fewer than two categories expected 5 times" in result.skipped


def test_ztest_of_a_binary_column_is_the_uncorrected_two_by_two_chi2() -> None:
    reference, current = CategoricalSummary({"n": 700, "y": 300}, 0), CategoricalSummary({"n": 330, "y": 170}, 4)
    result = z_test(reference, current)
    chi2, p_value, _, _ = stats.chi2_contingency([[700, 300], [330, 170]], correction=False)
    assert result.statistic == pytest.approx(-np.sqrt(chi2))  # the share of "n" fell
    assert result.p_value == pytest.approx(p_value)


def test_ztest_on_more_categories_is_bonferroni_over_each_share() -> None:
    reference = CategoricalSummary({"a": 400, "b": 300, "c": 300}, 0)
    current = CategoricalSummary({"a": 400, "b": 250, "c": 350}, 0)
    result = z_test(reference, current)
    assert result.p_value is not None
    single = z_test(CategoricalSummary({"b": 300, "x": 700}, 0), CategoricalSummary({"b": 250, "x": 750}, 0))
    assert single.p_value is not None and abs(single.statistic) == pytest.approx(abs(result.statistic))
    assert result.p_value == pytest.approx(min(1.0, 3 * single.p_value))


def test_ztest_skips_cells_expected_fewer_than_five_times() -> None:
    result = z_test(CategoricalSummary({"n": 9990, "y": 10}, 0), CategoricalSummary({"n": 50}, 0))
    assert (result.statistic, result.p_value) == (0.0, 1.0) and "expected fewer than 5 times" in result.skipped
    assert z_test(CategoricalSummary({"y": 10}, 0), CategoricalSummary({"y": 5}, 0)).p_value == 1.0
