"""CSV in blocks: every row once, one schema, bad rows with their true line numbers."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopline import DataError
from loopline.ingest._csv_blocks import csv_tables


def tables(data: bytes, block_bytes: int = 64, **kwargs: object) -> list[tuple[pa.Table, list[object]]]:
    options: dict[str, object] = {"delimiter": ",", "null_values": [""], "block_bytes": block_bytes, **kwargs}
    return list(csv_tables(io.BytesIO(data), **options))  # type: ignore[arg-type]


def rows(data: bytes, block_bytes: int = 64) -> list[dict[str, object]]:
    return [row for table, _ in tables(data, block_bytes) for row in table.to_pylist()]


def test_blocks_cut_at_line_ends_and_keep_every_row_in_order() -> None:
    data = b"id,name\n" + b"".join(f"{i},name-{i}\n".encode() for i in range(1000))
    parsed = tables(data, block_bytes=100)
    assert len(parsed) > 10
    assert [r["id"] for t, _ in parsed for r in t.to_pylist()] == list(range(1000))
    assert {t.schema for t, _ in parsed} == {parsed[0][0].schema}


@pytest.mark.parametrize("block_bytes", [16, 64, 1 << 20])
def test_ragged_rows_carry_their_line_number_in_the_file(block_bytes: int) -> None:
    lines = ["id,v"] + [f"{i},x{i}" for i in range(40)]
    lines[7] = "6,x6,extra"  # file line 8
    lines[33] = "32"  # file line 34
    parsed = tables("\n".join(lines).encode() + b"\n", block_bytes=block_bytes)
    bad = [b for _, rows_bad in parsed for b in rows_bad]
    assert bad == [
        ("expected 2 columns, found 3", 8, "6,x6,extra"),
        ("expected 2 columns, found 1", 34, "32"),
    ]
    assert len([r for t, _ in parsed for r in t.to_pylist()]) == 38


def test_crlf_no_trailing_newline_and_a_line_longer_than_a_block() -> None:
    data = b"id,text\r\n1,short\r\n2," + b"y" * 500 + b"\r\n3,last"
    assert rows(data, block_bytes=32) == [
        {"id": 1, "text": "short"},
        {"id": 2, "text": "y" * 500},
        {"id": 3, "text": "last"},
    ]


def test_a_header_only_file_gives_its_columns_and_an_empty_file_nothing() -> None:
    (table, bad), *rest = tables(b"a,b\n")
    assert table.column_names == ["a", "b"] and table.num_rows == 0 and not bad and not rest
    assert tables(b"") == []
    (table, bad), *rest = tables(b"a,b")  # no final line end
    assert table.column_names == ["a", "b"] and table.num_rows == 0 and not bad and not rest


def test_a_later_block_that_breaks_the_first_blocks_types_keeps_its_values() -> None:
    data = b"id,v\n" + b"".join(f"{i},{i}\n".encode() for i in range(50)) + b"50,1.5\n"
    parsed = tables(data, block_bytes=64)
    assert parsed[0][0].schema.field("v").type == pa.int64()
    assert parsed[-1][0].schema.field("v").type == pa.float64()  # the contract decides what to do
    assert [r["v"] for t, _ in parsed for r in t.to_pylist()][-2:] == [49, 1.5]


def test_pinned_column_types_apply_to_every_block() -> None:
    data = b"id,code\n" + b"".join(f"{i},{i:03d}\n".encode() for i in range(30))
    parsed = tables(data, block_bytes=40, column_types={"code": pa.string()})
    assert {t.schema.field("code").type for t, _ in parsed} == {pa.string()}
    assert [r["code"] for t, _ in parsed for r in t.to_pylist()][:3] == ["000", "001", "002"]


def _field(value: str, style: str) -> str:
    """``value`` written as pyarrow reads it: quoted, or bare where a bare value keeps its meaning."""
    bare_ok = not any(c in value for c in ",\r\n") and not value.startswith('"') and value != ""
    if style == "bare" and bare_ok:
        return value  # a quote inside a bare value is a plain character
    return '"' + value.replace('"', '""') + '"'


_VALUES = st.lists(st.sampled_from(["a", "b", " ", ",", '"', "\n", "\r", "\r\n", "é"]), max_size=12).map("".join)


@st.composite
def _csv_files(draw: st.DrawFn) -> tuple[bytes, list[dict[str, str]]]:
    records = draw(st.lists(st.tuples(_VALUES, _VALUES), max_size=30))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    lines = ["id,a,b"]
    for i, values in enumerate(records):
        styles = draw(st.lists(st.sampled_from(["bare", "quoted"]), min_size=2, max_size=2))
        lines.append(",".join([str(i), *(_field(v, s) for v, s in zip(values, styles, strict=True))]))
    data = end.join(lines) + (end if draw(st.booleans()) else "")
    return data.encode(), [{"id": str(i), "a": a, "b": b} for i, (a, b) in enumerate(records)]


@settings(max_examples=300, deadline=None)
@given(_csv_files(), st.integers(min_value=1, max_value=200))
def test_quoted_line_breaks_quotes_and_crlf_come_out_once_whatever_the_block_size(
    file: tuple[bytes, list[dict[str, str]]], block_bytes: int
) -> None:
    data, expected = file
    parsed = tables(data, block_bytes, null_values=[], column_types=dict.fromkeys(["id", "a", "b"], pa.string()))
    assert [b for _, bad in parsed for b in bad] == []
    assert [r for t, _ in parsed for r in t.to_pylist()] == expected


@pytest.mark.parametrize("block_bytes", [64 << 10, 100_003])
def test_forty_thousand_rows_with_quoted_line_breaks_lose_none_at_block_ends(block_bytes: int) -> None:
    text = [
        f'{i},"note {i}\nsecond line, with ""quotes""",{i * 0.5}' if i % 7 == 0 else f"{i},plain {i},{i}.5"
        for i in range(40_000)
    ]
    parsed = tables(("id,note,v\n" + "\n".join(text) + "\n").encode(), block_bytes)
    assert len(parsed) > 10
    assert [b for _, bad in parsed for b in bad] == []
    out = [r for t, _ in parsed for r in t.to_pylist()]
    assert [r["id"] for r in out] == list(range(40_000))
    assert out[7]["note"] == 'note 7\nsecond line, with "quotes"'


def test_ragged_rows_after_quoted_line_breaks_keep_their_file_line_number() -> None:
    data = b'id,v\n1,"a\nb"\n2,x,extra\n3,"c\r\nd"\n4\n'
    bad = [b for _, rows_bad in tables(data, block_bytes=8) for b in rows_bad]
    assert bad == [("expected 2 columns, found 3", 4, "2,x,extra"), ("expected 2 columns, found 1", 7, "4")]


@pytest.mark.parametrize(
    ("data", "line"),
    [(b'id,v\n1,x\n2,"never closed\n3,y\n', 3), (b'id,v\n1,"ok"\n2,"open', 3), (b'id,"v\n1,x\n', 1)],
)
def test_a_quote_never_closed_is_a_data_error_naming_its_line(data: bytes, line: int) -> None:
    with pytest.raises(DataError, match=f"line {line}: a quoted value .* reaches the end of the data"):
        tables(data, block_bytes=8)


def test_an_open_quote_stops_at_the_memory_bound_instead_of_reading_the_whole_file() -> None:
    data = b'id,v\n1,x\n2,"' + b"x\n" * (2 << 20)  # 4 MiB after the quote; the bound is 1 MiB for small blocks
    with pytest.raises(DataError, match="line 3: a quoted value .* runs over 1048576 bytes"):
        tables(data, block_bytes=1024)
