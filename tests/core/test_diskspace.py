"""A full disk, recognised in each of its disguises and reported as itself."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import polars as pl
import pytest

from loopline.core.diskspace import disk_full_as_error, free_bytes, is_disk_full
from loopline.core.errors import DiskFullError


def _chained() -> BaseException:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise RuntimeError("the write failed") from exc
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        pl.exceptions.ComputeError("parquet: File out of specification: underlying IO error: (os error 28)"),
        sqlite3.OperationalError("database or disk is full"),
        _chained(),
    ],
    ids=["enospc", "edquot", "polars", "sqlite", "chained"],
)
def test_a_full_disk_is_recognised_in_each_disguise(exc: BaseException) -> None:
    assert is_disk_full(exc)


@pytest.mark.parametrize("exc", [OSError(errno.EACCES, "Permission denied"), ValueError("28 rows")])
def test_other_errors_are_not_a_full_disk(exc: BaseException) -> None:
    assert not is_disk_full(exc)


def test_the_message_names_the_path_the_space_needed_and_free_and_the_fix() -> None:
    message = str(DiskFullError("/data/artifacts", needed=3 * 2**20, free=512))
    assert message.startswith("no space left on the device holding /data/artifacts (needs about 3.0 MiB, free 512 B).")
    assert message.endswith("(a failed run resumes with `loopline run --resume RUN_ID`).")


def test_a_real_full_disk_becomes_a_disk_full_error_from_the_os_error(tiny_disk: Path) -> None:
    target = tiny_disk / "big.bin"
    needs = f"holding {tiny_disk} \\(needs about 3.0 MiB, free"
    with pytest.raises(DiskFullError, match=needs) as caught, disk_full_as_error(tiny_disk, 3 * 2**20):
        target.write_bytes(b"\0" * 3 * 2**20)
    assert isinstance(caught.value.__cause__, OSError) and caught.value.__cause__.errno == errno.ENOSPC
    assert free_bytes(tiny_disk / "not" / "yet") == free_bytes(tiny_disk)


def test_other_errors_pass_through_unchanged(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), disk_full_as_error(tmp_path):
        (tmp_path / "missing" / "x").read_bytes()
