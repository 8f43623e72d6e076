"""CSV in blocks: every row once, one schema, bad rows with their true line numbers."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest

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
