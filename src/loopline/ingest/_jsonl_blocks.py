"""JSON Lines in blocks: bounded memory, one schema where the data allows, bad lines with their numbers.

The stream is cut at line ends (:func:`loopline.ingest._csv_blocks.line_blocks`); polars parses each block,
with the types the first block inferred pinned for the columns it saw (new columns are inferred). Known
limit: polars infers a block's columns from its first 100 lines, so a field that first appears after
them in a block is not read. A block whose values break those types is parsed again with its own types
and left to the schema contract. A block holding a line that is not a JSON object is read line by line: the good lines
are kept, each bad one is reported with its line number in the file.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import polars as pl
import pyarrow as pa

from loopline.ingest._csv_blocks import BadRow, line_blocks

#: strings stay Arrow string views, polars' own layout: no copy to Arrow and none back (``pl.from_arrow``)
_VIEWS = pl.CompatLevel.newest()


def jsonl_tables(stream: Any, *, block_bytes: int) -> Iterator[tuple[pa.Table, list[BadRow]]]:
    """Parse an open binary stream block by block: ``(table, bad lines of the block)``."""
    pinned: dict[str, Any] = {}
    line = 0  # lines before the current block
    for block in line_blocks(stream, block_bytes):
        frame, bad = _parse(block, pinned, line)
        if not pinned:
            pinned = {name: dtype for name, dtype in frame.schema.items() if dtype != pl.Null}
        yield frame.to_arrow(compat_level=_VIEWS), bad
        line += block.count(b"\n")


def _parse(block: bytes | bytearray, pinned: dict[str, Any], before: int) -> tuple[pl.DataFrame, list[BadRow]]:
    for overrides in [pinned, {}] if pinned else [{}]:
        try:
            return pl.read_ndjson(io.BytesIO(block), schema_overrides=overrides or None), []
        except pl.exceptions.PolarsError:
            continue
    return _by_line(block, before)


def _by_line(block: bytes | bytearray, before: int) -> tuple[pl.DataFrame, list[BadRow]]:
    good: list[dict[str, Any]] = []
    bad: list[BadRow] = []
    for number, line in enumerate(bytes(block).split(b"\n"), start=before + 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
            if not isinstance(value, dict):
                raise ValueError("a JSON Lines row must be an object")
            good.append(value)
        except ValueError as exc:
            bad.append((f"invalid JSON: {exc}", number, line.decode("utf-8", "replace")))
    return (pl.DataFrame(good, infer_schema_length=None) if good else pl.DataFrame()), bad
