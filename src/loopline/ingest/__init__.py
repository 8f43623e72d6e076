"""Ingest: read sources into polars frames (files, globs, shipped sample data)."""

from loopline.ingest._files import DEFAULT_NULLS, FORMATS, detect_format, files_fingerprint, parse_datetimes, read_files
from loopline.ingest._samples import SAMPLES, sample_path

__all__ = [
    "DEFAULT_NULLS",
    "FORMATS",
    "SAMPLES",
    "detect_format",
    "files_fingerprint",
    "parse_datetimes",
    "read_files",
    "sample_path",
]
