"""Target encoding: smoothed category means, fitted out-of-fold on the training rows, never its own label."""

from __future__ import annotations

import json
import math
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopline import ConfigError, DataError
from loopline.prep import Chain, build_transform
from loopline.prep._encoding import TargetEncode

FRAME = pl.DataFrame(
    {
        "city": ["lyon", "lyon", "lyon", "paris", "paris", None, "nice", "lyon"],
        "y": [1, 0, 1, 1, 1, 0, None, 1],
    }
)


def encoder(**options: Any) -> TargetEncode:
    transform = build_transform({"type": "target_encode", "columns": ["city"], **options})
    assert isinstance(transform, TargetEncode)
    return transform


def test_fit_learns_smoothed_means_and_unseen_gets_the_prior() -> None:
    transform = encoder(smoothing=2).fit(FRAME, "y")
    prior = 5 / 7  # the row with a null label does not count
    assert transform.kind_ == "binary"
    assert transform.prior_ == [pytest.approx(prior)]
    table = transform.encodings_["city"]
    assert table["lyon"] == [pytest.approx((3 + 2 * prior) / (4 + 2))]
    assert table["(missing)"] == [pytest.approx((0 + 2 * prior) / (1 + 2))]
    assert "nice" not in table  # only a null label: nothing learned
    out = transform.transform(pl.DataFrame({"city": ["paris", "rome", "nice"]}))
    assert out["city"].to_list() == [table["paris"][0], transform.prior_[0], transform.prior_[0]]
    assert transform.counts() == {"city: unseen category": 2}
    assert transform.transform_record({"city": "rome"}) == {"city": transform.prior_[0]}
    assert transform.counts() == {"city: unseen category": 3}


def test_smoothing_zero_is_the_plain_mean_and_state_is_json() -> None:
    transform = encoder(smoothing=0).fit(FRAME, "y")
    assert transform.encodings_["city"]["lyon"] == [0.75]
    assert transform.encodings_["city"]["paris"] == [1.0]
    state = transform.get_state()
    assert json.loads(json.dumps(state, allow_nan=False)) == state


def test_training_rows_are_encoded_out_of_fold() -> None:
    frame = pl.DataFrame({"city": ["a", "b"] * 10, "y": [float(i % 3) for i in range(20)]})
    transform = encoder(smoothing=1, folds=4, seed=3)
    encoded = transform.fit_transform(frame, "y")["city"].to_list()
    folds = transform._fold_ids(frame.height)
    assert sorted(folds.tolist()) == sorted([0, 1, 2, 3] * 5)
    for row in range(frame.height):
        others = [i for i in range(frame.height) if folds[i] != folds[row]]
        prior = sum(frame["y"][i] for i in others) / len(others)
        same = [frame["y"][i] for i in others if frame["city"][i] == frame["city"][row]]
        assert encoded[row] == pytest.approx((sum(same) + prior) / (len(same) + 1))
    # transform() after fit_transform uses the statistics of all rows, not the folds
    full = encoder(smoothing=1).fit(frame, "y").encodings_
    assert transform.encodings_ == full
    assert transform.counts() == {}


@settings(max_examples=40, deadline=None, database=None)
@given(
    cities=st.lists(st.sampled_from(["a", "b", "c", None]), min_size=6, max_size=30),
    data=st.data(),
)
def test_a_training_row_never_sees_its_own_label(cities: list[str | None], data: st.DataObject) -> None:
    labels = data.draw(st.lists(st.integers(0, 1), min_size=len(cities), max_size=len(cities)))
    row = data.draw(st.integers(0, len(cities) - 1))
    frame = pl.DataFrame({"city": cities, "y": labels})
    flipped = frame.with_columns(pl.when(pl.int_range(pl.len()) == row).then(1 - pl.col("y")).otherwise("y"))
    before = encoder(folds=3, smoothing=1).fit_transform(frame, "y")["city"]
    after = encoder(folds=3, smoothing=1).fit_transform(flipped, "y")["city"]
    assert before[row] == after[row]  # bit for bit: its own label is never read


def test_without_folds_the_own_label_would_leak() -> None:
    """The reason for out-of-fold: a category seen once encodes its own label exactly with smoothing 0."""
    frame = pl.DataFrame({"id": [str(i) for i in range(10)], "y": [i % 2 for i in range(10)]})
    transform = build_transform({"type": "target_encode", "columns": ["id"], "smoothing": 0})
    in_sample = transform.fit(frame, "y").transform(frame)["id"].to_list()
    assert in_sample == [float(i % 2) for i in range(10)]  # the label itself
    out_of_fold = transform.fit_transform(frame, "y")["id"].to_list()
    assert len(set(out_of_fold)) < 10 and all(0 < v < 1 for v in out_of_fold)  # only fold priors


def test_chain_fits_out_of_fold_and_serves_full_statistics() -> None:
    chain = Chain.from_config([{"type": "target_encode", "columns": ["city"], "folds": 2}])
    train = chain.fit_transform(FRAME, target="y")
    assert train.columns == ["city", "y"]
    state = Chain.from_state(json.loads(json.dumps(chain.to_state())))
    record = state.transform_record({"city": "lyon"})
    assert record["city"] == state.transform(pl.DataFrame({"city": ["lyon"]}))["city"][0]
    assert chain.lineage() == {"city": ["city"]}


def test_continuous_target() -> None:
    frame = pl.DataFrame({"g": [1, 1, 2, 2], "price": [10.0, 20.0, 100.0, float("nan")]})
    transform = build_transform({"type": "target_encode", "columns": ["g"], "smoothing": 0}).fit(frame, "price")
    assert transform.kind_ == "continuous"  # type: ignore[attr-defined]
    assert transform.transform(pl.DataFrame({"g": [1, 2, 3]}))["g"].to_list() == [15.0, 100.0, pytest.approx(130 / 3)]


def test_multiclass_makes_one_column_per_class_and_drops_the_source() -> None:
    frame = pl.DataFrame({"city": ["a", "a", "b", "b"], "other": [1, 2, 3, 4], "kind": ["x", "y", "z", "z"]})
    transform = build_transform({"type": "target_encode", "columns": ["city"], "smoothing": 0, "folds": 2})
    out = transform.fit(frame, "kind").transform(frame)
    assert out.columns == ["other", "kind", "city_x", "city_y", "city_z"]
    assert out.row(0) == (1, "x", 0.5, 0.5, 0.0)
    record = transform.transform_record({"other": 1, "city": "a"})
    assert record == {"other": 1, "city_x": 0.5, "city_y": 0.5, "city_z": 0.0}
    assert transform.lineage() == {"city_x": ["city"], "city_y": ["city"], "city_z": ["city"]}
    assert transform.fit_transform(frame, "kind").columns == out.columns


def test_binary_text_labels_encode_the_larger_one() -> None:
    frame = pl.DataFrame({"c": ["a", "a", "b"], "churn": ["yes", "no", "no"]})
    transform = build_transform({"type": "target_encode", "columns": ["c"], "smoothing": 0}).fit(frame, "churn")
    assert transform.classes_ == ["no", "yes"]  # type: ignore[attr-defined]
    assert transform.transform_record({"c": "a"}) == {"c": 0.5}


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"target_type": "binay"}, ConfigError, "invalid target_type 'binay'.*Did you mean 'binary'"),
        ({"smoothing": -1}, ConfigError, "smoothing must be a number >= 0"),
        ({"folds": 1}, ConfigError, "folds must be an integer >= 2.*folds: 5"),
        ({"columns": []}, ConfigError, "no columns given"),
    ],
)
def test_bad_options_are_refused_with_the_fix(options: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        build_transform({"type": "target_encode", "columns": ["city"], **options})


def test_data_errors_name_the_column_and_the_fix() -> None:
    with pytest.raises(DataError, match="no target was given.*target='label'"):
        encoder().fit(FRAME)
    with pytest.raises(DataError, match="column 'citty' is missing.*Did you mean 'city'"):
        build_transform({"type": "target_encode", "columns": ["citty"]}).fit(FRAME, "y")
    with pytest.raises(ConfigError, match="the target 'y' cannot encode itself"):
        build_transform({"type": "target_encode", "columns": ["y"]}).fit(FRAME, "y")
    floats = pl.DataFrame({"x": [1.5, 2.5], "y": [0, 1]})
    with pytest.raises(DataError, match="'x' is Float64; categories must be text.*Cast 'x'"):
        build_transform({"type": "target_encode", "columns": ["x"]}).fit(floats, "y")
    three = pl.DataFrame({"c": ["a", "b", "c"], "y": [0, 1, 2]})
    with pytest.raises(DataError, match="binary, but the target 'y' has 3 values.*multiclass"):
        build_transform({"type": "target_encode", "columns": ["c"], "target_type": "binary"}).fit(three, "y")
    many = pl.DataFrame({"c": ["a"] * 60, "y": [f"k{i}" for i in range(60)]})
    with pytest.raises(DataError, match="60 classes.*stops at 50"):
        build_transform({"type": "target_encode", "columns": ["c"]}).fit(many, "y")
    infinite = pl.DataFrame({"c": ["a", "b", "c"], "y": [1.5, math.inf, 0.2]})
    with pytest.raises(DataError, match="infinite values.*Clip or drop"):
        build_transform({"type": "target_encode", "columns": ["c"]}).fit(infinite, "y")
    with pytest.raises(DataError, match="3 training rows cannot make 5 folds.*folds: 3"):
        build_transform({"type": "target_encode", "columns": ["c"]}).fit_transform(three, "y")
    with pytest.raises(DataError, match="has no value in the training rows"):
        encoder().fit(pl.DataFrame({"city": ["a"], "y": [None]}, schema={"city": pl.String, "y": pl.Int64}), "y")


@settings(max_examples=60, deadline=None, database=None)
@given(
    train=st.lists(st.tuples(st.sampled_from(["a", "b", "é", "", None]), st.integers(0, 1)), min_size=2, max_size=25),
    test=st.lists(st.one_of(st.none(), st.text(max_size=3), st.sampled_from(["a", "b"])), min_size=1, max_size=10),
    smoothing=st.sampled_from([0, 0.5, 10]),
)
def test_table_and_records_agree(train: list[tuple[str | None, int]], test: list[str | None], smoothing: float) -> None:
    frame = pl.DataFrame(
        {"c": [t[0] for t in train], "y": [t[1] for t in train]}, schema={"c": pl.String, "y": pl.Int64}
    )
    transform = build_transform({"type": "target_encode", "columns": ["c"], "smoothing": smoothing}).fit(frame, "y")
    new = pl.DataFrame({"c": test}, schema={"c": pl.String})
    assert transform.transform(new).to_dicts() == [transform.transform_record(r) for r in new.to_dicts()]


@pytest.mark.parametrize("type_name", ["onehot", "ordinal"])
def test_float_columns_are_refused_as_categories(type_name: str) -> None:
    frame = pl.DataFrame({"x": [1e-7, 2.0, 2.0]})
    with pytest.raises(DataError, match=r"column 'x' holds floats.*Cast it to an integer or a string"):
        build_transform({"type": type_name, "columns": ["x"]}).fit(frame)
