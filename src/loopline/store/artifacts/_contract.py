"""The artifact-store contract: what every backend (a local folder, any fsspec URL) guarantees."""

from __future__ import annotations

import abc
import contextlib
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import polars as pl

from loopline.core.errors import IntegrityError
from loopline.core.hashing import canonical_json

TEMP_PREFIX = ".tmp-"
DIGEST = re.compile(r"[0-9a-f]{64}")
SHARD = re.compile(r"[0-9a-f]{2}")


@dataclass(frozen=True)
class ArtifactEntry:
    """An object under the store's root, as :meth:`ArtifactStore.entries` lists it.

    ``name`` is relative to the root (``ab/ab12…`` for a blob, ``.tmp-…`` or ``ab/.tmp-…`` for a temp
    object); ``digest`` is None for a temp object; ``mtime`` is the last modification in POSIX seconds.
    """

    name: str
    size: int
    mtime: float
    digest: str | None


class ArtifactStore(abc.ABC):
    """Blobs addressed by the SHA-256 of their bytes, at ``<root>/<2 hex>/<64 hex>``.

    Every backend guarantees:

    - **content addressing**: a blob's name is the SHA-256 of its bytes; writing the same bytes twice
      is a no-op, except that the blob's modification time is refreshed (so ``loopline store check``
      sees a blob about to be referenced again as young);
    - **atomic publication**: a blob is visible under its digest whole or not at all — a killed or
      failed writer leaves at most a temp object (``.tmp-*``) or nothing;
    - **verified reads**: ``get_*`` and :meth:`verified_file` check the bytes against the digest and
      raise IntegrityError naming it (and the fix) when they differ; NotFoundError when it is missing;
    - **strict names**: only ``^[0-9a-f]{64}$`` digests are accepted (IntegrityError otherwise, before
      any I/O), so no digest can name anything outside the root;
    - **tables as Parquet**, JSON as canonical JSON (sorted keys, no spaces);
    - **no secrets**: credentials come from the environment or the backend's usual configuration,
      never from the location, so ``location`` and ``repr`` are safe to print and to send to workers.

    Safe to share between threads and processes; a store pickles as its location, so it can travel to a
    worker process. Build one with :func:`open_artifacts`.
    """

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the blobs live: a folder path or a URL; ``open_artifacts(location)`` opens it again."""

    @abc.abstractmethod
    def exists(self, digest: str) -> bool:
        """Whether a blob is stored under ``digest`` (its bytes are not verified)."""

    @abc.abstractmethod
    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` and return its digest."""

    @abc.abstractmethod
    def put_file(self, path: str | Path) -> str:
        """Store a copy of the local file ``path`` and return its digest."""

    @abc.abstractmethod
    def put_table(self, df: pl.DataFrame, *, compression: str = "zstd", statistics: bool = True) -> str:
        """Store a table as Parquet and return its digest (``lz4``/no statistics: faster, larger)."""

    @abc.abstractmethod
    def get_bytes(self, digest: str) -> bytes:
        """The blob stored under ``digest``, verified against it."""

    @abc.abstractmethod
    def open(self, digest: str) -> IO[bytes]:
        """The blob as a binary stream, NOT verified (hash it, or use ``get_bytes``/``verified_file``)."""

    @abc.abstractmethod
    def verified_file(self, digest: str) -> contextlib.AbstractContextManager[Path]:
        """A local file holding the verified blob, for readers that need a path (a Parquet scan).

        The local folder yields the blob itself; a remote store downloads it to a temp file (hashed on the
        way) that is removed when the context exits.
        """

    @abc.abstractmethod
    def local_path(self, digest: str) -> Path | None:
        """The blob's path on this machine, or None when the store is not a local folder."""

    @abc.abstractmethod
    def is_inside(self, path: str | Path) -> bool:
        """Whether the local ``path`` (resolved) lies inside the store's folder; False for a remote store."""

    @abc.abstractmethod
    def entries(self) -> list[ArtifactEntry]:
        """Every blob and temp object under the root, sorted by name (other objects are not the store's)."""

    @abc.abstractmethod
    def remove_stale(self, entry: ArtifactEntry, *, modified_before: float) -> bool:
        """Remove ``entry`` unless it is gone or was modified at or after ``modified_before`` (a writer
        refreshed it since it was listed); True when it was removed."""

    def get_table(self, digest: str) -> pl.DataFrame:
        """The table stored under ``digest``."""
        return pl.read_parquet(io.BytesIO(self.get_bytes(digest)))

    def put_json(self, value: Any) -> str:
        """Store ``value`` as canonical JSON (sorted keys, no spaces) and return its digest."""
        return self.put_bytes(canonical_json(value))

    def get_json(self, digest: str) -> Any:
        """The JSON value stored under ``digest``."""
        return json.loads(self.get_bytes(digest))


def check_digest(digest: str) -> None:
    """Raise IntegrityError unless ``digest`` is 64 lowercase hex characters."""
    if not isinstance(digest, str) or DIGEST.fullmatch(digest) is None:
        raise IntegrityError(
            f"{digest!r} is not an artifact digest",
            hint="Pass the 64-character lowercase hex SHA-256 returned by put_bytes/put_table/put_json.",
        )


def blob_name(digest: str) -> str:
    """``<2 hex>/<digest>``, the blob's name relative to the root (the digest is checked first)."""
    check_digest(digest)
    return f"{digest[:2]}/{digest}"


def classify(name: str) -> tuple[bool, str | None] | None:
    """For a name relative to the root: ``(True, None)`` for a temp object, ``(False, digest)`` for a blob,
    None for anything that is not the store's (a README, a blob in the wrong shard, a deeper path)."""
    parts = name.split("/")
    if len(parts) == 1:
        return (True, None) if parts[0].startswith(TEMP_PREFIX) else None
    if len(parts) != 2 or SHARD.fullmatch(parts[0]) is None:
        return None
    if parts[1].startswith(TEMP_PREFIX):
        return True, None
    if DIGEST.fullmatch(parts[1]) and parts[1].startswith(parts[0]):
        return False, parts[1]
    return None


def check_entry_name(entry: ArtifactEntry) -> None:
    """Refuse to act on a name that :func:`classify` would not have listed (no path escapes the root)."""
    if classify(entry.name) is None or "\x00" in entry.name:
        raise IntegrityError(
            f"{entry.name!r} is not a blob or temp object of the artifact store",
            hint="Pass an entry returned by entries().",
        )


def corrupted(digest: str, actual: str, where: str) -> IntegrityError:
    """The error for a blob whose bytes hash to ``actual`` instead of ``digest``."""
    return IntegrityError(
        f"artifact {digest} is corrupted: its bytes hash to {actual}",
        hint=f"Delete {where} and re-run the step that produced it (`loopline store check` lists what uses it).",
    )


def sha256_stream(handle: IO[bytes]) -> str:
    """Hex SHA-256 of what is left in the stream, read in 1 MiB chunks."""
    hasher = hashlib.sha256()
    for chunk in iter_chunks(handle):
        hasher.update(chunk)
    return hasher.hexdigest()


def iter_chunks(handle: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    """The stream's bytes in chunks of ``size``."""
    while chunk := handle.read(size):
        yield chunk
