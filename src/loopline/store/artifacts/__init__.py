"""The content-addressed artifact store: one contract, a local folder and any fsspec URL behind it.

``open_artifacts(location)`` picks the backend: a path (or a ``file://`` URL) gives the local folder,
any other URL (``s3://bucket/prefix``, ``gs://…``, ``az://…``, ``memory://…``) the fsspec store.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from loopline.store.artifacts._contract import TEMP_PREFIX, ArtifactEntry, ArtifactStore
from loopline.store.artifacts._fsspec import FsspecArtifactStore, check_scheme, refuse_credentials
from loopline.store.artifacts._local import LocalArtifactStore

__all__ = [
    "TEMP_PREFIX",
    "ArtifactEntry",
    "ArtifactStore",
    "FsspecArtifactStore",
    "LocalArtifactStore",
    "open_artifacts",
]


def open_artifacts(location: str | Path | ArtifactStore) -> ArtifactStore:
    """The artifact store at ``location``: a folder path, a ``file://`` URL, or any fsspec URL.

    A URL that carries credentials (``s3://key:secret@bucket``) is refused with ConfigError: they belong in
    the environment. An unknown scheme is a ConfigError, a scheme whose package is missing a
    MissingExtraError naming the extra (``loopline[s3]``). Nothing is read, written or connected to until
    the store is used.
    """
    if isinstance(location, ArtifactStore):
        return location
    if isinstance(location, Path):
        return LocalArtifactStore(location)
    parts = urlsplit(location)
    if len(parts.scheme) <= 1:  # a plain path (one letter: a Windows drive)
        return LocalArtifactStore(Path(location))
    refuse_credentials(location)
    if parts.scheme == "file":
        return LocalArtifactStore(Path(parts.path))
    check_scheme(location)
    return FsspecArtifactStore(location)
