"""The drift-test contract and registry: the built-ins are entry points, found by name, and keep their numbers."""

from __future__ import annotations

from importlib.metadata import entry_points

import numpy as np
import polars as pl
import pytest

from loopline.core.errors import ConfigError, DataError
from loopline.monitor import DRIFT_TESTS, DriftTest, DriftTestResult, require_rows, skipped_result
from loopline.monitor._psi import PopulationStability, categorical_counts, numeric_counts, psi, quantile_edges
from loopline.monitor._stattests import ChiSquare, KolmogorovSmirnov, chi2_test, ks_test


def test_the_built_ins_are_entry_points_of_the_drift_tests_group() -> None:
    declared = {entry.name: entry.value for entry in entry_points(group="loopline.drift_tests")}
    assert declared == {
        "ks": "loopline.monitor._stattests:KolmogorovSmirnov",
        "chi2": "loopline.monitor._stattests:ChiSquare",
        "psi": "loopline.monitor._psi:PopulationStability",
        "ztest": "loopline.monitor._stattests:ZTest",
        "wasserstein": "loopline.monitor._distances:Wasserstein",
        "jensenshannon": "loopline.monitor._distances:JensenShannon",
        "hellinger": "loopline.monitor._distances:Hellinger",
    }
    assert {"ks", "chi2", "psi"} <= set(DRIFT_TESTS.names())
    for name, cls in (("ks", KolmogorovSmirnov), ("chi2", ChiSquare), ("psi", PopulationStability)):
        test = DRIFT_TESTS.get(name)
        assert type(test) is cls and test.name == name
    assert DRIFT_TESTS.get("ks").kinds == ("numeric",)
    assert DRIFT_TESTS.get("chi2").kinds == ("categorical",)
    assert DRIFT_TESTS.get("psi").kinds == ("numeric", "categorical")


def test_an_unknown_name_gets_a_did_you_mean() -> None:
    with pytest.raises(ConfigError, match=r"unknown drift test type 'chi'\. Did you mean 'chi2'"):
        DRIFT_TESTS.get("chi")


def test_ks_compares_the_non_null_values_exactly_as_ks_test() -> None:
    rng = np.random.default_rng(5)
    reference = pl.Series("x", [*rng.normal(0, 1, 300), None, float("nan")])
    current = pl.Series("x", [*rng.normal(0.3, 1, 200), None])
    result = KolmogorovSmirnov().compare(reference, current)
    expected = ks_test(reference.fill_nan(None).drop_nulls().to_numpy(), current.drop_nulls().to_numpy())
    assert result == expected
    assert result.p_value is not None and result.p_value < 0.01 and result.threshold is None


def test_ks_takes_integers_and_booleans_but_not_strings() -> None:
    integers = KolmogorovSmirnov().compare(pl.Series("n", [1, 2, 3] * 20), pl.Series("n", [7, 8, 9] * 20))
    assert integers.statistic == 1.0
    assert KolmogorovSmirnov().compare(pl.Series("b", [True, False] * 20), pl.Series("b", [True] * 40)).p_value
    with pytest.raises(DataError, match=r"numeric feature 'colour' has dtype String\. List it under categorical"):
        KolmogorovSmirnov().compare(pl.Series("colour", ["a"]), pl.Series("colour", ["b"]))


def test_chi2_compares_category_counts_exactly_as_chi2_test() -> None:
    reference = pl.Series("c", ["a"] * 500 + ["b"] * 300 + ["c"] * 200 + [None] * 10)
    current = pl.Series("c", ["a"] * 400 + ["b"] * 300 + ["new"] * 100)
    result = ChiSquare().compare(reference, current)
    assert result == chi2_test({"a": 500, "b": 300, "c": 200}, {"a": 400, "b": 300, "new": 100})
    assert result.p_value is not None and result.p_value < 1e-10


def test_chi2_compares_integer_codes_as_categories() -> None:
    result = ChiSquare().compare(pl.Series("k", [1, 2] * 100), pl.Series("k", [1] * 150 + [2] * 50))
    assert result == chi2_test({"1": 100, "2": 100}, {"1": 150, "2": 50})


def test_psi_is_a_distance_over_quantile_bins_with_a_null_bin() -> None:
    rng = np.random.default_rng(9)
    ref_values, cur_values = rng.normal(0, 1, 1000), rng.normal(0.5, 1, 800)
    reference = pl.Series("x", [*ref_values, None])
    current = pl.Series("x", [*cur_values, None, None])
    result = PopulationStability().compare(reference, current)
    edges = quantile_edges(np.sort(ref_values), 10)
    expected = psi(numeric_counts(ref_values, edges, 1), numeric_counts(cur_values, edges, 2))
    assert result == DriftTestResult(statistic=expected, threshold=0.1)
    assert result.p_value is None and result.threshold == 0.1
    assert PopulationStability(bins=4).compare(reference, current).statistic < result.statistic
    assert PopulationStability().compare(reference, reference).statistic == 0.0


def test_psi_of_categories_pools_unseen_ones() -> None:
    reference = pl.Series("c", ["a", "b"] * 50)
    current = pl.Series("c", ["a"] * 50 + ["z"] * 50)
    ref_bins, _ = categorical_counts(["a", "b"], {"a": 50, "b": 50}, 0)
    cur_bins, unseen = categorical_counts(["a", "b"], {"a": 50, "z": 50}, 0)
    assert unseen == 50
    assert PopulationStability().compare(reference, current).statistic == psi(ref_bins, cur_bins)


def test_all_null_sides_are_skipped_by_the_value_tests_and_counted_by_psi() -> None:
    nulls, values = pl.Series("x", [None] * 50, dtype=pl.Float64), pl.Series("x", np.arange(50.0))
    ks = KolmogorovSmirnov().compare(nulls, values)
    assert (ks.statistic, ks.p_value) == (0.0, 1.0) and "reference sample has no non-null values" in ks.skipped
    chi2 = ChiSquare().compare(values.cast(pl.String), nulls.cast(pl.String))
    assert "current sample has no non-null values" in chi2.skipped
    assert PopulationStability().compare(nulls, values).statistic > 1.0
    assert PopulationStability().compare(nulls, nulls).statistic == 0.0


@pytest.mark.parametrize("test", [KolmogorovSmirnov(), ChiSquare(), PopulationStability()], ids=lambda t: t.name)
def test_an_empty_side_is_a_data_error_naming_the_column(test: DriftTest) -> None:
    values = pl.Series("price", [1.0, 2.0]).cast(pl.String if "numeric" not in test.kinds else pl.Float64)
    with pytest.raises(DataError, match=rf"drift test '{test.name}': the current sample of 'price' has no rows"):
        test.compare(values, values.head(0))
    with pytest.raises(DataError, match="the reference sample of 'price' has no rows") as info:
        test.compare(values.head(0), values)
    assert info.value.column == "price"


def test_the_helpers_plugin_authors_use() -> None:
    assert skipped_result("no values") == DriftTestResult(statistic=0.0, p_value=1.0, skipped="no values")
    assert skipped_result("no values", p_value=False).p_value is None
    require_rows("mine", pl.Series("x", [None]), pl.Series("x", [1]))
    with pytest.raises(DataError, match="drift test 'mine': the current sample of 'x' has no rows"):
        require_rows("mine", pl.Series("x", [None]), pl.Series("x", [], dtype=pl.Int64))
