"""The inputs of batch scoring, read in chunks of bounded size.

A file is CSV, Parquet or JSON Lines by its extension (``.gz`` allowed), local or any fsspec URL; a stored
dataset version is ``dataset:NAME`` or ``dataset:NAME@VERSION``. Parquet files and dataset parts are read by
polars' streaming scan (memory: a few row groups); CSV and JSON Lines in blocks of whole lines, parsed with
the types polars gives the whole file (inferred from its first 100 rows), because polars' own scans of
them hold memory in proportion to the file.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from loopline.core.dtypes import polars_dtype
from loopline.core.errors import ConfigError, DataError

if TYPE_CHECKING:
    from loopline.store import Store

DATASET_PREFIX = "dataset:"
_INPUT_FORMATS = {
    "csv": "csv",
    "tsv": "csv",
    "parquet": "parquet",
    "pq": "parquet",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
}
_INFER_ROWS = 100  # polars' infer_schema_length: the rows a whole-file read takes its types from
_FIRST_BLOCK = 1 << 20
_MIN_BLOCK = 1 << 16
_MAX_BLOCK = 1 << 26


@dataclass(frozen=True)
class ScoreInput:
    """An opened input: its columns and types, its row count when known, and its chunks."""

    label: str
    schema: dict[str, Any]
    total: int | None
    chunks: Callable[[list[str], int], Iterator[pl.DataFrame]]


def open_input(store: Store, input: str | Path, *, text_columns: Sequence[str] = ()) -> ScoreInput:
    """The input named by ``input``. A CSV file's ``text_columns`` are read as text rather than typed from its
    first rows, for the input policy to convert as it converts an MLflow CSV upload's cells: ``007`` stays
    ``007`` for a text input, and a value polars could not parse as its guessed type gets the policy's error."""
    text = str(input)
    if text.startswith(DATASET_PREFIX):
        return _dataset_input(store, text[len(DATASET_PREFIX) :])
    return _file_input(text, text_columns)


def _file_input(text: str, text_columns: Sequence[str] = ()) -> ScoreInput:
    remote = "://" in text and not text.startswith("file://")
    path = text.removeprefix("file://")
    if not remote and not Path(path).is_file():
        raise DataError(
            f"input file {text!r} does not exist.",
            file=text,
            hint="Check the path, or name a dataset version as dataset:NAME[@VERSION].",
        )
    fmt = _input_format(path)
    if fmt == "parquet":
        frame = pl.scan_parquet(path)
        total = frame.select(pl.len()).collect().item()  # from the footers

        def parquet_chunks(columns: list[str], size: int) -> Iterator[pl.DataFrame]:
            yield from _rebatch(_batches(frame.select(columns), size, text), size)

        return ScoreInput(text, dict(frame.collect_schema()), total, parquet_chunks)
    header, sample = _head(path, fmt)
    text_types = {name: pl.String() for name in text_columns} if fmt == "csv" else None
    try:  # typed as polars types a whole file: from the first rows
        schema = dict(_parse(fmt, header + sample, None, overrides=text_types).schema)
    except pl.exceptions.PolarsError as exc:
        raise _unreadable(text, exc) from None

    def text_chunks(columns: list[str], size: int) -> Iterator[pl.DataFrame]:
        yield from _rebatch(_text_frames(path, fmt, schema, columns, size, text), size)

    return ScoreInput(text, schema, None, text_chunks)


def _head(path: str, fmt: str) -> tuple[bytes, bytes]:
    """The header (CSV) and the next rows polars infers a whole file's types from: whole records, so a quoted
    value's line breaks stay inside it."""
    with _open_text(path) as stream:
        if fmt != "csv":
            return b"", b"".join(stream.readline() for _ in range(_INFER_ROWS))
        return _records(stream, 1), _records(stream, _INFER_ROWS)


def _records(stream: Any, count: int) -> bytes:
    """``count`` lines of CSV, and more while a quoted value is open (up to ``_MAX_BLOCK`` bytes)."""
    from loopline.ingest import CsvRecords

    data = b"".join(stream.readline() for _ in range(count))
    records = CsvRecords()
    while len(data) < _MAX_BLOCK and records.ends_open(data) and (line := stream.readline()):
        data += line
    return data


def _open_text(path: str) -> Any:
    import fsspec

    return fsspec.open(path, "rb", compression="infer").open()


def _text_frames(
    path: str, fmt: str, schema: dict[str, Any], columns: list[str], size: int, label: str
) -> Iterator[pl.DataFrame]:
    """CSV or JSON Lines parsed in blocks of whole lines, sized to hold about ``size`` rows each.

    polars' own scans of these formats hold memory in proportion to the file; blocks do not.
    """
    block_bytes = [_FIRST_BLOCK]  # resized after each block to hold about ``size`` rows
    with _open_text(path) as stream:
        header = _records(stream, 1) if fmt == "csv" else b""
        for block in _line_blocks(stream, lambda: block_bytes[0], csv=fmt == "csv"):
            try:
                frame = _parse(fmt, header + block, schema).select(columns)
            except pl.exceptions.PolarsError as exc:
                raise _unreadable(label, exc) from None
            if frame.height:
                block_bytes[0] = min(max(len(block) * size // frame.height, _MIN_BLOCK), _MAX_BLOCK)
            yield frame


def _parse(
    fmt: str, data: bytes | bytearray, schema: dict[str, Any] | None, *, overrides: dict[str, Any] | None = None
) -> pl.DataFrame:
    source = io.BytesIO(data)
    if fmt == "csv":
        return (
            pl.read_csv(source, schema=schema)
            if schema is not None
            else pl.read_csv(source, schema_overrides=overrides)
        )
    if not data.strip():
        return pl.DataFrame(schema=schema)
    return pl.read_ndjson(source, schema=schema)


def _line_blocks(stream: Any, size: Callable[[], int], *, csv: bool = False) -> Iterator[bytes]:
    """Blocks of about ``size()`` bytes that end at a line end (with ``csv``: a record end, never inside
    quotes); the partial line is carried over."""
    from loopline.ingest import CsvRecords

    records = CsvRecords() if csv else None
    rest = b""
    while chunk := stream.read(size()):
        data = rest + chunk
        cut = records.last_end(data, len(data)) if records else data.rfind(b"\n") + 1
        if cut:
            rest = data[cut:]
            yield data[:cut]
        else:
            rest = data
    if rest.strip():
        yield rest if rest.endswith(b"\n") else rest + b"\n"


def _rebatch(frames: Iterator[pl.DataFrame], size: int) -> Iterator[pl.DataFrame]:
    """Chunks of exactly ``size`` rows (the last one fewer) from frames of any length."""
    pending: list[pl.DataFrame] = []
    held = 0
    for frame in frames:
        while frame.height:
            take = frame.head(size - held)
            pending.append(take)
            held += take.height
            frame = frame.slice(take.height)
            if held == size:
                yield pl.concat(pending, how="vertical_relaxed")
                pending, held = [], 0
    if held:
        yield pl.concat(pending, how="vertical_relaxed")


def _input_format(path: str) -> str:
    suffixes = [s.lower().lstrip(".") for s in Path(path).suffixes if s.lower() != ".gz"]
    fmt = _INPUT_FORMATS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise DataError(
            f"cannot tell the format of {path!r} from its name.",
            file=path,
            hint="Name it .csv, .parquet or .jsonl (optionally .gz), or ingest it and pass dataset:NAME.",
        )
    return fmt


def _dataset_input(store: Store, spec: str) -> ScoreInput:
    """``NAME`` or ``NAME@VERSION``: the version's parts read one at a time, each verified first."""
    name, sep, number = spec.partition("@")
    if not name or (sep and not number.removeprefix("v").isdigit()):
        raise ConfigError(
            f"{DATASET_PREFIX}{spec!r} is not a dataset version.", hint="Write dataset:NAME or dataset:NAME@3."
        )
    snapshot = store.datasets.version(name, int(number.removeprefix("v")) if sep else None)
    contract = store.datasets.schema(name) or {}
    schema = {column: polars_dtype(dtype) for column, dtype in (snapshot.schema or contract).items()}
    parts = store.datasets.parts(name, snapshot.upto_seq)
    label = f"{DATASET_PREFIX}{name}@{snapshot.version}"

    def part_batches(columns: list[str], size: int) -> Iterator[pl.DataFrame]:
        for part in parts:
            # a local file whose bytes match the digest (hashed as a stream, never held whole)
            with store.artifacts.verified_file(part["digest"]) as path:
                scan = pl.scan_parquet(path)
                present = scan.collect_schema()
                exprs = [pl.col(c) if c in present else pl.lit(None, schema[c]).alias(c) for c in columns]
                yield from _batches(scan.select(exprs), size, label)

    def chunks(columns: list[str], size: int) -> Iterator[pl.DataFrame]:
        yield from _rebatch(part_batches(columns, size), size)  # chunks span parts: one size, whatever the parts

    return ScoreInput(label, schema, snapshot.rows, chunks)


def _batches(scan: pl.LazyFrame, size: int, label: str) -> Iterator[pl.DataFrame]:
    """The scan's rows in batches of about ``size`` rows; a read error as DataError naming ``label``."""
    iterator = iter(scan.collect_batches(chunk_size=size))
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except pl.exceptions.PolarsError as exc:
            raise _unreadable(label, exc) from None
        yield batch


def _unreadable(label: str, exc: Exception) -> DataError:
    """A read error of the input as DataError naming it, with the parser's first line."""
    return DataError(
        f"cannot read {label}: {str(exc).splitlines()[0]}",
        file=label,
        hint="Check the file is complete, in the format its name says, and that every quoted value is closed.",
    )


def same_file(label: str, target: Path) -> bool:
    if label.startswith(DATASET_PREFIX) or "://" in label:
        return False
    return Path(label).resolve() == target
