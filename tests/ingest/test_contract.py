"""Schema contracts: fail, coerce, quarantine; columns matched by name; every problem named."""

from __future__ import annotations

import json

import polars as pl
import pytest

from loopline import ConfigError, DataError
from loopline.ingest import apply_contract, infer_schema

SCHEMA = {"id": "Int64", "price": "Float64", "city": "String"}


def test_a_conforming_batch_passes_untouched_whatever_the_column_order() -> None:
    frame = pl.DataFrame({"city": ["a"], "price": [1.5], "id": [1]})
    result = apply_contract(frame, SCHEMA, "fail", source="s")
    assert result.rows.columns == ["id", "price", "city"] and not result.rejects


def test_fail_lists_every_offending_column() -> None:
    frame = pl.DataFrame({"id": ["1"], "extra": [0]})
    with pytest.raises(DataError) as caught:
        apply_contract(frame, SCHEMA, "fail", source="orders")
    message = str(caught.value)
    assert "missing column 'price' (expected Float64)" in message
    assert "missing column 'city'" in message
    assert "unexpected column 'extra' (Int64)" in message
    assert "column 'id' is String, expected Int64" in message
    assert "'coerce' or 'quarantine'" in message


def test_coerce_casts_and_names_an_unconvertible_value() -> None:
    ok = apply_contract(pl.DataFrame({"id": ["7"], "price": ["2.5"], "city": ["x"]}), SCHEMA, "coerce", source="s")
    assert ok.rows.to_dicts() == [{"id": 7, "price": 2.5, "city": "x"}] and ok.cast == ["id", "price"]
    with pytest.raises(DataError, match=r"column 'price' has value 'N/A', which is not Float64 \(1 row"):
        apply_contract(
            pl.DataFrame({"id": [1, 2], "price": ["1.0", "N/A"], "city": ["a", "b"]}), SCHEMA, "coerce", source="s"
        )


def test_quarantine_keeps_good_rows_and_sends_bad_ones_with_their_reason() -> None:
    frame = pl.DataFrame({"id": ["1", "two", "3"], "price": ["1.0", "2.0", "oops"], "city": ["a", "b", "c"]})
    result = apply_contract(frame, SCHEMA, "quarantine", source="s", position={"offset": 9})
    assert result.rows["id"].to_list() == [1]
    assert [r.reason for r in result.rejects] == [
        "column 'id': 'two' is not Int64",
        "column 'price': 'oops' is not Float64",
    ]
    assert json.loads(result.rejects[0].raw) == {"id": "two", "price": "2.0", "city": "b"}
    assert result.rejects[0].position == {"offset": 9}


def test_missing_columns_are_added_and_extra_ones_dropped_under_coerce() -> None:
    result = apply_contract(pl.DataFrame({"id": [1], "city": ["a"], "note": ["x"]}), SCHEMA, "coerce", source="s")
    assert result.rows.to_dicts() == [{"id": 1, "price": None, "city": "a"}]
    assert result.added == ["price"] and result.dropped == ["note"]


def test_unknown_policy_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="Use one of fail, coerce, quarantine"):
        apply_contract(pl.DataFrame({"id": [1]}), {"id": "Int64"}, "ignore", source="s")


def test_inferred_schema_round_trips() -> None:
    frame = pl.DataFrame({"a": [1], "b": [None], "t": pl.Series([0], dtype=pl.Datetime("us", "UTC"))})
    schema = infer_schema(frame)
    assert schema["b"] == "String"
    assert apply_contract(frame, schema, "fail", source="s").rows.height == 1
