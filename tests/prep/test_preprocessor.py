from __future__ import annotations

import json
import math
import os

import numpy as np
import palmerpenguins
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopline.core.errors import ConfigError, DataError, SchemaValidationError
from loopline.prep import MISSING_CATEGORY, Preprocessor

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL = ["island", "sex"]


@pytest.fixture(scope="module")
def penguins() -> pl.DataFrame:
    return pl.from_pandas(palmerpenguins.load_penguins())


def test_fit_transform_shape_names_and_scaling(penguins: pl.DataFrame) -> None:
    prep = Preprocessor(NUMERIC, CATEGORICAL).fit(penguins)
    matrix = prep.transform(penguins)
    assert matrix.dtype == np.float64
    assert matrix.shape == (penguins.height, len(prep.feature_names_))
    assert prep.feature_names_[:4] == NUMERIC
    assert "island=Biscoe" in prep.feature_names_ and "sex=male" in prep.feature_names_
    assert np.isfinite(matrix).all()
    np.testing.assert_allclose(matrix[:, :4].mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(matrix[:, :4].std(axis=0), 1.0, rtol=1e-9)
    one_hot = matrix[:, 4:]
    assert set(np.unique(one_hot)) <= {0.0, 1.0}
    assert (one_hot.sum(axis=1) == len(CATEGORICAL)).all()  # nulls are imputed, every row has one per column


def test_nulls_take_the_median_and_most_frequent(penguins: pl.DataFrame) -> None:
    prep = Preprocessor(NUMERIC, CATEGORICAL, scale=None).fit(penguins)
    median = float(penguins["bill_length_mm"].median())  # type: ignore[arg-type]
    assert prep.fill_[0] == median
    assert prep.category_fill_[1] == penguins["sex"].drop_nulls().mode().sort()[0]
    row = prep.transform_records([{"island": "Dream"}])[0]
    assert row[0] == median


def test_records_equal_table_on_penguins(penguins: pl.DataFrame) -> None:
    prep = Preprocessor(NUMERIC, [*CATEGORICAL, "year"]).fit(penguins)
    np.testing.assert_array_equal(prep.transform_records(penguins.to_dicts()), prep.transform(penguins))


def test_unseen_category_is_an_all_zero_row(penguins: pl.DataFrame) -> None:
    prep = Preprocessor([], ["island"]).fit(penguins)
    assert prep.transform_records([{"island": "Atlantis"}]).tolist() == [[0.0, 0.0, 0.0]]
    table = prep.transform(pl.DataFrame({"island": ["Atlantis", "Dream"]}))
    assert table.tolist() == [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    ordinal = Preprocessor([], ["island"], encode="ordinal").fit(penguins)
    assert ordinal.transform_records([{"island": "Atlantis"}, {"island": "Torgersen"}]).tolist() == [[-1.0], [2.0]]


def test_max_categories_and_min_frequency_drop_rare_values() -> None:
    df = pl.DataFrame({"c": ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"]})
    assert Preprocessor([], ["c"], max_categories=2).fit(df).categories_ == [["a", "b"]]
    assert Preprocessor([], ["c"], min_frequency=2).fit(df).categories_ == [["a", "b", "c"]]


def test_constant_imputation_uses_fill_value_and_missing_category() -> None:
    df = pl.DataFrame({"x": [1.0, None, 3.0], "c": ["a", None, "a"]})
    prep = Preprocessor(
        ["x"], ["c"], impute_numeric="constant", fill_value=-5.0, impute_categorical="constant", scale=None
    ).fit(df)
    assert prep.feature_names_ == ["x", f"c={MISSING_CATEGORY}", "c=a"]
    assert prep.transform(df).tolist() == [[1.0, 0.0, 1.0], [-5.0, 1.0, 0.0], [3.0, 0.0, 1.0]]


def test_minmax_scaling_and_constant_column() -> None:
    df = pl.DataFrame({"x": [2.0, 4.0, 6.0], "k": [7, 7, 7]})
    prep = Preprocessor(["x", "k"], [], scale="minmax").fit(df)
    assert prep.transform(df).tolist() == [[0.0, 0.0], [0.5, 0.0], [1.0, 0.0]]


def test_fitted_state_ignores_later_data(penguins: pl.DataFrame) -> None:
    prep = Preprocessor(NUMERIC, CATEGORICAL).fit(penguins)
    before = json.dumps(prep.to_state())
    shifted = penguins.with_columns(pl.col("body_mass_g") * 10 + 1e6, pl.lit("Mars").alias("island"))
    out = prep.transform(shifted)
    prep.transform_records(shifted.to_dicts())
    assert json.dumps(prep.to_state()) == before
    mass = out[:, NUMERIC.index("body_mass_g")]
    observed = shifted["body_mass_g"].is_not_null().to_numpy()
    assert mass[observed].min() > 100  # scaled with the training statistics
    assert abs(mass[~observed]).max() < 1  # nulls still take the training median
    islands = [i for i, name in enumerate(prep.feature_names_) if name.startswith("island=")]
    assert not out[:, islands].any()  # "Mars" was never seen


def test_state_round_trips_through_json(penguins: pl.DataFrame) -> None:
    prep = Preprocessor(NUMERIC, CATEGORICAL, impute_numeric="mean", encode="ordinal").fit(penguins)
    again = Preprocessor.from_state(json.loads(json.dumps(prep.to_state())))
    assert again.get_params() == prep.get_params()
    np.testing.assert_array_equal(again.transform(penguins), prep.transform(penguins))


def test_fit_on_shuffled_rows_gives_the_same_state(penguins: pl.DataFrame) -> None:
    first = Preprocessor(NUMERIC, CATEGORICAL).fit(penguins).to_state()
    second = Preprocessor(NUMERIC, CATEGORICAL).fit(penguins.sample(fraction=1.0, shuffle=True, seed=3)).to_state()
    assert first["categories"] == second["categories"] and first["fill"] == second["fill"]
    np.testing.assert_allclose(first["center"], second["center"], rtol=1e-12)


def test_input_schema(penguins: pl.DataFrame) -> None:
    schema = Preprocessor(["body_mass_g"], ["island"]).input_schema()
    assert schema == [
        {"name": "body_mass_g", "dtype": "number", "nullable": True},
        {"name": "island", "dtype": "string", "nullable": True},
    ]


def test_missing_column_is_named_with_a_suggestion(penguins: pl.DataFrame) -> None:
    with pytest.raises(DataError, match=r"'body_mass'.*Did you mean 'body_mass_g'") as info:
        Preprocessor(["body_mass"], []).fit(penguins)
    assert info.value.column == "body_mass"
    prep = Preprocessor(NUMERIC, CATEGORICAL).fit(penguins)
    with pytest.raises(DataError, match="'island' is missing"):
        prep.transform(penguins.drop("island"))


def test_text_column_listed_as_numeric_is_refused(penguins: pl.DataFrame) -> None:
    with pytest.raises(DataError, match="numeric column 'island' has type String.*categorical"):
        Preprocessor(["island"], []).fit(penguins)


def test_record_with_text_for_a_number_is_refused(penguins: pl.DataFrame) -> None:
    prep = Preprocessor(NUMERIC, []).fit(penguins)
    with pytest.raises(SchemaValidationError, match="'body_mass_g': expected a number, got str"):
        prep.transform_records([{"body_mass_g": "heavy"}])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"impute_numeric": "medain"}, "invalid impute_numeric 'medain'.*Did you mean 'median'"),
        ({"scale": "zscore"}, "invalid scale 'zscore'"),
        ({"encode": "one-hot"}, "Did you mean 'onehot'"),
        ({"max_categories": 0}, "at least 1"),
    ],
)
def test_invalid_options_are_refused(penguins: pl.DataFrame, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Preprocessor(NUMERIC, [], **kwargs).fit(penguins)  # type: ignore[arg-type]


def test_column_in_both_lists_and_empty_table_are_refused(penguins: pl.DataFrame) -> None:
    with pytest.raises(ConfigError, match="both numeric and categorical"):
        Preprocessor(["year"], ["year"]).fit(penguins)
    with pytest.raises(DataError, match="empty table"):
        Preprocessor(NUMERIC, []).fit(penguins.clear())


def test_unfitted_and_malformed_state_are_refused(penguins: pl.DataFrame) -> None:
    with pytest.raises(ConfigError, match="not fitted"):
        Preprocessor(NUMERIC, []).transform(penguins)
    state = Preprocessor(NUMERIC, []).fit(penguins).to_state()
    with pytest.raises(DataError, match="malformed"):
        Preprocessor.from_state({k: v for k, v in state.items() if k != "fill"})
    with pytest.raises(DataError, match="inconsistent"):
        Preprocessor.from_state({**state, "fill": [0.0]})


def test_non_string_categories_compare_as_str() -> None:
    df = pl.DataFrame({"flag": [True, False, None], "code": [1, 2, 2]})
    prep = Preprocessor([], ["flag", "code"]).fit(df)
    assert prep.categories_ == [["False", "True"], ["1", "2"]]
    np.testing.assert_array_equal(prep.transform_records(df.to_dicts()), prep.transform(df))


# -- property: batch and single-record outputs are identical ---------------------------------------

_SCHEMA = {"f": pl.Float64, "i": pl.Int64, "b": pl.Boolean, "s": pl.String, "k": pl.Int64}
_floats = st.one_of(
    st.none(),
    st.floats(min_value=-1e12, max_value=1e12),
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.integers(-5, 5),
)
_rows = st.fixed_dictionaries(
    {
        "f": _floats.map(lambda v: None if v is None else float(v)),
        "i": st.one_of(st.none(), st.integers(-(2**40), 2**40)),
        "b": st.one_of(st.none(), st.booleans()),
        "s": st.one_of(st.none(), st.sampled_from(["a", "b", "c", "unseen", "ü"])),
        "k": st.one_of(st.none(), st.integers(0, 4)),
    }
)
_options = st.fixed_dictionaries(
    {
        "impute_numeric": st.sampled_from(["median", "mean", "constant"]),
        "impute_categorical": st.sampled_from(["most_frequent", "constant"]),
        "scale": st.sampled_from(["standard", "minmax", None]),
        "encode": st.sampled_from(["onehot", "ordinal"]),
        "max_categories": st.integers(1, 4),
        "min_frequency": st.integers(1, 3),
    }
)


@settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "60")), deadline=None, database=None)
@given(
    train=st.lists(_rows, min_size=1, max_size=25),
    other=st.lists(_rows, min_size=0, max_size=25),
    options=_options,
    drop_nulls=st.booleans(),
)
def test_records_and_table_give_identical_floats(
    train: list[dict[str, object]], other: list[dict[str, object]], options: dict[str, object], drop_nulls: bool
) -> None:
    train_df = pl.DataFrame(train, schema=_SCHEMA)
    other_df = pl.DataFrame(other, schema=_SCHEMA)
    prep = Preprocessor(["f", "i", "b"], ["s", "k"], **options).fit(train_df)  # type: ignore[arg-type]
    state = json.dumps(prep.to_state())
    table = prep.transform(other_df)
    records = other_df.to_dicts()
    if drop_nulls:  # an absent key counts as null
        records = [{k: v for k, v in r.items() if v is not None} for r in records]
    np.testing.assert_array_equal(prep.transform_records(records), table)
    assert table.shape == (other_df.height, len(prep.feature_names_))
    assert all(math.isfinite(v) for v in table.ravel().tolist())
    assert json.dumps(prep.to_state()) == state


def test_a_denormal_spread_is_treated_as_constant() -> None:
    """Found by Hypothesis: minmax over [0, 5e-324] divided 1.0 by a denormal spread and overflowed to inf."""
    train = pl.DataFrame({"f": [None, 5e-324]}, schema={"f": pl.Float64})
    prep = Preprocessor(["f"], [], impute_numeric="constant", scale="minmax").fit(train)
    out = prep.transform(pl.DataFrame({"f": [None, 1.0]}, schema={"f": pl.Float64}))
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(prep.transform_records([{"f": None}, {"f": 1.0}]), out)
