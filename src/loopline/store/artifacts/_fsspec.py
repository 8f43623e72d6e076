"""The artifact store at any fsspec URL (``s3://bucket/prefix``, ``gs://…``, ``az://…``, ``memory://…``).

Same layout and guarantees as the local folder (see :class:`ArtifactStore`). Publication is atomic on
every backend: object stores (S3, GCS, Azure, memory) publish a whole object in one PUT (a multipart
upload appears only when it completes), and other filesystems get a temp name in the shard folder,
then a move. Credentials come from the environment or the backend's own configuration
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_ENDPOINT_URL``, ``~/.aws``, fsspec's
``FSSPEC_S3_*`` variables); a URL that carries any is refused, so none ever reaches a repr, an error or
a worker's task.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import polars as pl

from loopline.core.diskspace import disk_full_as_error, disk_full_error, is_disk_full
from loopline.core.errors import ConfigError, LooplineError, MissingExtraError, NotFoundError, StoreError
from loopline.core.hashing import sha256_bytes
from loopline.core.remote import FSSPEC_EXTRAS
from loopline.store.artifacts._contract import (
    TEMP_PREFIX,
    ArtifactEntry,
    ArtifactStore,
    blob_name,
    check_entry_name,
    classify,
    corrupted,
    iter_chunks,
)

# Backends whose single-object write is atomic: no temp name needed
_ATOMIC_PUT = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"})
_MTIME_KEYS = ("LastModified", "mtime", "last_modified", "updated")
_HINT = (
    "Check the URL in LOOPLINE_ARTIFACTS_URL, that the bucket exists, and the credentials and endpoint in the "
    "environment (e.g. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL)."
)


class FsspecArtifactStore(ArtifactStore):
    """Blobs under an fsspec URL, e.g. ``FsspecArtifactStore("s3://bucket/prefix")``.

    The filesystem is created on first use, with fsspec's instance cache and without its listing cache
    (other processes write the same store). A blob already stored with the same size is kept; its
    modification time is refreshed (a server-side copy on S3, a rewrite where nothing cheaper exists).
    """

    def __init__(self, url: str) -> None:
        refuse_credentials(url)
        self.url = url.rstrip("/")

    @property
    def location(self) -> str:
        return self.url

    @cached_property
    def _fs(self) -> Any:
        return _filesystem(self.url)[0]

    @cached_property
    def _root(self) -> str:
        return str(_filesystem(self.url)[1]).rstrip("/")

    @cached_property
    def _atomic(self) -> bool:
        return bool(_ATOMIC_PUT.intersection(_protocols(self._fs)))

    def exists(self, digest: str) -> bool:
        path = self._path(digest)
        with self._io("look up an artifact"):
            return bool(self._fs.isfile(path))

    def put_bytes(self, data: bytes) -> str:
        digest = sha256_bytes(data)
        path = self._path(digest)
        with self._io(f"store artifact {digest}"):
            self._publish(path, len(data), lambda target: self._fs.pipe_file(target, data))
        return digest

    def put_file(self, path: str | Path) -> str:
        """Store a copy of a local file: copied first (so the bytes hashed are the bytes sent), then uploaded."""
        with _local_temp(".part") as tmp:
            with disk_full_as_error(tmp.parent, Path(path).stat().st_size):
                shutil.copyfile(path, tmp)
            return self._upload(tmp)

    def put_table(self, df: pl.DataFrame, *, compression: str = "zstd", statistics: bool = True) -> str:
        """Store a table as Parquet (written to a local temp file, hashed, uploaded) and return its digest."""
        with _local_temp(".parquet") as tmp:
            with disk_full_as_error(tmp.parent, int(df.estimated_size())):
                df.write_parquet(tmp, compression=compression, statistics=statistics)  # type: ignore[arg-type]
            return self._upload(tmp)

    def get_bytes(self, digest: str) -> bytes:
        path = self._path(digest)
        with self._io(f"read artifact {digest}"):
            try:
                data = bytes(self._fs.cat_file(path))
            except FileNotFoundError:
                raise self._missing(digest) from None
        actual = sha256_bytes(data)
        if actual != digest:
            raise corrupted(digest, actual, self._url_of(path))
        return data

    def open(self, digest: str) -> IO[bytes]:
        path = self._path(digest)
        with self._io(f"read artifact {digest}"):
            try:
                return self._fs.open(path, "rb")  # type: ignore[no-any-return]
            except FileNotFoundError:
                raise self._missing(digest) from None

    @contextlib.contextmanager
    def verified_file(self, digest: str) -> Iterator[Path]:
        """The blob downloaded to a local temp file, hashed on the way; removed when the context exits."""
        with _local_temp(".blob") as tmp:
            hasher = hashlib.sha256()
            with self.open(digest) as source, open(tmp, "wb") as sink, self._io(f"read artifact {digest}"):
                for chunk in iter_chunks(source):
                    hasher.update(chunk)
                    sink.write(chunk)
            if hasher.hexdigest() != digest:
                raise corrupted(digest, hasher.hexdigest(), self._url_of(self._path(digest)))
            yield tmp

    def local_path(self, digest: str) -> Path | None:
        name, local = blob_name(digest), self._local_root()
        return None if local is None else local / name

    def is_inside(self, path: str | Path) -> bool:
        local = self._local_root()
        return local is not None and Path(path).expanduser().resolve().is_relative_to(local.resolve())

    def entries(self) -> list[ArtifactEntry]:
        with self._io("list the artifacts"):
            try:
                found: dict[str, dict[str, Any]] = self._fs.find(self._root, withdirs=False, detail=True)
            except FileNotFoundError:
                return []
            prefix = self._root + "/"
            result = []
            for full, info in sorted(found.items()):
                name = full.removeprefix(prefix) if full.startswith(prefix) else ""
                kind = classify(name)
                if kind is not None and info.get("type", "file") == "file":
                    result.append(ArtifactEntry(name, int(info["size"]), self._mtime(full, info), kind[1]))
            return result

    def remove_stale(self, entry: ArtifactEntry, *, modified_before: float) -> bool:
        check_entry_name(entry)
        path = f"{self._root}/{entry.name}"
        with self._io(f"remove {entry.name}"):
            try:
                if self._mtime(path, self._fs.info(path)) >= modified_before:
                    return False
                self._fs.rm_file(path)
            except FileNotFoundError:
                return False
        return True

    def _path(self, digest: str) -> str:
        return f"{self._root}/{blob_name(digest)}"

    def _upload(self, local: Path) -> str:
        with open(local, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        with self._io(f"store artifact {digest}"):
            self._publish(self._path(digest), local.stat().st_size, lambda target: self._fs.put_file(local, target))
        return digest

    def _publish(self, path: str, size: int, write: Callable[[str], object]) -> None:
        """Write the blob at ``path`` atomically, unless a blob of ``size`` bytes is there (then refresh it)."""
        if self._size(path) == size:
            self._refresh(path, write)
        else:
            self._write(path, write)

    def _write(self, path: str, write: Callable[[str], object]) -> None:
        if self._atomic:
            write(path)  # one PUT: the object appears whole or not at all
            return
        folder = path.rsplit("/", 1)[0]
        self._fs.makedirs(folder, exist_ok=True)
        tmp = f"{folder}/{TEMP_PREFIX}{uuid.uuid4().hex}.part"
        try:
            write(tmp)
            self._fs.mv(tmp, path)
        except BaseException:
            with contextlib.suppress(Exception):
                self._fs.rm_file(tmp)
            raise

    def _size(self, path: str) -> int | None:
        try:
            return int(self._fs.size(path))
        except FileNotFoundError:
            return None

    def _refresh(self, path: str, write: Callable[[str], object]) -> None:
        """Bring the blob's modification time to now: S3 copies it onto itself on the server, a local
        filesystem touches it; elsewhere it is written again (same bytes, atomically)."""
        try:
            if "s3" in _protocols(self._fs):
                self._fs.setxattr(path, loopline_stored=str(time.time()))
            else:
                self._fs.touch(path, truncate=False)
        except (OSError, ValueError, NotImplementedError):
            self._write(path, write)

    def _mtime(self, path: str, info: dict[str, Any]) -> float:
        for key in _MTIME_KEYS:
            value = info.get(key)
            if isinstance(value, datetime):
                return value.timestamp()
            if isinstance(value, int | float):
                return float(value)
        return float(self._fs.modified(path).timestamp())

    def _local_root(self) -> Path | None:
        return Path(self._root) if {"file", "local"} & set(_protocols(self._fs)) else None

    def _url_of(self, path: str) -> str:
        return f"{self.url}/{path.removeprefix(self._root + '/')}"

    def _missing(self, digest: str) -> NotFoundError:
        return NotFoundError(
            f"artifact {digest} does not exist under {self.url}",
            hint="Check LOOPLINE_ARTIFACTS_URL points at the right store, or re-run the step that produced it.",
        )

    @contextlib.contextmanager
    def _io(self, action: str) -> Iterator[None]:
        """A backend's own error (a refused connection, a missing bucket, access denied) as a StoreError."""
        try:
            yield
        except (LooplineError, TypeError, AttributeError, NameError):
            raise
        except Exception as exc:
            if is_disk_full(exc):
                raise disk_full_error(self.url) from exc
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise StoreError(f"cannot {action} in the artifact store at {self.url}: {reason}", hint=_HINT) from exc

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url}  # pickled as its URL: the filesystem is made again where it is unpickled

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.url = state["url"]

    def __repr__(self) -> str:
        return f"FsspecArtifactStore(url={self.url!r})"


def refuse_credentials(url: str) -> None:
    """Raise ConfigError when ``url`` carries a user name or password (they belong in the environment)."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        host = parts.netloc.rsplit("@", 1)[1]
        shown = f"{parts.scheme}://***@{host}{parts.path}"
        raise ConfigError(
            f"the artifact store URL {shown} carries credentials; loopline refuses to keep them in a URL.",
            key="LOOPLINE_ARTIFACTS_URL",
            hint="Remove them from the URL and set them in the environment (AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY for S3) or the backend's own configuration file.",
        )


def check_scheme(url: str) -> None:
    """Raise unless fsspec knows the URL's scheme and its package is installed (imports it; no I/O)."""
    import fsspec

    with _scheme_errors(url):
        fsspec.get_filesystem_class(urlsplit(url).scheme)


def _filesystem(url: str) -> tuple[Any, str]:
    import fsspec

    with _scheme_errors(url):
        return fsspec.core.url_to_fs(url, use_listings_cache=False)  # type: ignore[no-any-return]


@contextlib.contextmanager
def _scheme_errors(url: str) -> Iterator[None]:
    scheme = urlsplit(url).scheme
    try:
        yield
    except ImportError as exc:
        if scheme in FSSPEC_EXTRAS:
            raise MissingExtraError(*FSSPEC_EXTRAS[scheme]) from None
        raise ConfigError(
            f"the artifact store URL {url} needs a package that is not installed: {exc}",
            key="LOOPLINE_ARTIFACTS_URL",
            hint="Install the fsspec implementation for its scheme.",
        ) from None
    except ValueError as exc:
        raise ConfigError(
            f"the artifact store URL {url} cannot be opened: {exc}",
            key="LOOPLINE_ARTIFACTS_URL",
            hint="Set LOOPLINE_ARTIFACTS_URL to a folder path or an fsspec URL such as s3://bucket/prefix.",
        ) from None


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


@contextlib.contextmanager
def _local_temp(suffix: str) -> Iterator[Path]:
    fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=suffix)
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)
