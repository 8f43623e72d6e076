"""CSV in blocks: bounded memory, all cores, exact line numbers for bad rows.

The file (or its decompressed stream) is cut into blocks of about ``block_bytes`` at line ends; each block
is parsed by ``pyarrow.csv.read_csv`` with its threads, while a background thread reads and parses the next
block as the consumer writes the current one (``loopline.ingest._read_ahead``). Memory stays at a few blocks, whatever
the file size.

Types are inferred from the first block (the header's names, ``column_types`` pinned by the user on top);
later blocks are parsed with those types, so every block has one schema. A later block whose values do not
fit (a float in a column the first block saw as integers) is parsed again with its own inferred types and
left to the dataset's schema contract, which fails, casts or quarantines as the source's policy says.

Quoted values may hold line breaks: a block is cut at the end of a record, outside quotes
(``loopline.ingest._csv_records``), and a block holding a quote is parsed with pyarrow's quote-aware
chunking. A quote never closed is a :class:`~loopline.core.errors.DataError` naming the line it opens on,
at the end of the file or once the open value passes ``16 * block_bytes`` (memory stays bounded).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from loopline.core.errors import DataError
from loopline.ingest._csv_records import CsvRecords, UnclosedQuote

#: (reason, 1-based line number in the file, raw line)
BadRow = tuple[str, int | None, str]

#: pyarrow's own unit of parallel parsing inside a block
_PARSE_BLOCK = 1 << 21


def csv_tables(
    stream: Any,
    *,
    delimiter: str,
    null_values: list[str],
    block_bytes: int,
    column_types: dict[str, pa.DataType] | None = None,
) -> Iterator[tuple[pa.Table, list[BadRow]]]:
    """Parse an open binary stream block by block: ``(table, bad rows of the block)``.

    Raises :class:`DataError` (with the line) for a quoted value that is never closed.
    """
    records = CsvRecords(delimiter, limit=max(16 * block_bytes, 1 << 20))
    parser = _BlockParser(delimiter, null_values, dict(column_types or {}))
    line = 0  # lines before the current block
    header: bytes | bytearray = b""
    blocks = line_blocks(stream, block_bytes, records)
    while (block := _next_block(blocks, line)) is not None:
        if not header:
            cut = records.first_end(block)
            header, block = block[:cut], block[cut:]
            line = header.count(b"\n")
            if not header.strip():
                return
            if not header.endswith((b"\n", b"\r")):  # a header-only file without a final line end
                header = bytes(header) + b"\n"
        if not block:  # the block held just the header: the types come from the next one
            continue
        table, bad = parser.parse(block, header)
        yield table, _numbered(bad, block, line)
        line += block.count(b"\n")
    if parser.names is None and header.strip():  # a header and no rows
        yield parser.parse(b"", header)[0], []


def _next_block(blocks: Iterator[bytearray], line: int) -> bytearray | None:
    """The next block, or None at the end; a quote left open is a :class:`DataError` at line ``line + 1``.

    The open value starts the record after the ``line`` lines already parsed: blocks end at record ends.
    """
    try:
        return next(blocks)
    except StopIteration:
        return None
    except UnclosedQuote as exc:
        raise DataError(
            f"line {line + 1}: a quoted value in the record on this line {exc.how} without a closing quote.",
            row=line + 1,
            hint='Close the quote, or double each quote inside a quoted value (""); '
            "a quote inside an unquoted value needs no escaping.",
        ) from None


class _BlockParser:
    """Parses blocks with the names and types of the first one (see the module docstring)."""

    def __init__(self, delimiter: str, null_values: list[str], pinned: dict[str, pa.DataType]) -> None:
        self.delimiter = delimiter
        self.null_values = null_values
        self.pinned = pinned
        self.names: list[str] | None = None
        self.types: dict[str, pa.DataType] = pinned

    def parse(self, block: bytes | bytearray, header: bytes | bytearray) -> tuple[pa.Table, list[tuple[str, str]]]:
        """The block's rows and its ragged rows ``(reason, raw line)``."""
        if self.names is None:  # the first block fixes names and types
            table, bad = self._read(header + block, self.pinned)
            self.names = table.column_names
            self.types = {field.name: field.type for field in table.schema}
            return table, bad
        try:
            return self._read(block, self.types)
        except pa.ArrowInvalid:  # values that do not fit the first block's types: the contract judges
            return self._read(block, self.pinned)

    def _read(self, body: bytes | bytearray, types: dict[str, pa.DataType]) -> tuple[pa.Table, list[tuple[str, str]]]:
        import pyarrow.csv as pcsv

        bad: list[tuple[str, str]] = []

        def quarantine(row: Any) -> str:
            bad.append((f"expected {row.expected_columns} columns, found {row.actual_columns}", row.text))
            return "skip"

        table = pcsv.read_csv(
            pa.BufferReader(body),
            read_options=pcsv.ReadOptions(column_names=self.names, block_size=_PARSE_BLOCK),
            parse_options=pcsv.ParseOptions(
                delimiter=self.delimiter,
                invalid_row_handler=quarantine,
                newlines_in_values=body.find(b'"') >= 0,  # quoted line breaks: pyarrow chunks quote-aware
            ),
            convert_options=pcsv.ConvertOptions(
                null_values=self.null_values, strings_can_be_null=True, column_types=types
            ),
        )
        return table, bad


def line_blocks(stream: Any, size: int, records: CsvRecords | None = None) -> Iterator[bytearray]:
    """Chunks of about ``size`` bytes that end at a line end (the last one may not).

    With ``records``, a chunk ends at a CSV record end: never at a line end inside quotes. Each chunk is
    read straight into a fresh buffer (``readinto``) and handed over without copying; only the partial
    line (record) after the cut is carried to the next one.
    """
    rest = b""
    while True:
        buffer = bytearray(len(rest) + size)
        buffer[: len(rest)] = rest
        with memoryview(buffer) as view:
            filled = len(rest) + (stream.readinto(view[len(rest) :]) or 0)
        if filled == len(rest):  # the end of the stream: ``rest`` is one partial record
            if records is not None and records.ends_open(rest):
                raise UnclosedQuote("reaches the end of the data")
            if rest:
                yield bytearray(rest)
            return
        cut = records.last_end(buffer, filled) if records else buffer.rfind(b"\n", 0, filled) + 1
        if cut == 0:  # one line longer than a block: read on
            rest = bytes(buffer[:filled])
            continue
        rest = bytes(buffer[cut:filled])
        del buffer[cut:]
        yield buffer


def _numbered(bad: list[tuple[str, str]], block: bytes | bytearray, before: int) -> list[BadRow]:
    """Bad rows with their line numbers in the file: each raw line found in the block, in order."""
    rows: list[BadRow] = []
    cursor = 0
    for reason, text in bad:
        found = block.find(text.encode(), cursor)
        if found < 0:
            rows.append((reason, None, text))
            continue
        rows.append((reason, before + block.count(b"\n", 0, found) + 1, text))
        cursor = found + len(text)
    return rows
