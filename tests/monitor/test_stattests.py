from __future__ import annotations

import numpy as np

from loopline.monitor._stattests import chi2_test, ks_test


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
