"""Cleaning transforms: rename, strings, the training-only row filters and outliers."""

from __future__ import annotations

import math
import random
import sys
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopline.core.errors import ConfigError, DataError
from loopline.prep import Chain, build_transform
from loopline.prep._cleaning import snake_case

from .agreement import assert_paths_agree

# -- rename ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Unit Price", "unit_price"),
        ("orderDate", "order_date"),
        ("HTTPStatusCode", "http_status_code"),
        ("amount (€)", "amount"),
        ("already_snake", "already_snake"),
        ("  Trailing--dash- ", "trailing_dash"),
        ("Prix Unitaire é", "prix_unitaire_é"),
        ("v2Score", "v2_score"),
        ("$$$", "$$$"),
    ],
)
def test_snake_case(name: str, expected: str) -> None:
    assert snake_case(name) == expected


def test_rename_by_rule_fixes_names_at_fit_and_keeps_the_target() -> None:
    train = pl.DataFrame({"Unit Price": [1.0], "orderDate": ["x"], "Label": [1]})
    rename = build_transform({"type": "rename", "rule": "snake_case"}).fit(train, target="Label")
    assert rename.get_state() == {"mapping_": {"Unit Price": "unit_price", "orderDate": "order_date"}}
    assert rename.transform(train).columns == ["unit_price", "order_date", "Label"]
    # a column training did not have keeps its name; an absent one is simply absent
    assert rename.transform_record({"New Col": 1, "Unit Price": 2.0}) == {"New Col": 1, "unit_price": 2.0}
    assert rename.lineage() == {"unit_price": ["Unit Price"], "order_date": ["orderDate"]}


def test_rename_through_a_chain_traces_lineage() -> None:
    chain = Chain.from_config(
        [{"type": "rename", "columns": {"amt": "amount"}}, {"type": "log", "columns": ["amount"]}]
    )
    chain.fit(pl.DataFrame({"amt": [1.0, 2.0], "y": [0, 1]}), target="y")
    assert chain.lineage() == {"amount": ["amt"]}
    assert chain.transform_record({"amt": math.e - 1}) == {"amount": 1.0}


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({}, ConfigError, "nothing to rename. Add columns"),
        ({"columns": {"a": "b"}, "rule": "lower"}, ConfigError, "either columns: {old: new} or a rule"),
        ({"rule": "snake"}, ConfigError, "invalid rule 'snake'. Did you mean 'snake_case'"),
        ({"rule": "prefix"}, ConfigError, "needs the text to add"),
        ({"columns": {"a": ""}}, ConfigError, "column 'a' has no new name"),
    ],
)
def test_rename_options_are_checked(options: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        build_transform({"type": "rename", **options})


def test_rename_refuses_collisions_the_target_and_typos() -> None:
    frame = pl.DataFrame({"Amount": [1], "amount": [2], "y": [0]})
    with pytest.raises(DataError, match="columns 'Amount' and 'amount' would both be named 'amount'"):
        build_transform({"type": "rename", "rule": "lower"}).fit(frame)
    with pytest.raises(DataError, match="'y' is the target column"):
        build_transform({"type": "rename", "columns": {"y": "label"}}).fit(frame, target="y")
    with pytest.raises(DataError, match="rename: column 'amont' is missing. Did you mean 'amount'"):
        build_transform({"type": "rename", "columns": {"amont": "x"}}).fit(frame)
    rename = build_transform({"type": "rename", "columns": {"Amount": "total"}}).fit(frame)
    with pytest.raises(DataError, match="would both be named 'total'"):
        rename.transform_record({"Amount": 1, "total": 2})
    with pytest.raises(DataError, match="would both be named 'total'"):
        rename.transform(pl.DataFrame({"Amount": [1], "total": [2]}))


# -- strings ---------------------------------------------------------------------------------------


def test_strings_cleans_text_in_order() -> None:
    frame = pl.DataFrame({"city": ["  Saint\u3000 Étienne\t", "ＬＹＯＮ", "", "   ", None, "ﬁne"]})
    strings = build_transform({"type": "strings", "columns": ["city"], "case": "lower"})
    assert assert_paths_agree(strings, frame) == [
        {"city": "saint étienne"},
        {"city": "lyon"},
        {"city": None},
        {"city": None},
        {"city": None},
        {"city": "fine"},
    ]
    plain = build_transform(
        {"type": "strings", "columns": ["city"], "normalize": False, "collapse_spaces": False, "empty_to_null": False}
    )
    assert [r["city"] for r in assert_paths_agree(plain, frame)] == [
        "Saint\u3000 Étienne",
        "ＬＹＯＮ",
        "",
        "",
        None,
        "ﬁne",
    ]


def test_strings_refuses_what_is_not_text() -> None:
    strings = build_transform({"type": "strings", "columns": ["n"]})
    with pytest.raises(DataError, match=r"column 'n' is Int64, not text. Cast it first \({type: cast"):
        strings.transform(pl.DataFrame({"n": [1]}))
    with pytest.raises(DataError, match="column 'n' is int, not text"):
        strings.transform_record({"n": 1})
    with pytest.raises(ConfigError, match="invalid case 'lowercase'. Did you mean 'lower'"):
        build_transform({"type": "strings", "columns": ["n"], "case": "lowercase"})


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.none() | st.text(max_size=12), min_size=1, max_size=12),
    case=st.sampled_from([None, "lower", "upper"]),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
)
def test_strings_tables_and_records_agree_on_any_text(
    values: list[str | None], case: str | None, flags: tuple[bool, bool, bool, bool]
) -> None:
    trim, normalize, collapse, empty = flags
    strings = build_transform(
        {
            "type": "strings",
            "columns": ["s"],
            "trim": trim,
            "case": case,
            "normalize": normalize,
            "collapse_spaces": collapse,
            "empty_to_null": empty,
        }
    )
    assert_paths_agree(strings, pl.DataFrame({"s": values}, schema={"s": pl.String}))


# -- training-only row filters ---------------------------------------------------------------------

ROWS = pl.DataFrame(
    {
        "id": [1, 2, 2, 3, 4, 5],
        "amount": [10.0, None, None, float("nan"), -5.0, 7.0],
        "city": ["a", "b", "b", None, "c", "a"],
        "label": [0, 1, 1, 0, 1, 0],
    }
)


@pytest.mark.parametrize(
    ("spec", "kept_ids"),
    [
        ({"type": "dedupe"}, [1, 2, 3, 4, 5]),
        ({"type": "dedupe", "columns": ["city"]}, [1, 2, 3, 4]),
        ({"type": "dedupe", "columns": ["city"], "keep": "last"}, [2, 3, 4, 5]),
        ({"type": "filter", "expr": "amount > 0"}, [1, 3, 5]),  # null is not true; NaN > 0 (polars' order)
        ({"type": "filter", "expr": "city == 'a' or id >= 4"}, [1, 4, 5]),
        ({"type": "drop_missing"}, [1, 4, 5]),
        ({"type": "drop_missing", "columns": ["city"]}, [1, 2, 2, 4, 5]),
        ({"type": "drop_missing", "columns": ["amount", "city"], "how": "all"}, [1, 2, 2, 4, 5]),
    ],
)
def test_row_filters_remove_training_rows_only(spec: dict[str, Any], kept_ids: list[int]) -> None:
    transform = build_transform(spec)
    assert transform.train_only
    kept = transform.fit_transform(ROWS, target="label")
    assert kept["id"].to_list() == kept_ids
    assert transform.transform(ROWS).equals(ROWS)
    assert transform.transform_record({"id": 9, "amount": None}) == {"id": 9, "amount": None}


def test_row_filters_apply_in_a_chain_to_training_rows_only() -> None:
    chain = Chain.from_config(
        [{"type": "dedupe"}, {"type": "drop_missing", "columns": ["amount"]}, {"type": "filter", "expr": "id < 5"}]
    )
    assert chain.fit_transform(ROWS, target="label")["id"].to_list() == [1, 4]
    assert chain.transform(ROWS).height == ROWS.height
    assert chain.transform_record({"id": 7, "amount": None}) == {"id": 7, "amount": None}


def test_row_filter_errors_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="filter: no expression given. Add expr"):
        build_transform({"type": "filter", "expr": " "})
    with pytest.raises(ConfigError, match="unknown function 'lg'"):
        build_transform({"type": "filter", "expr": "lg(amount) > 1"})
    with pytest.raises(DataError, match="filter: column 'amout' is missing. Did you mean 'amount'"):
        build_transform({"type": "filter", "expr": "amout > 1"}).fit_transform(ROWS)
    with pytest.raises(DataError, match="gives Float64, not true/false. Write a condition"):
        build_transform({"type": "filter", "expr": "amount * 2"}).fit_transform(ROWS)
    with pytest.raises(ConfigError, match="invalid keep 'firts'. Did you mean 'first'"):
        build_transform({"type": "dedupe", "keep": "firts"})
    with pytest.raises(ConfigError, match="invalid how 'some'"):
        build_transform({"type": "drop_missing", "how": "some"})


# -- outliers --------------------------------------------------------------------------------------


def test_outliers_clip_to_iqr_fences_learned_on_training_rows() -> None:
    train = pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0, None, float("nan"), float("inf")], "y": list(range(8))})
    outliers = build_transform({"type": "outliers", "columns": ["x"]}).fit(train, target="y")
    assert outliers.get_state() == {"fences_": {"x": [-1.0, 7.0]}}  # quartiles 2 and 4 of the finite values
    test = pl.DataFrame({"x": [-100.0, 0.5, 100.0, None, float("nan"), float("-inf")]})
    assert [r["x"] for r in assert_paths_agree(outliers, test)][:4] == [-1.0, 0.5, 7.0, None]
    assert outliers.counts() == {"x: clipped": 3 * 3}  # -100, 100 and -inf; by table, one-row tables, records
    assert outliers.get_state() == {"fences_": {"x": [-1.0, 7.0]}}  # test rows changed nothing


def test_outliers_quantile_fences() -> None:
    train = pl.DataFrame({"x": [float(i) for i in range(101)]})
    outliers = build_transform(
        {"type": "outliers", "columns": ["x"], "method": "quantile", "lower": 0.05, "upper": 0.9}
    ).fit(train)
    assert outliers.get_state() == {"fences_": {"x": [5.0, 90.0]}}


def test_outliers_drop_removes_training_rows_and_leaves_others_unchanged() -> None:
    train = pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0, 50.0, None, float("nan")], "n": [1, 2, 3, 4, 5, 6, 7, 8]})
    outliers = build_transform({"type": "outliers", "columns": ["x"], "action": "drop"})
    kept = outliers.fit_transform(train)
    assert kept["n"].to_list() == [1, 2, 3, 4, 5, 7, 8]  # NaN and null are not outliers
    assert outliers.counts() == {}  # training rows are not serving-time events
    test = pl.DataFrame({"x": [100.0, 2.0, -100.0]})
    assert outliers.transform(test).equals(test)
    assert outliers.transform_record({"x": 100.0}) == {"x": 100.0}
    assert outliers.counts() == {"x: beyond the fences": 3}
    assert outliers.lineage() == {}


def test_outliers_fences_stay_finite() -> None:
    extreme = pl.DataFrame({"x": [-1e308, -1e308, 1e308, 1e308]})
    outliers = build_transform({"type": "outliers", "columns": ["x"]}).fit(extreme)
    assert outliers.get_state() == {"fences_": {"x": [-sys.float_info.max, sys.float_info.max]}}
    assert outliers.transform_record({"x": float("-inf")}) == {"x": -sys.float_info.max}
    narrow = build_transform({"type": "outliers", "columns": ["x"], "factor": 0}).fit(extreme)
    assert narrow.get_state() == {"fences_": {"x": [-1e308, 1e308]}}


def test_outliers_options_and_columns_are_checked() -> None:
    with pytest.raises(ConfigError, match="0 <= lower < upper <= 1, got 0.9 and 0.1"):
        build_transform({"type": "outliers", "columns": ["x"], "lower": 0.9, "upper": 0.1})
    with pytest.raises(ConfigError, match="invalid action 'clamp'. Did you mean 'clip'"):
        build_transform({"type": "outliers", "columns": ["x"], "action": "clamp"})
    with pytest.raises(ConfigError, match="factor must be a number >= 0"):
        build_transform({"type": "outliers", "columns": ["x"], "factor": -1})
    outliers = build_transform({"type": "outliers", "columns": ["x"]})
    with pytest.raises(DataError, match=r"outliers: column 'x' is String; it needs numbers. Convert it first"):
        outliers.fit(pl.DataFrame({"x": ["1"]}))
    outliers.fit(pl.DataFrame({"x": [1.0]}))
    with pytest.raises(DataError, match="column 'x' has str value '3'; it needs numbers"):
        outliers.transform_record({"x": "3"})


@settings(max_examples=100, deadline=None)
@given(
    train=st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=30),
    test=st.lists(st.none() | st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=20),
    method=st.sampled_from(["iqr", "quantile"]),
)
def test_outliers_tables_and_records_agree(train: list[float], test: list[float | None], method: str) -> None:
    outliers = build_transform({"type": "outliers", "columns": ["x"], "method": method})
    outliers.fit(pl.DataFrame({"x": train}))
    shuffled = train[:]
    random.Random(0).shuffle(shuffled)
    refit = build_transform({"type": "outliers", "columns": ["x"], "method": method})
    assert refit.fit(pl.DataFrame({"x": shuffled})) == outliers  # fences do not depend on the row order
    assert_paths_agree(outliers, pl.DataFrame({"x": test}, schema={"x": pl.Float64}))
