"""``type: file`` for ingestion: one file, a glob, or a lake folder (hive partitions become columns).

Position: a manifest of the files already taken — ``{"files": {path: signature}, "current": {"path", "rows"}}``
— where a signature is ``[size, mtime_ns, quick_checksum]`` (a BLAKE2 hash of the size and the first and
last MiB, cheap on any file size). A new file is read; a file already taken is skipped; a file taken
whose signature changed is not re-read (that would duplicate rows) but reported as a dead letter. A file
read halfway when the process died resumes after its last committed row (``current``).

Memory is bounded by ``memory_budget_mb``: CSV is cut into blocks of a sixteenth of it, parsed on all cores
one block ahead of the engine writing the previous batch (``_csv_blocks``, ``_read_ahead``); a batch closes
at ``limits.max_rows`` or a quarter of the budget; Parquet is read by row groups; a Parquet file that needs
no change is handed over whole and stored as it is. A file larger than memory is ingested with a peak RSS
of a few batches. Malformed CSV rows (ragged) become dead letters with the file and line; the rest of the
file goes on.
"""

from __future__ import annotations

import glob as globlib
import hashlib
import io
import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
import pyarrow as pa
from pydantic import Field, field_validator

from loopline.core.dtypes import check_dtype_name
from loopline.core.errors import DataError
from loopline.ingest._files import DEFAULT_NULLS, only_member
from loopline.ingest._read_ahead import ReadAhead
from loopline.ingest._source import SOURCES, Batch, Limits, Reject, Source, SourceConfig

_HIVE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=([^/\\]*)$")
_EDGE = 1 << 20


class FileSourceConfig(SourceConfig):
    """Files to ingest: a path, a glob, or a folder (every CSV/Parquet/JSONL file below it)."""

    path: Annotated[str, Field(description="File, glob, or folder; hive folders (year=2024/) become columns.")]
    format: Literal["csv", "parquet", "jsonl"] | None = None
    null_values: list[str] = list(DEFAULT_NULLS)
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    parse_dates: list[str] = []
    hive_partitioning: bool = True
    column_types: Annotated[
        dict[str, str],
        Field(description="CSV column -> type (Int64, Float64, String, Boolean...), instead of inferring it."),
    ] = {}
    memory_budget_mb: Annotated[
        int, Field(ge=0, description="Memory the source aims to stay within: CSV is parsed in blocks of 1/16 of it.")
    ] = 256

    @field_validator("column_types")
    @classmethod
    def _known_types(cls, value: dict[str, str]) -> dict[str, str]:
        return {name: check_dtype_name(dtype) for name, dtype in value.items()}


class FileSource(Source):
    """Reads new files (and the rest of a half-read one) in bounded batches."""

    type_name = "file"
    Config = FileSourceConfig
    config: FileSourceConfig

    def batches(self, position: Any, *, follow: bool = False, limits: Limits = Limits()) -> Iterator[Batch]:
        state = _State.load(position)
        while True:
            files = _list_files(self.config.path)
            fresh = False
            for path in files:
                signature = _signature(path)
                taken = state.files.get(str(path))
                if taken is not None:
                    if taken != signature and str(path) not in state.reported:
                        state.reported.add(str(path))
                        yield Batch(
                            pl.DataFrame(),
                            state.dump(),
                            rejects=[
                                Reject(
                                    f"file changed after it was ingested; not read again (now {signature}).",
                                    {"path": str(path)},
                                    str(path),
                                )
                            ],
                        )
                    continue
                fresh = True
                yield from self._read_file(path, signature, state, limits)
            if not follow:
                return
            if not fresh:
                yield Batch(pl.DataFrame(), state.dump())
                import time

                time.sleep(limits.max_seconds)

    def _read_file(self, path: Path, signature: list[Any], state: _State, limits: Limits) -> Iterator[Batch]:
        if self._whole_parquet(path, state):
            yield self._parquet_batch(path, signature, state)
            return
        fmt = self.config.format or _format_of(path)
        with ReadAhead(_read_batches(path, fmt, self.config)) as tables:  # parse ahead while batches are written
            yield from self._slices(path, signature, tables, state, limits)

    def _slices(
        self, path: Path, signature: list[Any], tables: Iterator[Any], state: _State, limits: Limits
    ) -> Iterator[Batch]:
        """Batches of ``limits.max_rows`` rows from a file's tables, after the rows committed before a restart."""
        skip = state.current_rows if state.current_path == str(path) else 0
        done = 0
        pending: list[pa.Table] = []
        rejects: list[Reject] = []
        partitions = _hive_values(path, self.config.path) if self.config.hive_partitioning else {}
        for table, bad in tables:
            if skip >= table.num_rows:  # committed before a restart, with its dead letters
                skip -= table.num_rows
                done += table.num_rows
                continue
            rejects.extend(Reject(reason, {"path": str(path), "line": line}, raw) for reason, line, raw in bad)
            if skip:
                table, done, skip = table.slice(skip), done + skip, 0
            pending.append(table)
            while (rows := sum(t.num_rows for t in pending)) >= limits.max_rows or (
                len(pending) > 1 and sum(t.nbytes for t in pending) >= self._batch_bytes
            ):
                merged = pa.concat_tables(pending, promote_options="default")
                size = min(rows, limits.max_rows)
                head, rest = merged.slice(0, size), merged.slice(size)
                done += head.num_rows
                state.current_path, state.current_rows = str(path), done
                yield self._batch(path, head, partitions, state, rejects)
                rejects, pending = [], [rest] if rest.num_rows else []
        tail = pa.concat_tables(pending, promote_options="default") if pending else None
        state.files[str(path)] = signature
        state.current_path, state.current_rows = None, 0
        if (tail is not None and tail.num_rows) or rejects:
            yield self._batch(path, tail, partitions, state, rejects)
        else:
            yield Batch(pl.DataFrame(), state.dump())

    @property
    def _batch_bytes(self) -> int:
        """A batch closes at a quarter of the memory budget (the engine holds a few copies while writing)."""
        return max(1 << 20, (self.config.memory_budget_mb << 20) // 4)

    def _whole_parquet(self, path: Path, state: _State) -> bool:
        """A plain Parquet file, unmodified by this source (no partition columns, no date parsing), not half-read."""
        fmt = self.config.format or _format_of(path)
        partitions = _hive_values(path, self.config.path) if self.config.hive_partitioning else {}
        return fmt == "parquet" and not partitions and not self.config.parse_dates and state.current_path != str(path)

    def _parquet_batch(self, path: Path, signature: list[Any], state: _State) -> Batch:
        import pyarrow.parquet as pq

        try:
            metadata = pq.read_metadata(path)
            schema = pl.DataFrame(pq.read_schema(path).empty_table())
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(
                f"cannot read {str(path)!r} as parquet: {exc}",
                file=str(path),
                hint="Check that the file is a complete Parquet file.",
            ) from exc
        state.files[str(path)] = signature
        return Batch(
            schema,
            state.dump(),
            bytes_read=path.stat().st_size,
            origin={"path": str(path)},
            parquet_file=path,
            file_rows=metadata.num_rows,
        )

    def _batch(
        self, path: Path, table: pa.Table | None, partitions: dict[str, str], state: _State, rejects: list[Reject]
    ) -> Batch:
        frame = pl.DataFrame(pl.from_arrow(table)) if table is not None else pl.DataFrame()
        stamps = [
            name for name, dtype in frame.schema.items() if isinstance(dtype, pl.Datetime) and dtype.time_unit != "us"
        ]
        if stamps:  # one unit whatever the reader or the file, so batches keep one schema
            frame = frame.with_columns([pl.col(name).dt.cast_time_unit("us") for name in stamps])
        if frame.height and partitions:
            frame = frame.with_columns([pl.lit(_typed(v)).alias(k) for k, v in partitions.items()])
        if frame.height and self.config.parse_dates:
            from loopline.ingest._files import parse_datetimes

            frame = parse_datetimes(frame, self.config.parse_dates, source=self.config.path)
        size = table.nbytes if table is not None else 0
        return Batch(frame, state.dump(), rejects=list(rejects), bytes_read=size, origin={"path": str(path)})


class _State:
    """The manifest position, mutable while reading."""

    def __init__(self, files: dict[str, list[Any]], current_path: str | None, current_rows: int) -> None:
        self.files = files
        self.current_path = current_path
        self.current_rows = current_rows
        self.reported: set[str] = set()

    @classmethod
    def load(cls, position: Any) -> _State:
        position = position or {}
        current = position.get("current") or {}
        return cls(dict(position.get("files", {})), current.get("path"), int(current.get("rows", 0)))

    def dump(self) -> dict[str, Any]:
        current = {"path": self.current_path, "rows": self.current_rows} if self.current_path else None
        return {"files": dict(self.files), "current": current}


def _list_files(path: str) -> list[Path]:
    target = Path(path)
    if target.is_dir():
        found = [p for p in target.rglob("*") if p.is_file() and _known_format(p)]
    elif any(c in path for c in "*?["):
        found = [Path(p) for p in globlib.glob(path, recursive=True) if Path(p).is_file()]
    elif target.is_file():
        found = [target]
    else:
        raise DataError(f"input {path!r} does not exist.", file=path, hint="Check the path of the source.")
    return sorted(found)


def _known_format(path: Path) -> bool:
    try:
        _format_of(path)
    except DataError:
        return False
    return True


def _format_of(path: Path) -> str:
    from loopline.ingest._files import detect_format

    name = path.name.lower()
    if name.endswith(".zst"):
        return detect_format(Path(name[:-4]))
    return detect_format(path)


def _signature(path: Path) -> list[Any]:
    stat = path.stat()
    digest = hashlib.blake2b(str(stat.st_size).encode(), digest_size=16)
    with open(path, "rb") as handle:
        digest.update(handle.read(_EDGE))
        if stat.st_size > 2 * _EDGE:
            handle.seek(-_EDGE, os.SEEK_END)
            digest.update(handle.read(_EDGE))
    return [stat.st_size, stat.st_mtime_ns, digest.hexdigest()]


def _hive_values(path: Path, root: str) -> dict[str, str]:
    values = {}
    for part in path.parent.parts:
        match = _HIVE.match(part)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def _typed(value: str) -> Any:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def _read_batches(
    path: Path, fmt: str, config: FileSourceConfig
) -> Iterator[tuple[pa.Table, list[tuple[str, Any, str]]]]:
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(path)
            for group in range(parquet.num_row_groups):
                yield parquet.read_row_group(group), []
        elif fmt == "jsonl":
            yield from _jsonl(path)
        else:
            yield from _csv(path, config)
    except (pa.ArrowInvalid, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"cannot read {str(path)!r} as {fmt}: {exc}",
            file=str(path),
            hint="Check the file's format, encoding (UTF-8) and compression.",
        ) from exc


def _open(path: Path) -> Any:
    name = path.name.lower()
    if name.endswith(".zip"):
        archive = zipfile.ZipFile(path)
        return archive.open(only_member(archive, path))
    if name.endswith(".gz"):
        return pa.CompressedInputStream(pa.OSFile(str(path)), "gzip")
    if name.endswith(".zst"):
        return pa.CompressedInputStream(pa.OSFile(str(path)), "zstd")
    return pa.OSFile(str(path))


def _csv(path: Path, config: FileSourceConfig) -> Iterator[tuple[pa.Table, list[tuple[str, Any, str]]]]:
    from loopline.ingest._csv_blocks import csv_tables

    with _open(path) as stream:
        yield from csv_tables(
            stream,
            delimiter=config.delimiter,
            null_values=list(config.null_values),
            block_bytes=_block_bytes(config.memory_budget_mb),
            column_types=_arrow_types(config.column_types),
        )


def _block_bytes(budget_mb: int) -> int:
    """CSV block size: a sixteenth of the memory budget, between 64 KiB and 16 MiB."""
    return max(64 << 10, min(16 << 20, (budget_mb << 20) // 16))


def _arrow_types(column_types: dict[str, str]) -> dict[str, pa.DataType]:
    from loopline.core.dtypes import polars_dtype

    return {name: pl.Series([], dtype=polars_dtype(dtype)).to_arrow().type for name, dtype in column_types.items()}


def _plain(path: Path) -> bool:
    return not path.name.lower().endswith((".gz", ".zip", ".zst", ".bz2"))


def _jsonl(path: Path) -> Iterator[tuple[pa.Table, list[tuple[str, Any, str]]]]:
    with _open(path) as stream:
        data = stream.read()
    try:
        frame = pl.read_ndjson(io.BytesIO(data))
    except pl.exceptions.PolarsError:
        yield from _jsonl_lines(data)
        return
    yield frame.to_arrow(), []


def _jsonl_lines(data: bytes) -> Iterator[tuple[pa.Table, list[tuple[str, Any, str]]]]:
    import json

    good, bad = [], []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
            if not isinstance(value, dict):
                raise ValueError("a JSON Lines row must be an object")
            good.append(value)
        except ValueError as exc:
            bad.append((f"invalid JSON: {exc}", number, line.decode("utf-8", "replace")))
    yield pl.DataFrame(good).to_arrow() if good else pa.table({}), bad


SOURCES.register(FileSource.type_name, FileSource)
