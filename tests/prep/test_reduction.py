from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.decomposition import PCA, TruncatedSVD

from loopline.core.errors import ConfigError, DataError
from loopline.prep import Chain, build_transform
from loopline.prep._reduction import allocate

COLUMNS = ["a", "b", "c", "d"]


def _frame(rows: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(rows, 4)) @ rng.normal(size=(4, 4))  # correlated columns
    return pl.DataFrame({name: values[:, i] for i, name in enumerate(COLUMNS)}).with_columns(
        label=pl.Series(rng.integers(0, 3, rows)), city=pl.Series(rng.choice(["x", "y"], rows))
    )


# -- pca / svd -------------------------------------------------------------------------------------


def test_pca_matches_scikit_learn_and_replaces_its_inputs() -> None:
    train, test = _frame(300), _frame(200, seed=1)
    pca = build_transform({"type": "pca", "columns": COLUMNS, "n_components": 3}).fit(train, "label")
    out = pca.transform(test)
    assert out.columns == ["label", "city", "pca_0", "pca_1", "pca_2"]
    reference = PCA(n_components=3, svd_solver="full").fit(train.select(COLUMNS).to_numpy())
    expected = reference.transform(test.select(COLUMNS).to_numpy())
    np.testing.assert_allclose(out.select("pca_0", "pca_1", "pca_2").to_numpy(), expected, rtol=0, atol=1e-12)
    assert pca.lineage() == {f"pca_{j}": COLUMNS for j in range(3)}
    assert sum(pca.get_state()["explained_variance_ratio_"]) <= 1.0


def test_svd_matches_scikit_learn_without_centring() -> None:
    train, test = _frame(300), _frame(50, seed=2)
    svd = build_transform({"type": "svd", "columns": COLUMNS, "n_components": 2, "seed": 3}).fit(train)
    reference = TruncatedSVD(n_components=2, random_state=3).fit(train.select(COLUMNS).to_numpy())
    got = svd.transform(test).select("svd_0", "svd_1").to_numpy()
    np.testing.assert_allclose(got, reference.transform(test.select(COLUMNS).to_numpy()), rtol=0, atol=1e-12)
    assert svd.get_state()["mean_"] == [0.0] * 4


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(*[st.floats(-1e6, 1e6) | st.none() for _ in COLUMNS]), min_size=1, max_size=8))
def test_pca_tables_and_records_agree_bit_for_bit(rows: list[tuple[float | None, ...]]) -> None:
    pca = build_transform({"type": "pca", "columns": COLUMNS, "n_components": 4}).fit(_frame(100))
    test = pl.DataFrame(rows, schema=dict.fromkeys(COLUMNS, pl.Float64), orient="row")
    table = pca.transform(test).to_dicts()
    assert table == [pca.transform_record(r) for r in test.to_dicts()]
    assert table[:1] == pca.transform(test.head(1)).to_dicts()  # a one-row frame computes the same


def test_pca_missing_input_gives_missing_outputs_and_is_counted() -> None:
    pca = build_transform({"type": "pca", "columns": COLUMNS, "n_components": 2, "prefix": "p"}).fit(_frame(50))
    assert pca.transform_record({"a": 1.0, "b": None, "c": 0.0, "d": 2, "id": 7}) == {"id": 7, "p_0": None, "p_1": None}
    assert pca.transform(pl.DataFrame({"a": [None], "b": [1.0], "c": [1.0], "d": [1.0]})).row(0) == (None, None)
    assert pca.counts() == {"missing input": 2}


def test_pca_state_round_trips_through_a_chain() -> None:
    chain = Chain.from_config([{"type": "pca", "columns": COLUMNS, "n_components": 2}])
    train = _frame(80)
    chain.fit(train, target="label")
    rebuilt = Chain.from_state(json.loads(json.dumps(chain.to_state())))
    assert rebuilt.transform(train).equals(chain.transform(train))
    assert rebuilt.lineage()["pca_1"] == COLUMNS


def test_pca_errors_name_the_fix() -> None:
    train = _frame(30).with_columns(pl.when(pl.int_range(30) == 4).then(None).otherwise(pl.col("b")).alias("b"))
    with pytest.raises(DataError, match=r"pca: column 'b' has 1 missing .* impute"):
        build_transform({"type": "pca", "columns": COLUMNS}).fit(train)
    with pytest.raises(DataError, match="n_components 5 .* Set n_components: 4 or less"):
        build_transform({"type": "pca", "columns": COLUMNS, "n_components": 5}).fit(_frame(30))
    with pytest.raises(DataError, match="column 'city' is String, not numeric. Encode it first"):
        build_transform({"type": "pca", "columns": ["a", "city"]}).fit(_frame(30))
    with pytest.raises(DataError, match="pca: column 'e' is missing"):
        build_transform({"type": "pca", "columns": ["a", "e"]}).fit(_frame(30))
    with pytest.raises(ConfigError, match="n_components must be an integer >= 1"):
        build_transform({"type": "pca", "columns": COLUMNS, "n_components": 0.5})
    with pytest.raises(ConfigError, match="Did you mean 'n_components'"):
        build_transform({"type": "pca", "columns": COLUMNS, "n_component": 2})
    constant = pl.DataFrame({"a": [1.0] * 5, "b": [2.0] * 5})
    with pytest.raises(DataError, match="constant .* drop_constant"):
        build_transform({"type": "pca", "columns": ["a", "b"], "n_components": 1}).fit(constant)


# -- sample ----------------------------------------------------------------------------------------


def test_sample_is_seeded_and_keeps_row_order() -> None:
    train = _frame(100).with_row_index("id")
    first = build_transform({"type": "sample", "n": 30, "seed": 1}).fit_transform(train)
    assert first.height == 30 and first["id"].is_sorted()
    assert first.equals(build_transform({"type": "sample", "n": 30, "seed": 1}).fit_transform(train))
    assert not first.equals(build_transform({"type": "sample", "n": 30, "seed": 2}).fit_transform(train))
    assert build_transform({"type": "sample", "n": 500}).fit_transform(train).equals(train)


def test_sample_stratified_keeps_the_class_shares() -> None:
    train = pl.DataFrame({"x": range(1000), "label": [0] * 700 + [1] * 250 + [2] * 50})
    out = build_transform({"type": "sample", "fraction": 0.1, "stratify": True}).fit_transform(train, "label")
    assert dict(out["label"].value_counts().iter_rows()) == {0: 70, 1: 25, 2: 5}
    by_column = build_transform({"type": "sample", "n": 20, "stratify": "label"}).fit_transform(train)
    assert dict(by_column["label"].value_counts().iter_rows()) == {0: 14, 1: 5, 2: 1}


def test_allocate_is_exact_largest_remainder() -> None:
    assert allocate([88, 112], 60) == [26, 34]
    assert allocate([1, 1, 1], 2) == [1, 1, 0]
    assert sum(allocate([7, 13, 29, 51], 37)) == 37


def test_sample_time_window_honours_the_time_zone() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    times = [start + timedelta(hours=h) for h in range(48)]
    train = pl.DataFrame({"ts": times, "x": range(48)}).with_columns(pl.col("ts").dt.convert_time_zone("Europe/Paris"))
    window = {"type": "sample", "time_column": "ts", "start": "2024-01-01T10:00:00", "end": "2024-01-02"}
    out = build_transform(window).fit_transform(train)  # naive bounds are Paris time (UTC+1)
    assert out["x"].to_list() == list(range(9, 23))
    utc = build_transform({**window, "start": "2024-01-01T10:00:00+00:00"}).fit_transform(train)
    assert utc["x"].min() == 10
    dates = pl.DataFrame({"d": [datetime(2024, 1, d).date() for d in range(1, 11)], "x": range(10)})
    within = {"type": "sample", "time_column": "d", "start": "2024-01-03", "end": "2024-01-06", "n": 2}
    assert build_transform(within).fit_transform(dates)["x"].is_in([2, 3, 4]).all()


def test_sample_reduces_training_rows_only_in_a_chain() -> None:
    train, test = _frame(200), _frame(40, seed=1)
    chain = Chain.from_config([{"type": "sample", "fraction": 0.25, "stratify": True}, {"type": "drop", "columns": []}])
    assert chain.fit_transform(train, target="label").height == 50
    assert chain.transform(test).equals(test)
    record = test.to_dicts()[0]
    assert chain.transform_record(record) == record
    assert chain.to_state()["transforms"][0]["state"] == {"rows_": {"before": 200, "after": 50}}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"n": 5, "fraction": 0.5}, "give n or fraction, not both"),
        ({"start": "2024-01-01"}, "needs time_column"),
        ({"time_column": "ts"}, "needs time_column and at least one of start, end"),
        ({}, "nothing to sample by"),
        ({"fraction": 1.5}, r"fraction must be a number > 0 and <= 1"),
        ({"n": 5, "stratify": 3}, "stratify must be true, false or a column name"),
        ({"time_column": "ts", "start": "yesterday"}, "is not a date or time.*ISO 8601"),
        ({"time_column": "ts", "start": "2024-02-01", "end": "2024-01-01"}, "is not before end"),
        ({"n": 5, "seed": -1}, "seed must be an integer >= 0"),
    ],
)
def test_sample_option_errors(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_transform({"type": "sample", **spec})


def test_sample_data_errors() -> None:
    train = _frame(20)
    with pytest.raises(DataError, match="stratify: true needs the target"):
        build_transform({"type": "sample", "n": 5, "stratify": True}).fit_transform(train)
    with pytest.raises(DataError, match="'a' is Float64, not a date"):
        build_transform({"type": "sample", "time_column": "a", "end": "2024-01-01"}).fit_transform(train)
    with pytest.raises(DataError, match="keeps no row"):
        build_transform({"type": "sample", "fraction": 0.01}).fit_transform(train)


# -- dropping columns ------------------------------------------------------------------------------


def test_drop_constant_learns_near_constant_columns() -> None:
    train = pl.DataFrame(
        {"one": [1] * 10, "nine": ["a"] * 9 + ["b"], "nulls": [None] * 10, "x": range(10), "label": [0] * 10}
    )
    strict = build_transform({"type": "drop_constant"}).fit(train, "label")
    assert strict.get_state()["dropped_"] == ["one", "nulls"]  # the target is never dropped
    near = build_transform({"type": "drop_constant", "threshold": 0.9}).fit(train, "label")
    assert near.get_state()["dropped_"] == ["one", "nine", "nulls"]
    assert near.get_state()["shares_"]["nine"] == 0.9
    assert near.transform(train).columns == ["x", "label"]
    assert near.transform_record({"one": 1, "x": 3, "label": 1}) == {"x": 3, "label": 1}


def test_drop_correlated_keeps_the_first_of_each_pair() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    train = pl.DataFrame(
        {"a": a, "b": rng.normal(size=200), "minus_a": -3 * a + 1, "near_a": a + rng.normal(0, 0.01, 200)}
    ).with_columns(const=pl.lit(1.0), label=pl.Series(rng.integers(0, 2, 200)))
    dropper = build_transform({"type": "drop_correlated", "threshold": 0.9}).fit(train, "label")
    state = dropper.get_state()
    assert state["dropped_"] == ["minus_a", "near_a"]
    assert [pair[:2] for pair in state["pairs_"]] == [["minus_a", "a"], ["near_a", "a"]]
    assert state["pairs_"][0][2] == pytest.approx(-1.0)
    assert dropper.transform(train).columns == ["a", "b", "const", "label"]
    reversed_order = build_transform({"type": "drop_correlated", "columns": ["near_a", "a", "b"]}).fit(train)
    assert reversed_order.get_state()["dropped_"] == ["a"]
