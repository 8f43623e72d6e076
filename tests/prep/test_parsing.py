"""cast and parse_dates: what converts, the error policies, and tables and records agreeing on any input."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopline.core.errors import ConfigError, DataError
from loopline.prep import build_transform

from .agreement import assert_paths_agree


def _cast(kind: str, values: list[Any], dtype: pl.DataType | None = None, errors: str = "null") -> list[Any]:
    cast = build_transform({"type": "cast", "columns": {"v": kind}, "errors": errors})
    frame = pl.DataFrame({"v": values}, schema={"v": dtype} if dtype is not None else None)
    return [row["v"] for row in assert_paths_agree(cast, frame)]


# -- cast ------------------------------------------------------------------------------------------


def test_cast_text_to_numbers_and_booleans() -> None:
    text = [" 12 ", "+7", "-0", "007", "1.5", "1e3", "", "abc", "1_000", "0x10", None, "9223372036854775808"]
    assert _cast("int", text) == [12, 7, 0, 7, None, None, None, None, None, None, None, None]
    numbers = ["1.5", ".5", "5.", "-1E-2", "inf", "-Infinity", "1_0", "e5", "1e999", None, " 2 "]
    inf = float("inf")
    assert _cast("float", numbers) == [1.5, 0.5, 5.0, -0.01, inf, -inf, None, None, inf, None, 2.0]
    assert _cast("float", ["nan"])[0] != _cast("float", ["nan"])[0]  # NaN
    words = ["true", "FALSE", "Yes", "n", "1", "0", "T", "maybe", "2", None]
    assert _cast("bool", words) == [True, False, True, False, True, False, True, None, None, None]


def test_cast_between_numbers_booleans_and_text() -> None:
    assert _cast("int", [1.0, -3.0, 1.5, float("nan"), float("inf"), 9.3e18, None]) == [
        1,
        -3,
        None,
        None,
        None,
        None,
        None,
    ]
    assert _cast("float", [1, 2**53 + 1, None]) == [1.0, float(2**53), None]
    assert _cast("bool", [0, 1, 2, None]) == [False, True, None, None]
    assert _cast("bool", [0.0, 1.0, 0.5]) == [False, True, None]
    assert _cast("int", [True, False]) == [1, 0]
    assert _cast("str", [True, False, None]) == ["true", "false", None]
    assert _cast("str", [12, -3, None]) == ["12", "-3", None]
    assert _cast("str", [1.5, None]) == [None, None]  # floats are never written as text
    assert _cast("int", [date(2024, 1, 1)]) == [None]
    assert _cast("float", [None, None], pl.Null()) == [None, None]
    assert _cast("int", [2**64 - 1, 5], pl.UInt64()) == [None, 5]


def test_cast_failures_name_the_column_row_and_value_or_are_counted() -> None:
    frame = pl.DataFrame({"a": ["1", "2", "x3"], "b": ["1", "no", "2"]})
    cast = build_transform({"type": "cast", "columns": {"a": "int", "b": "int"}, "errors": {"b": "null"}})
    with pytest.raises(
        DataError, match=r"cast: column 'a', row 2: cannot convert 'x3' to int. Fix the data, or set errors: null"
    ) as info:
        cast.transform(frame)
    assert (info.value.column, info.value.row) == ("a", 2)
    with pytest.raises(DataError, match="cast: column 'a': cannot convert 'x3' to int"):
        cast.transform_record({"a": "x3", "b": "1"})
    assert cast.transform(frame.head(2)).to_dict(as_series=False) == {"a": [1, 2], "b": [1, None]}
    assert cast.transform_record({"a": "4", "b": "?"}) == {"a": 4, "b": None}
    assert cast.counts() == {"b: unconvertible": 2}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"columns": {}}, "cast: no columns given"),
        ({"columns": {"a": "integer"}}, "cast: column 'a': invalid type 'integer'. Did you mean 'int'"),
        ({"columns": {"a": "int"}, "errors": "ignore"}, "cast: invalid errors 'ignore'"),
        ({"columns": {"a": "int"}, "errors": {"b": "null"}}, "errors names 'b', which is not in columns"),
    ],
)
def test_cast_options_are_checked(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_transform({"type": "cast", **options})


number_text = st.one_of(
    st.from_regex(r"\A[ \t]?[+-]?[0-9]{0,25}(\.[0-9]{0,20})?([eE][+-]?[0-9]{1,4})?[ \n]?\Z"),
    st.text(alphabet="0123456789+-.eE_xnaiftyINFTY \t\u0660", max_size=10),
    st.floats().map(repr),
    st.integers(-(2**70), 2**70).map(str),
)


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.none() | number_text, min_size=1, max_size=10), kind=st.sampled_from(["int", "float", "bool"])
)
def test_cast_text_tables_and_records_agree(values: list[str | None], kind: str) -> None:
    _cast(kind, values, pl.String())


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.none() | st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=10),
    kind=st.sampled_from(["int", "float", "bool", "str"]),
)
def test_cast_floats_tables_and_records_agree(values: list[float | None], kind: str) -> None:
    _cast(kind, values, pl.Float64())


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.none() | st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=10),
    kind=st.sampled_from(["int", "float", "bool", "str"]),
)
def test_cast_integers_tables_and_records_agree(values: list[int | None], kind: str) -> None:
    _cast(kind, values, pl.Int64())


# -- parse_dates -----------------------------------------------------------------------------------


def _dates(values: list[Any], dtype: pl.DataType | None = None, **options: Any) -> list[Any]:
    parse = build_transform({"type": "parse_dates", "columns": ["t"], "errors": "null", **options})
    frame = pl.DataFrame({"t": values}, schema={"t": dtype} if dtype is not None else None)
    return [row["t"] for row in assert_paths_agree(parse, frame)]


def test_parse_iso_text_to_utc() -> None:
    got = _dates(
        [
            "2024-03-10",
            "2024-03-10T17:45",
            " 2024-03-10 17:45:30.25 ",
            "2024-03-10T17:45:00Z",
            "2024-03-10T17:45:00+02:00",
            "2024-03-10T17:45:00-0530",
            "2024-01-01T00:30:00+01",
            "2024-03-10T17:45:00.1234567",
            None,
        ]
    )
    assert got == [
        datetime(2024, 3, 10, tzinfo=UTC),
        datetime(2024, 3, 10, 17, 45, tzinfo=UTC),
        datetime(2024, 3, 10, 17, 45, 30, 250000, tzinfo=UTC),
        datetime(2024, 3, 10, 17, 45, tzinfo=UTC),
        datetime(2024, 3, 10, 15, 45, tzinfo=UTC),
        datetime(2024, 3, 10, 23, 15, tzinfo=UTC),
        datetime(2023, 12, 31, 23, 30, tzinfo=UTC),
        datetime(2024, 3, 10, 17, 45, 0, 123456, tzinfo=UTC),
        None,
    ]


def test_text_that_names_no_real_instant_is_unparseable() -> None:
    bad = ["2023-02-29", "2024-13-01", "2024-04-31", "2024-01-01T24:00", "2024-01-01T10:60", "2024-01-01T10:00+24:00"]
    bad += ["0000-01-01", "0001-01-01T00:00+01:00", "9999-12-31T23:00-01:00", "2024-1-1", "20240101", "yesterday"]
    parse = build_transform({"type": "parse_dates", "columns": ["t"], "errors": "null"})
    assert parse.transform(pl.DataFrame({"t": bad}))["t"].to_list() == [None] * len(bad)
    assert parse.counts() == {"t: unparseable": len(bad)}
    assert _dates(["2024-02-29", "2000-02-29", "1900-03-01"]) == [
        datetime(2024, 2, 29, tzinfo=UTC),
        datetime(2000, 2, 29, tzinfo=UTC),
        datetime(1900, 3, 1, tzinfo=UTC),
    ]


def test_parse_with_a_format() -> None:
    assert _dates(["10/03/2024 5:07 pm", "1/12/99 12:00 AM", "31/04/2024 1:00 pm"], format="%d/%m/%y %I:%M %p")[:2] == [
        None,
        datetime(1999, 12, 1, 0, 0, tzinfo=UTC),
    ]
    assert _dates(
        ["Sun, 10 Mar 2024 17:45:00 +0100", "mon, 1 JAN 2024 00:00:00 Z"], format="%a, %d %b %Y %H:%M:%S %z"
    ) == [
        datetime(2024, 3, 10, 16, 45, tzinfo=UTC),
        datetime(2024, 1, 1, tzinfo=UTC),
    ]
    assert _dates(["March 2024", "ſeptember 2024"], format="%B %Y") == [datetime(2024, 3, 1, tzinfo=UTC), None]
    assert _dates(["2024.03.10 %"], format="%Y.%m.%d %%") == [datetime(2024, 3, 10, tzinfo=UTC)]


def test_datetime_and_date_columns_become_utc() -> None:
    paris = ZoneInfo("Europe/Paris")
    assert _dates([datetime(2024, 7, 1, 12, 0, tzinfo=paris)], pl.Datetime("us", "Europe/Paris")) == [
        datetime(2024, 7, 1, 10, 0, tzinfo=UTC)
    ]
    assert _dates([datetime(2024, 7, 1, 12, 0)]) == [datetime(2024, 7, 1, 12, 0, tzinfo=UTC)]
    assert _dates([date(2024, 7, 1), None]) == [datetime(2024, 7, 1, tzinfo=UTC), None]
    assert _dates([1, 2]) == [None, None]  # numbers are not dates


def test_parse_dates_failures_and_options() -> None:
    parse = build_transform({"type": "parse_dates", "columns": ["t"]})
    frame = pl.DataFrame({"t": ["2024-01-01", "2024-02-30"]})
    with pytest.raises(DataError, match=r"parse_dates: column 't', row 1: cannot convert '2024-02-30' to a datetime"):
        parse.transform(frame)
    with pytest.raises(DataError, match="set errors: null"):
        parse.transform_record({"t": "soon"})
    with pytest.raises(ConfigError, match="directive %Q is not supported. Use %Y"):
        build_transform({"type": "parse_dates", "columns": ["t"], "format": "%Y-%Q"})
    with pytest.raises(ConfigError, match="It needs a year"):
        build_transform({"type": "parse_dates", "columns": ["t"], "format": "%d/%m"})
    with pytest.raises(ConfigError, match="has %d twice"):
        build_transform({"type": "parse_dates", "columns": ["t"], "format": "%Y %d %d"})
    with pytest.raises(ConfigError, match="gives the month twice"):
        build_transform({"type": "parse_dates", "columns": ["t"], "format": "%Y %m %b"})


instants = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))
offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59)


def _iso(when: datetime, offset: int, style: int) -> str:
    sign, size = ("-" if offset < 0 else "+"), abs(offset)
    zone = ["", "Z", f"{sign}{size // 60:02d}:{size % 60:02d}", f"{sign}{size // 60:02d}{size % 60:02d}"][style % 4]
    return when.isoformat(sep="T" if style % 2 else " ") + zone


@settings(max_examples=300, deadline=None)
@given(cases=st.lists(st.tuples(instants, offsets, st.integers(0, 7)), min_size=1, max_size=8))
def test_iso_text_parses_to_the_instant_it_names(cases: list[tuple[datetime, int, int]]) -> None:
    text = [_iso(when, offset, style) for when, offset, style in cases]
    expected = []
    for when, offset, style in cases:
        zone = timezone(timedelta(minutes=offset if style % 4 >= 2 else 0))
        try:
            expected.append(when.replace(tzinfo=zone).astimezone(UTC))
        except OverflowError:
            expected.append(None)
    assert _dates(text) == expected


_ZONE = "([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)"
date_text = st.one_of(
    st.text(alphabet="0123456789-:T Z+.,", max_size=30),
    st.from_regex(
        rf"\A[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}([T ][0-9]{{2}}:[0-9]{{2}}(:[0-9]{{2}}([.,][0-9]{{1,9}})?)?{_ZONE}?)?\Z"
    ),
    st.from_regex(
        rf"\A[0-9]{{1,2}}-[0-9]{{1,2}}-[0-9]{{4}} [0-9]{{1,2}}:[0-9]{{1,2}}:[0-9]{{1,2}}\.[0-9]{{1,9}}{_ZONE}\Z"
    ),
)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.none() | date_text, min_size=1, max_size=8))
def test_any_text_parses_the_same_in_tables_and_records(values: list[str | None]) -> None:
    _dates(values, pl.String())
    _dates(values, pl.String(), format="%d-%m-%Y %H:%M:%S.%f%z")
