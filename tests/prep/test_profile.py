"""profile_table: per-column statistics of a known frame, as plain JSON."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopline.prep import PROFILE_FORMAT, profile_table

NAN, INF = float("nan"), float("inf")


def known_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "amount": [1.0, 2.0, None, NAN, 4.0, INF, 3.0, 2.0],
            "qty": [1, 2, 2, None, 3, 3, 3, 3],
            "city": ["lyon", "paris", "lyon", None, "a<b&c", "lyon", "", "paris"],
            "kind": pl.Series(["x", "y", "x", "x", None, "y", "x", "z"], dtype=pl.Categorical),
            "ok": [True, False, None, True, True, True, False, True],
            "at": [datetime(2024, 1, 1, tzinfo=UTC), None, datetime(2024, 1, 3, tzinfo=UTC)] + [None] * 5,
            "day": [date(2024, 1, 1), date(2024, 1, 3), None, None, date(2024, 1, 1), None, None, None],
            "nothing": pl.Series([None] * 8, dtype=pl.Float64),
            "void": [None] * 8,
            "tags": [["a"], [], None, ["b"], ["a"], ["c"], [], ["a"]],
        },
        schema_overrides={"at": pl.Datetime("us", "UTC")},
    )


def by_name(profile: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {column["name"]: column for column in profile["columns"]}


@pytest.fixture(scope="module")
def profile() -> dict[str, Any]:
    return profile_table(known_frame())


def test_the_shape_and_column_order(profile: dict[str, Any]) -> None:
    assert (profile["format"], profile["rows"], profile["n_columns"]) == (PROFILE_FORMAT, 8, 10)
    assert [c["name"] for c in profile["columns"]] == known_frame().columns
    kinds = {c["name"]: c["kind"] for c in profile["columns"]}
    assert kinds == {
        "amount": "numeric",
        "qty": "numeric",
        "city": "string",
        "kind": "categorical",
        "ok": "boolean",
        "at": "datetime",
        "day": "datetime",
        "nothing": "numeric",
        "void": "other",
        "tags": "other",
    }


def test_it_is_plain_json_without_nan_or_infinity(profile: dict[str, Any]) -> None:
    assert json.loads(json.dumps(profile, allow_nan=False)) == profile


def test_floats_count_nulls_nan_and_infinity_apart(profile: dict[str, Any]) -> None:
    amount = by_name(profile)["amount"]
    assert (amount["count"], amount["nulls"], amount["nan"], amount["infinite"]) == (6, 1, 1, 1)
    assert amount["missing_share"] == pytest.approx(2 / 8)
    assert (amount["distinct"], amount["distinct_exact"]) == (5, True)  # 1, 2, 3, 4 and inf
    # statistics over the finite values 1, 2, 4, 3, 2
    assert (amount["min"], amount["max"], amount["mean"]) == (1.0, 4.0, pytest.approx(2.4))
    assert amount["std"] == pytest.approx(1.140175, rel=1e-5)
    assert amount["quantiles"]["p50"] == 2.0 and list(amount["quantiles"]) == [
        "p01",
        "p05",
        "p25",
        "p50",
        "p75",
        "p95",
        "p99",
    ]
    histogram = amount["histogram"]
    assert histogram["type"] == "bins" and len(histogram["edges"]) == len(histogram["counts"]) + 1 == 21
    assert (histogram["edges"][0], histogram["edges"][-1], sum(histogram["counts"])) == (1.0, 4.0, 5)
    assert histogram["counts"][-1] == 1  # the maximum falls in the last bin, which is closed


def test_small_integer_ranges_get_one_bin_per_value(profile: dict[str, Any]) -> None:
    qty = by_name(profile)["qty"]
    assert (qty["count"], qty["nulls"], qty["nan"], qty["min"], qty["max"]) == (7, 1, 0, 1, 3)
    assert qty["histogram"] == {"type": "bins", "edges": [1.0, 2.0, 3.0, 4.0], "counts": [1, 2, 4]}


def test_strings_have_top_values_lengths_and_bars(profile: dict[str, Any]) -> None:
    city = by_name(profile)["city"]
    assert (city["count"], city["nulls"], city["distinct"]) == (7, 1, 4)
    assert city["top"] == [
        {"value": "lyon", "count": 3},
        {"value": "paris", "count": 2},
        {"value": "", "count": 1},  # ties are ordered by value
        {"value": "a<b&c", "count": 1},
    ]
    assert city["length"] == {"min": 0, "max": 5, "mean": pytest.approx(27 / 7)}  # 3 x 4 + 2 x 5 + 5 + 0
    assert city["histogram"] == {
        "type": "top",
        "labels": ["lyon", "paris", "", "a<b&c"],
        "counts": [3, 2, 1, 1],
        "other": 0,
    }


def test_top_k_leaves_the_rest_as_other() -> None:
    column = profile_table(known_frame(), top_k=2)["columns"][2]
    assert [item["value"] for item in column["top"]] == ["lyon", "paris"]
    assert column["histogram"]["other"] == 2


def test_categoricals_and_booleans_count_their_values(profile: dict[str, Any]) -> None:
    kind, ok = by_name(profile)["kind"], by_name(profile)["ok"]
    assert kind["top"] == [{"value": "x", "count": 4}, {"value": "y", "count": 2}, {"value": "z", "count": 1}]
    assert ok["top"] == [{"value": True, "count": 5}, {"value": False, "count": 2}]
    assert (ok["distinct"], ok["missing_share"]) == (2, 1 / 8)


def test_datetimes_have_iso_bounds_and_bins(profile: dict[str, Any]) -> None:
    at, day = by_name(profile)["at"], by_name(profile)["day"]
    assert (at["min"], at["max"], at["count"], at["nulls"]) == (
        "2024-01-01T00:00:00+00:00",
        "2024-01-03T00:00:00+00:00",
        2,
        6,
    )
    assert at["histogram"]["edges"][0] == at["min"] and at["histogram"]["edges"][-1] == at["max"]
    assert sum(at["histogram"]["counts"]) == 2
    assert day["histogram"] == {
        "type": "bins",
        "edges": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"],
        "counts": [2, 0, 1],
    }


def test_all_null_columns_have_counts_and_nothing_else(profile: dict[str, Any]) -> None:
    nothing, void = by_name(profile)["nothing"], by_name(profile)["void"]
    assert (nothing["count"], nothing["nulls"], nothing["missing_share"], nothing["distinct"]) == (0, 8, 1.0, 0)
    assert nothing["min"] is None and nothing["mean"] is None and nothing["quantiles"]["p50"] is None
    assert nothing["histogram"] == {"type": "bins", "edges": [], "counts": []}
    assert (void["dtype"], void["count"], void["missing_share"], void["distinct"]) == ("Null", 0, 1.0, None)


def test_one_repeated_value_is_one_bin() -> None:
    column = profile_table(pl.DataFrame({"x": [7.5, 7.5, None]}))["columns"][0]
    assert column["histogram"] == {"type": "bins", "edges": [7.5, 7.5], "counts": [2]}
    assert (column["std"], column["distinct"]) == (0.0, 1)


def test_an_empty_frame_profiles_its_schema() -> None:
    profile = profile_table(known_frame().clear())
    assert (profile["rows"], profile["n_columns"]) == (0, 10)
    amount, city = by_name(profile)["amount"], by_name(profile)["city"]
    assert (amount["count"], amount["missing_share"], amount["min"], amount["histogram"]["counts"]) == (
        0,
        0.0,
        None,
        [],
    )
    assert (city["top"], city["distinct"]) == ([], 0)
    assert profile_table(pl.DataFrame())["columns"] == []


def test_distinct_counts_are_estimated_above_the_cap() -> None:
    frame = pl.DataFrame({"id": range(5000), "small": [i % 7 for i in range(5000)]})
    ident, small = profile_table(frame, distinct_cap=100)["columns"]
    assert ident["distinct_exact"] is False and 4500 <= ident["distinct"] <= 5000  # never above the row count
    assert (small["distinct"], small["distinct_exact"]) == (7, True)


def test_any_column_name_is_safe() -> None:
    frame = pl.DataFrame({"0/min": [1, 2], "<b>&$x$": ["a", "b"], "": [1.5, None]})
    profile = profile_table(frame)
    assert [c["name"] for c in profile["columns"]] == frame.columns
    assert profile["columns"][0]["min"] == 1 and profile["columns"][2]["nulls"] == 1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=64)), max_size=60))
def test_counts_add_up_for_any_floats(values: list[float | None]) -> None:
    column = profile_table(pl.DataFrame({"x": values}, schema={"x": pl.Float64}))["columns"][0]
    assert column["count"] + column["nulls"] + column["nan"] == len(values)
    finite = [v for v in values if v is not None and v == v and abs(v) != INF]
    assert sum(column["histogram"]["counts"]) == len(finite)
    if finite:
        assert (column["min"], column["max"]) == (min(finite), max(finite))
    json.dumps(column, allow_nan=False)


@pytest.mark.parametrize("values", [[0.0, 2.2250738585e-313], [-5e-324, 5e-324, 0.0], [1.0, math.nextafter(1.0, 2.0)]])
def test_histogram_of_a_subnormal_spread_counts_every_value(values: list[float]) -> None:
    column = profile_table(pl.DataFrame({"x": values}))["columns"][0]
    counts = column["histogram"]["counts"]
    assert sum(counts) == len(values) and counts[0] >= 1 and counts[-1] >= 1
