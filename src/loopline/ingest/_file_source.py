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
file goes on. Quoted values may hold line breaks; a quote never closed fails the file, naming its line.
"""

from __future__ import annotations

import re
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import polars as pl
import pyarrow as pa
from pydantic import Field, field_validator

from loopline.core.dtypes import check_dtype_name
from loopline.core.errors import DataError
from loopline.ingest._file_locations import LocalFiles, RemoteFiles, file_location
from loopline.ingest._files import DEFAULT_NULLS, only_member
from loopline.ingest._read_ahead import ReadAhead
from loopline.ingest._source import Batch, Limits, Reject, Source, SourceConfig

_HIVE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=([^/\\]*)$")


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
            location = file_location(self.config.path)
            fresh = False
            for path in self._files(location):
                signature = location.signature(path)
                taken = state.files.get(path)
                if taken is not None:
                    if taken != signature and path not in state.reported:
                        state.reported.add(path)
                        yield Batch(
                            pl.DataFrame(),
                            state.dump(),
                            rejects=[
                                Reject(
                                    f"file changed after it was ingested; not read again (now {signature}).",
                                    {"path": path},
                                    path,
                                )
                            ],
                        )
                    continue
                fresh = True
                yield from self._read_file(location, path, signature, state, limits)
            if not follow:
                return
            if not fresh:
                yield Batch(pl.DataFrame(), state.dump())
                time.sleep(limits.max_seconds)

    def _files(self, location: LocalFiles | RemoteFiles) -> list[str]:
        """The files to read: with no ``format:``, files of other kinds in a folder or glob are left out."""
        return location.files(keep=_known_format if self.config.format is None else None)

    def _read_file(
        self, location: LocalFiles | RemoteFiles, path: str, signature: list[Any], state: _State, limits: Limits
    ) -> Iterator[Batch]:
        local = location.local_path(path)
        if local is not None and self._whole_parquet(path, state):
            yield self._parquet_batch(path, local, signature, state)
            return
        fmt = self.config.format or _format_of(path)
        with ReadAhead(_read_batches(location, path, fmt, self.config), depth=2) as tables:  # parse ahead of the writer
            yield from self._slices(path, signature, tables, state, limits)

    def _slices(
        self, path: str, signature: list[Any], tables: Iterator[Any], state: _State, limits: Limits
    ) -> Iterator[Batch]:
        """Batches of ``limits.max_rows`` rows from a file's tables, after the rows committed before a restart."""
        skip = state.current_rows if state.current_path == path else 0
        done = 0
        pending: list[pa.Table] = []
        pending_rows = pending_bytes = 0
        rejects: list[Reject] = []
        partitions = _hive_values(path, self.config.path) if self.config.hive_partitioning else {}
        for table, bad in tables:
            if skip >= table.num_rows:  # committed before a restart, with its dead letters
                skip -= table.num_rows
                done += table.num_rows
                continue
            rejects.extend(Reject(reason, {"path": path, "line": line}, raw) for reason, line, raw in bad)
            if skip:
                table, done, skip = table.slice(skip), done + skip, 0
            pending.append(table)
            pending_rows += table.num_rows
            pending_bytes += table.get_total_buffer_size()
            while pending_rows >= limits.max_rows or (len(pending) > 1 and pending_bytes >= self._batch_bytes):
                merged = pa.concat_tables(pending, promote_options="default")
                size = min(pending_rows, limits.max_rows)
                head, rest = merged.slice(0, size), merged.slice(size)
                done += head.num_rows
                state.current_path, state.current_rows = path, done
                yield self._batch(path, head, partitions, state, rejects)
                pending_bytes = pending_bytes * rest.num_rows // max(1, pending_rows)
                rejects, pending, pending_rows = [], [rest] if rest.num_rows else [], rest.num_rows
        tail = pa.concat_tables(pending, promote_options="default") if pending else None
        state.files[path] = signature
        state.current_path, state.current_rows = None, 0
        if (tail is not None and tail.num_rows) or rejects:
            yield self._batch(path, tail, partitions, state, rejects)
        else:
            yield Batch(pl.DataFrame(), state.dump())

    @property
    def _batch_bytes(self) -> int:
        """A batch closes at a quarter of the memory budget (the engine holds a few copies while writing)."""
        return max(1 << 20, (self.config.memory_budget_mb << 20) // 4)

    def _whole_parquet(self, path: str, state: _State) -> bool:
        """A plain Parquet file, unmodified by this source (no partition columns, no date parsing), not half-read."""
        fmt = self.config.format or _format_of(path)
        partitions = _hive_values(path, self.config.path) if self.config.hive_partitioning else {}
        return fmt == "parquet" and not partitions and not self.config.parse_dates and state.current_path != path

    def _parquet_batch(self, path: str, local: Path, signature: list[Any], state: _State) -> Batch:
        import pyarrow.parquet as pq

        try:
            metadata = pq.read_metadata(local)
            schema = pl.DataFrame(pq.read_schema(local).empty_table())
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(
                f"cannot read {path!r} as parquet: {exc}",
                file=path,
                hint="Check that the file is a complete Parquet file.",
            ) from exc
        state.files[path] = signature
        return Batch(
            schema,
            state.dump(),
            bytes_read=local.stat().st_size,
            origin={"path": path},
            parquet_file=local,
            file_rows=metadata.num_rows,
        )

    def _batch(
        self, path: str, table: pa.Table | None, partitions: dict[str, str], state: _State, rejects: list[Reject]
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
        return Batch(frame, state.dump(), rejects=list(rejects), bytes_read=size, origin={"path": path})


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


def _known_format(path: str) -> bool:
    try:
        _format_of(path)
    except DataError:
        return False
    return True


def _format_of(path: str) -> str:
    from loopline.ingest._files import detect_format

    name = _name(path)
    return detect_format(Path(name[:-4] if name.endswith(".zst") else name))


def _name(path: str) -> str:
    """The file name, lower case (local paths and URLs alike)."""
    return PurePosixPath(path.replace("\\", "/")).name.lower()


def _hive_values(path: str, root: str) -> dict[str, str]:
    values = {}
    for part in PurePosixPath(path.replace("\\", "/")).parent.parts:
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
    location: LocalFiles | RemoteFiles, path: str, fmt: str, config: FileSourceConfig
) -> Iterator[tuple[pa.Table, list[tuple[str, Any, str]]]]:
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            with location.open(path) as raw:
                parquet = pq.ParquetFile(raw)
                for group in range(parquet.num_row_groups):
                    yield parquet.read_row_group(group), []
        elif fmt == "jsonl":
            yield from _jsonl(location, path, config)
        else:
            yield from _csv(location, path, config)
    except DataError as exc:
        if exc.file is not None or type(exc) is not DataError:  # already placed, or a subclass the engine retries
            raise
        raise DataError(f"{path!r}: {exc.message}", file=path, row=exc.row, hint=exc.hint) from exc
    except (pa.ArrowInvalid, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"cannot read {path!r} as {fmt}: {exc}",
            file=path,
            hint="Check the file's format, encoding (UTF-8) and compression.",
        ) from exc


@contextmanager
def _open(location: LocalFiles | RemoteFiles, path: str) -> Iterator[Any]:
    """The file's bytes, decompressed (zip of one file, gzip, zstd)."""
    name = _name(path)
    with location.open(path) as raw:
        if name.endswith(".zip"):
            with zipfile.ZipFile(raw) as archive, archive.open(only_member(archive, Path(path))) as member:
                yield member
        elif name.endswith((".gz", ".zst")):
            codec = "gzip" if name.endswith(".gz") else "zstd"
            with pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), codec) as stream:
                yield stream
        else:
            yield raw


def _csv(
    location: LocalFiles | RemoteFiles, path: str, config: FileSourceConfig
) -> Iterator[tuple[pa.Table, list[tuple[str, Any, str]]]]:
    from loopline.ingest._csv_blocks import csv_tables

    with _open(location, path) as stream:
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


def _jsonl(location: LocalFiles | RemoteFiles, path: str, config: FileSourceConfig) -> Iterator[tuple[pa.Table, Any]]:
    from loopline.ingest._jsonl_blocks import jsonl_tables

    with _open(location, path) as stream:
        yield from jsonl_tables(stream, block_bytes=_block_bytes(config.memory_budget_mb))
