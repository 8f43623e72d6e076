"""The lookup transform: a small dimension table captured in the state, joined identically on tables and records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopline import ConfigError, DataError
from loopline.prep import Chain, Transform, build_transform

STORES = [
    {"store": 1, "country": "fr", "region": "north", "size": 120.5, "open": True},
    {"store": 2, "country": "fr", "region": "south", "size": None, "open": False},
    {"store": 1, "country": "de", "region": "bayern", "size": 80.0, "open": True},
]
SALES = pl.DataFrame(
    {"store": [1, 2, 1, 3, None], "country": ["fr", "fr", "de", "fr", "fr"], "amount": [1, 2, 3, 4, 5]}
)


def both(transform: Transform, frame: pl.DataFrame) -> list[dict[str, Any]]:
    table = transform.transform(frame).to_dicts()
    assert table == [transform.transform_record(r) for r in frame.to_dicts()]
    return table


def test_rows_gain_the_table_columns_and_unmatched_keys_get_nulls() -> None:
    lookup = build_transform({"type": "lookup", "on": ["store", "country"], "rows": STORES}).fit(SALES)
    rows = both(lookup, SALES)
    assert rows[0] == {"store": 1, "country": "fr", "amount": 1, "region": "north", "size": 120.5, "open": True}
    assert rows[2]["region"] == "bayern"
    assert rows[3]["region"] is None and rows[4]["open"] is None  # no store 3; a null key never matches
    assert lookup.counts() == {"unmatched key": 4}  # two in the table, two in the records
    out = lookup.transform(SALES)
    assert out.schema["size"] == pl.Float64 and out.schema["open"] == pl.Boolean
    assert lookup.lineage() == {c: ["store", "country"] for c in ("region", "size", "open")}


def test_columns_and_prefix() -> None:
    spec = {"type": "lookup", "on": ["store", "country"], "rows": STORES, "columns": ["region"], "prefix": "s_"}
    lookup = build_transform(spec).fit(SALES)
    assert list(both(lookup, SALES)[0]) == ["store", "country", "amount", "s_region"]


def test_a_file_is_read_at_fit_and_travels_in_the_state(tmp_path: Path) -> None:
    path = tmp_path / "stores.csv"
    pl.DataFrame(STORES).write_csv(path)
    chain = Chain.from_config([{"type": "lookup", "on": ["store", "country"], "path": str(path)}])
    chain.fit_transform(SALES)
    path.unlink()
    served = Chain.from_state(json.loads(json.dumps(chain.to_state(), allow_nan=False)))
    assert served.transform_record({"store": 2, "country": "fr", "amount": 1})["region"] == "south"
    assert served.transform(SALES).equals(chain.transform(SALES))


def test_parquet_and_json_lines(tmp_path: Path) -> None:
    table = pl.DataFrame(STORES)
    for name, write in (("s.parquet", table.write_parquet), ("s.jsonl", table.write_ndjson)):
        write(tmp_path / name)
        lookup = build_transform({"type": "lookup", "on": ["store", "country"], "path": str(tmp_path / name)})
        assert both(lookup.fit(SALES), SALES)[1]["region"] == "south"


def test_non_finite_values_are_json_in_the_state() -> None:
    rows = [{"k": "a", "x": float("nan")}, {"k": "b", "x": float("-inf")}]
    lookup = build_transform({"type": "lookup", "on": ["k"], "rows": rows}).fit(pl.DataFrame({"k": ["a"]}))
    assert lookup.get_state()["table_"]["values"] == {"x": ["nan", "-inf"]}
    assert both(lookup, pl.DataFrame({"k": ["b"]})) == [{"k": "b", "x": float("-inf")}]


def test_table_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="4 rows, more than max_rows 3.*join step before the split"):
        build_transform({"type": "lookup", "on": ["k"], "rows": [{"k": i} for i in range(4)], "max_rows": 3}).fit(
            pl.DataFrame({"k": [1]})
        )
    with pytest.raises(DataError, match="2 rows sharing a key, e.g. \\{'store': '1'\\}.*one row per store"):
        build_transform({"type": "lookup", "on": ["store"], "rows": STORES}).fit(SALES)
    with pytest.raises(DataError, match="the table has no column 'regoin'.*Did you mean 'region'"):
        build_transform({"type": "lookup", "on": ["store"], "rows": STORES, "columns": ["regoin"]}).fit(SALES)
    with pytest.raises(DataError, match="column 'amount' is already in the rows.*prefix"):
        build_transform({"type": "lookup", "on": ["store"], "rows": [{"store": 1, "amount": 2}]}).fit(SALES)
    with pytest.raises(DataError, match="does not exist"):
        build_transform({"type": "lookup", "on": ["store"], "path": str(tmp_path / "none.csv")}).fit(SALES)
    with pytest.raises(DataError, match="key column 'x' is Float64.*Cast 'x'"):
        build_transform({"type": "lookup", "on": ["x"], "rows": [{"x": 1.5}]}).fit(pl.DataFrame({"x": [1.5]}))
    with pytest.raises(DataError, match="column 'stor' is missing.*Did you mean 'store'"):
        build_transform({"type": "lookup", "on": ["stor"], "rows": STORES}).fit(SALES)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({}, "either inline \\(rows\\) or as a file \\(path\\)"),
        ({"rows": [], "path": "x.csv"}, "not both or neither"),
        ({"path": "stores.xlsx"}, "not a file loopline reads.*\\.csv"),
        ({"rows": [1, 2]}, "rows must be a list of mappings"),
        ({"rows": [], "max_rows": 0}, "max_rows must be an integer >= 1"),
        ({"rows": [], "on": []}, "on must be a non-empty list"),
        ({"row": []}, "has no option 'row'.*Did you mean 'rows'"),
        ({"rows": [], "columns": ["region", "store"]}, "'store' is a key \\(on\\); it cannot also be a column"),
    ],
)
def test_bad_options(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        build_transform({"type": "lookup", "on": ["store"], **options})


@settings(max_examples=60, deadline=None, database=None)
@given(
    table=st.dictionaries(
        st.integers(-3, 3), st.one_of(st.none(), st.floats(), st.text(max_size=3), st.booleans()), max_size=6
    ),
    keys=st.lists(st.one_of(st.none(), st.integers(-4, 4)), min_size=1, max_size=12),
)
def test_table_and_records_agree(table: dict[int, Any], keys: list[int | None]) -> None:
    rows = [{"k": k, "v": v if not isinstance(v, bool | str) else str(v)} for k, v in table.items()]
    frame = pl.DataFrame({"k": keys}, schema={"k": pl.Int64})
    lookup = build_transform({"type": "lookup", "on": ["k"], "rows": rows or [{"k": 99, "v": "x"}]}).fit(frame)
    table_rows = lookup.transform(frame).to_dicts()
    records = [lookup.transform_record(r) for r in frame.to_dicts()]
    assert json.dumps(table_rows) == json.dumps(records)
