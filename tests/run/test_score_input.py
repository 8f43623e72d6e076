"""Batch-scoring inputs read in blocks: a CSV block ends at a record end, never inside a quoted value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from loopline.core.errors import DataError
from loopline.run._score_input import open_input


def test_quoted_line_breaks_across_blocks_keep_every_row(tmp_path: Path) -> None:
    notes = [f'first {i}\nsecond, "{i}"' if i % 3 else f"plain {i}" for i in range(60_000)]  # ~1.7 MB: many blocks
    frame = pl.DataFrame({"id": range(60_000), "note": notes})
    path = tmp_path / "in.csv"
    frame.write_csv(path)
    opened = open_input(Any, path)  # type: ignore[arg-type]  # a file needs no store
    back = pl.concat(list(opened.chunks(["id", "note"], 5_000)))
    assert back.equals(frame)


def test_a_header_and_first_rows_with_quoted_line_breaks_give_the_right_columns(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b'id,"the\nnote"\n' + b"".join(f'{i},"a\nb {i}"\n'.encode() for i in range(150)))
    opened = open_input(Any, path)  # type: ignore[arg-type]
    assert list(opened.schema) == ["id", "the\nnote"]
    back = pl.concat(list(opened.chunks(["id", "the\nnote"], 40)))
    assert back["the\nnote"].to_list() == [f"a\nb {i}" for i in range(150)]


def test_a_quote_never_closed_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"id,note\n" + b"".join(f"{i},x\n".encode() for i in range(200)) + b'200,"open\n201,y\n')
    opened = open_input(Any, path)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="every quoted value is closed"):
        list(opened.chunks(["id", "note"], 50))
