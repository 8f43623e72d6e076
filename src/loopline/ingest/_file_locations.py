"""Where a file source's files are: a local path, glob or folder, or any fsspec URL (s3://, gs://, memory://...).

Both kinds answer the same four questions — which files are there (:meth:`files`, sorted keys), what a
file's signature is (size, modification time, a hash of its first and last MiB), how to open it (raw
bytes) and whether it is a local file (so it can be handed over whole). Keys are what the manifest
stores: local paths as the user's pattern names them (relative stays relative, so a project folder can
move), and full URLs for remote files. Object stores need their fsspec package (``s3fs``, ``gcsfs``,
``adlfs``); credentials come from the environment or the store's own configuration files, as those
packages read them — never from the pipeline file.
"""

from __future__ import annotations

import glob as globlib
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from loopline.core.errors import DataError, MissingExtraError
from loopline.core.remote import FSSPEC_EXTRAS

_EDGE = 1 << 20
_MAGIC = "*?["


def file_location(path: str) -> LocalFiles | RemoteFiles:
    """The location a source's ``path`` names: a URL with a protocol other than ``file://`` is remote."""
    protocol, sep, rest = path.partition("://")
    if not sep or protocol == "file":
        return LocalFiles(rest if sep else path)
    return RemoteFiles(path)


class LocalFiles:
    """Files on this machine: one file, a glob (``**`` recurses) or a folder (every file below it)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def files(self, keep: Callable[[str], bool] | None = None) -> list[str]:
        """Every file named, sorted (in a folder or glob, those ``keep`` accepts); DataError when none exists."""
        target = Path(self.path)
        if target.is_dir():
            return sorted(str(p) for p in target.rglob("*") if p.is_file() and (keep is None or keep(str(p))))
        if any(c in self.path for c in _MAGIC):
            found = (p for p in globlib.glob(self.path, recursive=True) if Path(p).is_file())
            return sorted(p for p in found if keep is None or keep(p))
        if target.is_file():
            return [self.path]
        raise DataError(f"input {self.path!r} does not exist.", file=self.path, hint="Check the path of the source.")

    def signature(self, key: str) -> list[Any]:
        """``[size, mtime_ns, edge hash]``: changes when the file does."""
        stat = os.stat(key)
        with open(key, "rb") as handle:
            return [stat.st_size, stat.st_mtime_ns, _edge_hash(handle, stat.st_size)]

    def open(self, key: str) -> BinaryIO:
        """The file's raw bytes."""
        return open(key, "rb")

    def local_path(self, key: str) -> Path | None:
        """The file on disk."""
        return Path(key)


class RemoteFiles:
    """Files behind an fsspec URL: one object, a glob, or a prefix (every object below it)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._fs: Any = None
        self._root = ""

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (built on first use: no I/O before a read)."""
        if self._fs is None:
            self._fs, self._root = _filesystem(self.url)
        return self._fs

    def files(self, keep: Callable[[str], bool] | None = None) -> list[str]:
        """Every object named, as full URLs, sorted (in a prefix or glob, those ``keep`` accepts)."""
        fs = self.fs
        if any(c in self._root for c in _MAGIC):
            listed = fs.glob(self._root, detail=True)
        elif fs.isdir(self._root):
            listed = fs.find(self._root, detail=True)
        elif fs.isfile(self._root):
            return [fs.unstrip_protocol(self._root)]
        else:
            raise DataError(
                f"input {self.url!r} does not exist.",
                file=self.url,
                hint="Check the URL and that the credentials in the environment can list it.",
            )
        found = (fs.unstrip_protocol(p) for p, info in listed.items() if info.get("type") == "file")
        return sorted(p for p in found if keep is None or keep(p))

    def signature(self, key: str) -> list[Any]:
        """``[size, modification stamp or ETag, edge hash]``: changes when the object does."""
        info = self.fs.info(key)
        size = int(info.get("size") or 0)
        stamp = next(
            (str(info[k]) for k in ("ETag", "etag", "md5Hash", "mtime", "LastModified", "created") if info.get(k)), ""
        )
        with self.fs.open(key, "rb") as handle:
            return [size, stamp, _edge_hash(handle, size)]

    def open(self, key: str) -> BinaryIO:
        """The object's raw bytes (read in blocks by fsspec)."""
        handle: BinaryIO = self.fs.open(key, "rb", block_size=8 << 20)
        return handle

    def local_path(self, key: str) -> Path | None:
        """Remote objects are never local."""
        return None


def _filesystem(url: str) -> tuple[Any, str]:
    import fsspec

    protocol = url.partition("://")[0]
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except ImportError as exc:
        if protocol in FSSPEC_EXTRAS:
            raise MissingExtraError(*FSSPEC_EXTRAS[protocol]) from exc
        raise DataError(
            f"reading {protocol}:// URLs needs a package that is not installed: {exc}",
            file=url,
            hint="Install the fsspec implementation for that protocol (see fsspec's list of known implementations).",
        ) from exc
    except ValueError as exc:
        raise DataError(f"{url!r} is not a URL fsspec knows: {exc}", file=url, hint="Check the protocol.") from exc
    return fs, root


def _edge_hash(handle: Any, size: int) -> str:
    """A BLAKE2 hash of the size and the first and last MiB: cheap on any file size."""
    digest = hashlib.blake2b(str(size).encode(), digest_size=16)
    digest.update(handle.read(_EDGE))
    if size > 2 * _EDGE:
        handle.seek(size - _EDGE)
        digest.update(handle.read(_EDGE))
    return digest.hexdigest()
