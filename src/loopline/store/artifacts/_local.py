"""The artifact store in a local folder: every blob lives at ``root/<2 hex>/<64 hex sha256>``."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import polars as pl

from loopline.core.diskspace import disk_full_as_error
from loopline.core.errors import NotFoundError
from loopline.core.hashing import sha256_bytes
from loopline.store.artifacts._contract import (
    SHARD,
    TEMP_PREFIX,
    ArtifactEntry,
    ArtifactStore,
    check_digest,
    check_entry_name,
    classify,
    corrupted,
)


class LocalArtifactStore(ArtifactStore):
    """Blobs in a local folder (see :class:`ArtifactStore` for the guarantees).

    A write is a temp file in the target folder, fsynced, then ``os.replace``-d in place (the folder is
    fsynced too); a blob already stored with the same size is kept and its mtime refreshed.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def location(self) -> str:
        return str(self.root)

    def path(self, digest: str) -> Path:
        """Where the blob for ``digest`` lives (it may not exist)."""
        check_digest(digest)
        return self.root / digest[:2] / digest

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put_bytes(self, data: bytes) -> str:
        digest = sha256_bytes(data)
        target = self.path(digest)
        if _already_stored(target, len(data)):
            return digest
        with disk_full_as_error(self.root, len(data)):
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(target, data)
        return digest

    def put_file(self, path: str | Path) -> str:
        """Store a copy of a file (copied by the kernel, hashed, moved in place) and return the digest."""
        with disk_full_as_error(self.root, Path(path).stat().st_size), self._temp(".part") as tmp:
            shutil.copyfile(path, tmp)
            return self._adopt(tmp)

    def get_bytes(self, digest: str) -> bytes:
        target = self.path(digest)
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise self._missing(digest) from None
        actual = sha256_bytes(data)
        if actual != digest:
            raise corrupted(digest, actual, str(target))
        return data

    def put_table(self, df: pl.DataFrame, *, compression: str = "zstd", statistics: bool = True) -> str:
        """Store a table as Parquet and return its digest.

        The file is written by polars straight into the store (no copy through Python), then hashed and
        moved in place.
        """
        with disk_full_as_error(self.root, int(df.estimated_size())), self._temp(".parquet") as tmp:
            df.write_parquet(tmp, compression=compression, statistics=statistics)  # type: ignore[arg-type]
            return self._adopt(tmp)

    def open(self, digest: str) -> IO[bytes]:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise self._missing(digest) from None

    @contextlib.contextmanager
    def verified_file(self, digest: str) -> Iterator[Path]:
        """The blob itself, once its bytes are hashed as a stream (never held whole) and match."""
        try:
            with open(self.path(digest), "rb") as handle:
                actual = hashlib.file_digest(handle, "sha256").hexdigest()
        except FileNotFoundError:
            raise self._missing(digest) from None
        if actual != digest:
            raise corrupted(digest, actual, str(self.path(digest)))
        yield self.path(digest)

    def local_path(self, digest: str) -> Path | None:
        return self.path(digest)

    def is_inside(self, path: str | Path) -> bool:
        return Path(path).expanduser().resolve().is_relative_to(self.root.expanduser().resolve())

    def entries(self) -> list[ArtifactEntry]:
        found: list[ArtifactEntry | None] = []
        for entry in _listdir(self.root):
            if entry.name.startswith(TEMP_PREFIX):
                found.append(_entry(entry, entry.name, None))
            elif SHARD.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
                for inner in _listdir(entry):
                    kind = classify(f"{entry.name}/{inner.name}")
                    if kind is not None:
                        found.append(_entry(inner, f"{entry.name}/{inner.name}", kind[1]))
        return sorted((e for e in found if e is not None), key=lambda e: e.name)

    def remove_stale(self, entry: ArtifactEntry, *, modified_before: float) -> bool:
        check_entry_name(entry)
        path = self.root / entry.name
        try:
            if path.lstat().st_mtime >= modified_before:
                return False
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    @contextlib.contextmanager
    def _temp(self, suffix: str) -> Iterator[Path]:
        """A temp file in the root, removed when the block ends (after a failure too: nothing partial stays)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=TEMP_PREFIX, suffix=suffix)
        os.close(fd)
        try:
            yield Path(tmp)
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

    def _missing(self, digest: str) -> NotFoundError:
        return NotFoundError(
            f"artifact {digest} does not exist under {self.root}",
            hint="Check LOOPLINE_HOME (or LOOPLINE_ARTIFACTS_URL) points at the right store, "
            "or re-run the step that produced it.",
        )

    def __repr__(self) -> str:
        return f"LocalArtifactStore(root={str(self.root)!r})"


def _listdir(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _entry(path: Path, name: str, digest: str | None) -> ArtifactEntry | None:
    """The file's entry; None for a symlink, a folder, or a file a writer renamed meanwhile."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    return ArtifactEntry(name, info.st_size, info.st_mtime, digest) if stat.S_ISREG(info.st_mode) else None


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
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX, suffix=".part")
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
