"""Disk full, recognised wherever it surfaces and reported as itself.

ENOSPC reaches loopline in many disguises: an ``OSError`` (errno 28, or EDQUOT), a polars ``ComputeError``
that wraps "os error 28", SQLite's "database or disk is full", PostgreSQL's SQLSTATE 53100. Every write boundary
(the artifact store, the dataset parts, the metadata store, the prediction log) wraps its write in
:func:`disk_full_as_error`, which turns any of them into one :class:`~loopline.core.errors.DiskFullError` naming
the path, the space the write needed and the space left.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loopline.core.errors import DiskFullError

_CODES = {errno.ENOSPC, errno.EDQUOT}
_MESSAGES = ("no space left on device", "os error 28", "database or disk is full", "disk quota exceeded")
_PG_DISK_FULL = "53100"


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc``, or an error it was raised from or wraps (SQLAlchemy's ``orig``), is a full disk."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, DiskFullError):
            return True
        if isinstance(current, OSError) and current.errno in _CODES:
            return True
        if getattr(current, "sqlstate", None) == _PG_DISK_FULL:
            return True
        if any(text in str(current).lower() for text in _MESSAGES):
            return True
        pending += [current.__cause__, current.__context__, getattr(current, "orig", None)]
    return False


def free_bytes(path: str | Path) -> int | None:
    """Free bytes on the filesystem holding ``path`` (its nearest existing folder), or None if unknown."""
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def disk_full_error(path: str | Path, needed: int | None = None) -> DiskFullError:
    """The error for a write of ``needed`` bytes under ``path`` that found the disk full."""
    local = not str(path).partition("://")[1]  # a URL's free space is not ours to measure
    return DiskFullError(str(path), needed=needed, free=free_bytes(path) if local else None)


@contextmanager
def disk_full_as_error(path: str | Path, needed: int | None = None) -> Iterator[None]:
    """Re-raise a full disk met in the block as :class:`DiskFullError` (from the original); the rest as is."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as exc:
        if is_disk_full(exc):
            raise disk_full_error(path, needed) from exc
        raise
