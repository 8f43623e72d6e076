"""The content-addressed artifact store: every blob lives at ``root/<2 hex>/<64 hex sha256>``."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import polars as pl

from loopline.core.errors import IntegrityError, NotFoundError
from loopline.core.hashing import canonical_json, sha256_bytes

_DIGEST = re.compile(r"[0-9a-f]{64}")


class ArtifactStore:
    """Blobs addressed by the SHA-256 of their bytes.

    Guarantees: a write is atomic (temp file in the target directory, fsync, ``os.replace``), so readers
    see a whole blob or none; writing the same bytes twice is a no-op; a read verifies the digest. Only
    ``^[0-9a-f]{64}$`` digests are accepted, so no digest can name a path outside ``root``.
    Safe to share between threads and processes.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        """Where the blob for ``digest`` lives (it may not exist)."""
        _check_digest(digest)
        return self.root / digest[:2] / digest

    def exists(self, digest: str) -> bool:
        """Whether a blob is stored under ``digest``."""
        return self.path(digest).is_file()

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` and return its digest."""
        digest = sha256_bytes(data)
        target = self.path(digest)
        if _already_stored(target, len(data)):
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(target, data)
        return digest

    def put_file(self, path: str | Path) -> str:
        """Store a copy of a file (copied by the kernel, hashed, moved in place) and return the digest."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".part")
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            return self._adopt(Path(tmp))
        finally:
            Path(tmp).unlink(missing_ok=True)

    def get_bytes(self, digest: str) -> bytes:
        """The blob stored under ``digest``, verified against it."""
        target = self.path(digest)
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"artifact {digest} does not exist under {self.root}",
                hint="Check LOOPLINE_HOME points at the right store, or re-run the step that produced it.",
            ) from None
        actual = sha256_bytes(data)
        if actual != digest:
            raise IntegrityError(
                f"artifact {digest} is corrupted: its bytes hash to {actual}",
                hint=f"Delete {target} and re-run the step that produced it.",
            )
        return data

    def put_table(self, df: pl.DataFrame, *, compression: str = "zstd", statistics: bool = True) -> str:
        """Store a table as Parquet and return its digest.

        ``lz4`` and ``statistics=False`` trade file size and read-time pruning for write speed. The file is
        written by polars straight into the store (no copy through Python), then hashed and moved in place.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".parquet")
        os.close(fd)
        try:
            df.write_parquet(tmp, compression=compression, statistics=statistics)  # type: ignore[arg-type]
            return self._adopt(Path(tmp))
        finally:
            Path(tmp).unlink(missing_ok=True)

    def _adopt(self, tmp: Path) -> str:
        """Move a finished temp file under its digest (fsynced first); a blob already there wins."""
        with open(tmp, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
            os.fsync(handle.fileno())
        target = self.path(digest)
        if _already_stored(target, tmp.stat().st_size):
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
        return digest

    def get_table(self, digest: str) -> pl.DataFrame:
        """The table stored under ``digest``."""
        return pl.read_parquet(io.BytesIO(self.get_bytes(digest)))

    def put_json(self, value: Any) -> str:
        """Store ``value`` as canonical JSON (sorted keys, no spaces) and return its digest."""
        return self.put_bytes(canonical_json(value))

    def get_json(self, digest: str) -> Any:
        """The JSON value stored under ``digest``."""
        return json.loads(self.get_bytes(digest))

    def __repr__(self) -> str:
        return f"ArtifactStore(root={str(self.root)!r})"


def _check_digest(digest: str) -> None:
    if not isinstance(digest, str) or _DIGEST.fullmatch(digest) is None:
        raise IntegrityError(
            f"{digest!r} is not an artifact digest",
            hint="Pass the 64-character lowercase hex SHA-256 returned by put_bytes/put_table/put_json.",
        )


def _already_stored(target: Path, size: int) -> bool:
    """Whether ``target`` holds a blob of ``size`` bytes; if so its mtime is refreshed, so that
    ``loopline store check --fix`` treats it as young while the writer goes on to reference it."""
    try:
        if target.stat().st_size != size:
            return False
    except FileNotFoundError:
        return False
    with contextlib.suppress(OSError):  # a blob we may not touch is still stored
        os.utime(target)
    return True


def _write_atomic(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
