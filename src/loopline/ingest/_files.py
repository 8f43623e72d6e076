"""Read CSV, Parquet and JSON Lines files (one file or a glob; .gz and single-member .zip) into polars."""

from __future__ import annotations

import glob as globlib
import gzip
import zipfile
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from loopline.core.errors import DataError
from loopline.core.hashing import fingerprint, sha256_file

FORMATS = ("csv", "parquet", "jsonl")
DEFAULT_NULLS = ("", "NA", "N/A", "null", "NULL", "NaN")


def resolve_paths(path: str | Path) -> list[Path]:
    """The files a path or glob names, sorted; a clear error when there are none."""
    text = str(path)
    if any(char in text for char in "*?["):
        matches = sorted(Path(p) for p in globlib.glob(text, recursive=True) if Path(p).is_file())
        if not matches:
            raise DataError(f"no file matches {text!r}.", file=text, hint="Check the pattern and the folder.")
        return matches
    file = Path(text)
    if not file.is_file():
        raise DataError(
            f"input file {text!r} does not exist.",
            file=text,
            hint="Check the path (relative paths start at the current directory).",
        )
    return [file]


def detect_format(path: Path) -> str:
    """csv, parquet or jsonl, from the file name (compression suffixes ignored)."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in (".gz", ".zip")]
    ext = suffixes[-1].lstrip(".") if suffixes else ""
    fmt = {"csv": "csv", "tsv": "csv", "parquet": "parquet", "pq": "parquet", "jsonl": "jsonl", "ndjson": "jsonl"}.get(
        ext
    )
    if fmt is None:
        raise DataError(
            f"cannot tell the format of {str(path)!r}.",
            file=str(path),
            hint=f"Set 'format:' to one of {', '.join(FORMATS)}.",
        )
    return fmt


def read_files(
    path: str | Path,
    *,
    format: str | None = None,
    null_values: Sequence[str] = DEFAULT_NULLS,
    columns: Sequence[str] | None = None,
    parse_dates: Sequence[str] = (),
) -> pl.DataFrame:
    """Read every file a path names into one frame (columns aligned by name)."""
    frames = [_read_one(p, format or detect_format(p), null_values) for p in resolve_paths(path)]
    frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    if columns:
        _require_columns(frame, columns, str(path))
        frame = frame.select(columns)
    return parse_datetimes(frame, parse_dates, source=str(path))


def files_fingerprint(path: str | Path) -> str:
    """Content hash of every file a path names: a changed byte changes it."""
    return fingerprint([(str(p), sha256_file(p)) for p in resolve_paths(path)])


def parse_datetimes(frame: pl.DataFrame, columns: Sequence[str], *, source: str = "") -> pl.DataFrame:
    """Parse ISO-8601 string columns into UTC datetimes (naive values are taken as UTC)."""
    _require_columns(frame, columns, source)
    exprs = []
    for name in columns:
        dtype = frame.schema[name]
        if dtype == pl.String:
            exprs.append(pl.col(name).str.to_datetime(time_zone="UTC", strict=False).alias(name))
        elif isinstance(dtype, pl.Datetime):
            exprs.append(
                pl.col(name).dt.replace_time_zone("UTC")
                if dtype.time_zone is None
                else pl.col(name).dt.convert_time_zone("UTC")
            )
    parsed = frame.with_columns(exprs) if exprs else frame
    for name in columns:
        bad = parsed[name].null_count() - frame[name].null_count()
        if bad:
            raise DataError(
                f"column {name!r} of {source!r}: {bad} value(s) are not ISO-8601 timestamps.",
                file=source,
                column=name,
                hint="Fix those values or drop the column from parse_dates.",
            )
    return parsed


def _read_one(path: Path, fmt: str, null_values: Sequence[str]) -> pl.DataFrame:
    if fmt not in FORMATS:
        raise DataError(
            f"unknown format {fmt!r} for {str(path)!r}.", file=str(path), hint=f"Use one of {', '.join(FORMATS)}."
        )
    data: bytes | Path = _decompress(path)
    try:
        if fmt == "parquet":
            return pl.read_parquet(data)
        if fmt == "jsonl":
            return pl.read_ndjson(data)
        return pl.read_csv(
            data,
            null_values=list(null_values),
            infer_schema_length=100_000,
            separator="\t" if ".tsv" in path.name else ",",
        )
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise DataError(
            f"cannot read {str(path)!r} as {fmt}: {exc}",
            file=str(path),
            hint="Check the file's format and encoding (UTF-8).",
        ) from exc


def _decompress(path: Path) -> bytes | Path:
    name = path.name.lower()
    try:
        if name.endswith(".gz"):
            return gzip.decompress(path.read_bytes())
        if name.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                return archive.read(only_member(archive, path))
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{str(path)!r} is a damaged archive: {exc}", file=str(path), hint="Re-create or re-download the file."
        ) from exc
    return path


def only_member(archive: zipfile.ZipFile, path: Path) -> str:
    """The one file inside a zip; loopline reads zips of one file (a clear error otherwise)."""
    members = [m for m in archive.namelist() if not m.endswith("/")]
    if len(members) != 1:
        raise DataError(
            f"{str(path)!r} holds {len(members)} files; loopline reads zips of one file.",
            file=str(path),
            hint="Unzip it and point 'path' at the file(s) you want.",
        )
    return members[0]


def _require_columns(frame: pl.DataFrame, columns: Sequence[str], source: str) -> None:
    from loopline.core.errors import did_you_mean

    for name in columns:
        if name not in frame.columns:
            hint = did_you_mean(name, frame.columns) or f"Columns: {', '.join(frame.columns)}."
            raise DataError(f"column {name!r} is not in {source!r}.", file=source, column=name, hint=hint)
