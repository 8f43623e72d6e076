"""What a remote filesystem URL needs installed: fsspec's backend package and the loopline extra bringing it."""

from __future__ import annotations

FSSPEC_EXTRAS: dict[str, tuple[str, str]] = {
    "s3": ("s3fs", "s3"),
    "s3a": ("s3fs", "s3"),
    "gs": ("gcsfs", "gcs"),
    "gcs": ("gcsfs", "gcs"),
    "az": ("adlfs", "azure"),
    "abfs": ("adlfs", "azure"),
    "abfss": ("adlfs", "azure"),
}
"""URL scheme -> (the package fsspec imports for it, the loopline extra that installs it)."""
