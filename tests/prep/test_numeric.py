"""log, power (Yeo-Johnson) and bin: values, policies, training-only statistics, and bit-for-bit paths."""

from __future__ import annotations

import math
import random

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from loopline.core.errors import ConfigError, DataError
from loopline.prep import Chain, build_transform
from loopline.prep._numeric import _yeo_johnson, _yeo_johnson_value

from .agreement import assert_paths_agree

anything = st.none() | st.floats(allow_nan=True, allow_infinity=True)
finite = st.floats(allow_nan=False, allow_infinity=False)  # down to subnormals, up to overflowing sums


def _column(values: list[float | None]) -> pl.DataFrame:
    return pl.DataFrame({"x": values}, schema={"x": pl.Float64})


# -- log -------------------------------------------------------------------------------------------


def test_log_is_log1p_of_x_plus_offset() -> None:
    log = build_transform({"type": "log", "columns": ["x", "n"], "offset": 1.0})
    frame = pl.DataFrame({"x": [0.0, math.e - 2, None, float("nan"), float("inf")], "n": [0, 1, 2, 3, 4]})
    out = assert_paths_agree(log, frame)
    assert [r["x"] for r in out][:3] == [math.log(2.0), 1.0, None]
    assert math.isnan(out[3]["x"]) and out[4]["x"] == math.inf
    assert [r["n"] for r in out] == [math.log1p(1.0 + n) for n in range(5)]  # integers become Float64


@pytest.mark.parametrize(("errors", "expected"), [("null", None), ("nan", "nan")])
def test_values_outside_the_domain_follow_the_policy_and_are_counted(errors: str, expected: str | None) -> None:
    log = build_transform({"type": "log", "columns": ["x"], "errors": errors})
    out = [r["x"] for r in assert_paths_agree(log, _column([-1.0, -5.0, -0.5]))]
    assert out[2] == math.log1p(-0.5)
    for value in out[:2]:
        assert value is None if expected is None else math.isnan(value)
    assert log.counts() == {"x: outside the log domain": 2 * 3}  # table, one-row tables and records


def test_log_fail_policy_and_options() -> None:
    log = build_transform({"type": "log", "columns": ["x"], "errors": "fail"})
    with pytest.raises(DataError, match=r"log: column 'x', row 1, has -3.0, outside the domain .* offset above 2"):
        log.transform(_column([1.0, -3.0]))
    with pytest.raises(DataError, match="column 'x' has -3, outside the domain"):
        log.transform_record({"x": -3})
    with pytest.raises(ConfigError, match="invalid errors 'skip'"):
        build_transform({"type": "log", "columns": ["x"], "errors": "skip"})
    with pytest.raises(ConfigError, match="offset must be a finite number"):
        build_transform({"type": "log", "columns": ["x"], "offset": "1"})
    with pytest.raises(DataError, match=r"log: column 'x' is String; it needs numbers. Convert it first"):
        build_transform({"type": "log", "columns": ["x"]}).transform(pl.DataFrame({"x": ["1"]}))


@settings(max_examples=200, deadline=None)
@given(values=st.lists(anything, min_size=1, max_size=20), offset=st.floats(-10, 10))
def test_log_tables_and_records_agree(values: list[float | None], offset: float) -> None:
    assert_paths_agree(build_transform({"type": "log", "columns": ["x"], "offset": offset}), _column(values))


# -- power -----------------------------------------------------------------------------------------


def test_power_fits_lambda_on_training_rows_and_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    train = pl.DataFrame({"x": rng.lognormal(size=500), "y": rng.integers(0, 2, 500)})
    power = build_transform({"type": "power", "columns": ["x"], "standardize": False}).fit(train, target="y")
    lam = power.get_state()["lambdas_"]["x"]
    assert lam == pytest.approx(stats.yeojohnson_normmax(train["x"].to_numpy()), abs=1e-12)
    test = pl.DataFrame({"x": [-3.0, -0.5, 0.0, 0.5, 3.0, 1e3]})
    expected = stats.yeojohnson(test["x"].to_numpy(), lmbda=lam)
    np.testing.assert_allclose(power.transform(test)["x"].to_numpy(), expected, rtol=1e-12)
    assert_paths_agree(power, test)


def test_power_standardizes_on_the_training_rows_only() -> None:
    rng = np.random.default_rng(1)
    train = pl.DataFrame({"x": rng.exponential(size=400)})
    test = pl.DataFrame({"x": rng.exponential(scale=50.0, size=100)})  # very different: must not leak
    chain = Chain.from_config([{"type": "power", "columns": ["x"]}])
    fitted = chain.fit_transform(train)["x"].to_numpy()
    assert fitted.mean() == pytest.approx(0.0, abs=1e-12) and fitted.std() == pytest.approx(1.0, abs=1e-12)
    state = chain.to_state()
    assert chain.transform(test)["x"].mean() > 2.0
    assert chain.to_state() == state
    alone = build_transform({"type": "power", "columns": ["x"]}).fit(train)
    assert state["transforms"][0]["state"] == alone.get_state()


def test_power_of_a_constant_or_empty_column_is_the_identity_then_centred() -> None:
    power = build_transform({"type": "power", "columns": ["x"]}).fit(_column([2.0, 2.0, None, float("nan")]))
    assert power.get_state()["lambdas_"] == {"x": 1.0}
    assert power.transform_record({"x": 2.0}) == {"x": 0.0}
    assert power.transform_record({"x": 3.0}) == {"x": 1.0}  # scale 1: the spread is zero


def test_extreme_training_values_give_finite_json_state() -> None:
    huge = _column([-1e308, 0.0, 1.7e308])
    bins = build_transform({"type": "bin", "columns": ["x"], "strategy": "uniform", "n_bins": 4}).fit(huge)
    edges = bins.get_state()["edges_"]["x"]
    assert edges == sorted(edges) and all(math.isfinite(e) for e in edges)
    power = build_transform({"type": "power", "columns": ["x"]}).fit(_column([0.0, 2.2e-309]))
    assert power.get_state()["lambdas_"] == {"x": 1.0}  # too narrow for scipy to fit: the identity
    power.fit(huge)
    assert all(math.isfinite(v) for key in ("lambdas_", "centers_", "scales_") for v in power.get_state()[key].values())


lambdas = st.one_of(st.sampled_from([0.0, 2.0, 1.0, 0.5, -1.0, 3.0]), st.floats(-4, 6))


@settings(max_examples=300, deadline=None)
@given(values=st.lists(anything, min_size=1, max_size=20), lam=lambdas)
def test_yeo_johnson_tables_and_records_agree_for_any_lambda(values: list[float | None], lam: float) -> None:
    table = pl.select(_yeo_johnson(pl.lit(pl.Series(values, dtype=pl.Float64)), lam)).to_series().to_list()
    for value, got in zip(values, table, strict=True):
        want = None if value is None else _yeo_johnson_value(value, lam)
        assert got == want or (math.isnan(got) and math.isnan(want)), (value, lam, got, want)  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(train=st.lists(finite, min_size=2, max_size=40), test=st.lists(anything, min_size=1, max_size=10))
def test_power_tables_and_records_agree(train: list[float], test: list[float | None]) -> None:
    power = build_transform({"type": "power", "columns": ["x"]}).fit(_column(list(train)))
    assert_paths_agree(power, _column(test))


# -- bin -------------------------------------------------------------------------------------------


def test_quantile_bins_learned_at_fit() -> None:
    train = pl.DataFrame({"x": [float(i) for i in range(1, 101)]})
    bins = build_transform({"type": "bin", "columns": ["x"], "n_bins": 4}).fit(train)
    assert bins.get_state() == {"edges_": {"x": [1.0, 25.75, 50.5, 75.25, 100.0]}}
    test = _column([-5.0, 1.0, 25.75, 50.0, 99.0, 500.0, None, float("nan")])
    out = [r["x"] for r in assert_paths_agree(bins, test)]
    assert out[:7] == [0.0, 0.0, 1.0, 1.0, 3.0, 3.0, None] and math.isnan(out[7])
    assert bins.counts() == {"x: outside the training range": 2 * 3}


def test_uniform_bins_with_labels() -> None:
    bins = build_transform(
        {"type": "bin", "columns": ["x"], "strategy": "uniform", "n_bins": 3, "labels": ["low", "mid", "high"]}
    ).fit(_column([0.0, 3.0, 9.0, float("inf")]))
    assert bins.get_state() == {"edges_": {"x": [0.0, 3.0, 6.0, 9.0]}}
    out = [r["x"] for r in assert_paths_agree(bins, _column([-1.0, 2.9, 3.0, 6.5, 100.0, None, float("nan")]))]
    assert out == ["low", "low", "mid", "high", "high", None, None]


def test_tied_quantiles_leave_empty_bins_and_a_constant_column_is_bin_zero() -> None:
    tied = build_transform({"type": "bin", "columns": ["x"], "n_bins": 4}).fit(_column([0.0] * 8 + [1.0, 2.0]))
    assert [r["x"] for r in assert_paths_agree(tied, _column([0.0, 1.0, 2.0]))] == [3.0, 3.0, 3.0]
    constant = build_transform({"type": "bin", "columns": ["x"]}).fit(_column([4.0, 4.0]))
    assert [r["x"] for r in assert_paths_agree(constant, _column([3.0, 4.0, 5.0]))] == [0.0, 0.0, 0.0]


def test_bin_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="labels must be 3 texts, one per bin"):
        build_transform({"type": "bin", "columns": ["x"], "n_bins": 3, "labels": ["a", "b"]})
    with pytest.raises(ConfigError, match="n_bins must be an integer >= 2"):
        build_transform({"type": "bin", "columns": ["x"], "n_bins": 1})
    with pytest.raises(ConfigError, match="invalid strategy 'quantiles'. Did you mean 'quantile'"):
        build_transform({"type": "bin", "columns": ["x"], "strategy": "quantiles"})


@settings(max_examples=150, deadline=None)
@given(
    train=st.lists(finite, min_size=1, max_size=40),
    test=st.lists(anything, min_size=1, max_size=10),
    strategy=st.sampled_from(["uniform", "quantile"]),
    n_bins=st.integers(2, 7),
)
def test_bin_tables_and_records_agree(train: list[float], test: list[float | None], strategy: str, n_bins: int) -> None:
    bins = build_transform({"type": "bin", "columns": ["x"], "strategy": strategy, "n_bins": n_bins})
    bins.fit(_column(list(train)))
    shuffled = train[:]
    random.Random(0).shuffle(shuffled)
    refit = build_transform({"type": "bin", "columns": ["x"], "strategy": strategy, "n_bins": n_bins})
    assert refit.fit(_column(shuffled)) == bins  # edges do not depend on the row order
    assert_paths_agree(bins, _column(test))


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("train", [[0.0, 0.0, -0.0], [1.0, 0.0, -0.0], [-0.0, 2.0, 0.0, 1.0]])
def test_bin_edges_do_not_keep_the_sign_of_a_zero(train: list[float], strategy: str) -> None:
    """Which zero min() or a quantile returns depends on the row order; the edges must not (Hypothesis found it)."""
    fitted = [
        build_transform({"type": "bin", "columns": ["x"], "strategy": strategy, "n_bins": 2}).fit(_column(rows))
        for rows in (train, train[::-1])
    ]
    assert fitted[0] == fitted[1]
    assert all(math.copysign(1.0, edge) == 1.0 for edge in fitted[0].edges_["x"] if edge == 0.0)
