"""How step output values become artifacts and come back.

A reference is ``{"digest", "kind"}``; the digest is what consumers' cache keys see. A :class:`DatasetRef`
is stored as its own small JSON form (kind ``dataset``), never as a copy of the rows: its digest changes
exactly when the version's checksum does, and loading it reads the version's rows from the dataset.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import polars as pl

from loopline.core.errors import IntegrityError
from loopline.core.step import DatasetRef

if TYPE_CHECKING:
    from loopline.store import Store


def kind_of(value: Any) -> str:
    """``table`` for polars frames, ``bytes`` for raw bytes, ``dataset`` for a
    :class:`DatasetRef`, ``json`` for everything else."""
    if isinstance(value, pl.DataFrame):
        return "table"
    if isinstance(value, bytes | bytearray):
        return "bytes"
    if isinstance(value, DatasetRef):
        return "dataset"
    return "json"


def save_value(store: Store, value: Any) -> dict[str, str]:
    """Store a value; returns its reference ``{"digest", "kind"}``."""
    kind = kind_of(value)
    if kind == "table":
        digest = store.artifacts.put_table(value)
    elif kind == "bytes":
        digest = store.artifacts.put_bytes(bytes(value))
    elif kind == "dataset":
        digest = store.artifacts.put_json(asdict(value))
    else:
        digest = store.artifacts.put_json(value)
    return {"digest": digest, "kind": kind}


def load_value(store: Store, ref: Mapping[str, str]) -> Any:
    """Read a value back from its reference (a ``dataset`` reference comes back as the version's rows)."""
    kind, digest = ref["kind"], ref["digest"]
    if kind == "table":
        return store.artifacts.get_table(digest)
    if kind == "bytes":
        return store.artifacts.get_bytes(digest)
    if kind == "dataset":
        return _read_dataset(store, DatasetRef(**store.artifacts.get_json(digest)))
    return store.artifacts.get_json(digest)


def _read_dataset(store: Store, ref: DatasetRef) -> pl.DataFrame:
    found = store.datasets.version(ref.dataset, ref.version)
    if found.checksum != ref.checksum:
        raise IntegrityError(
            f"dataset {ref.dataset!r} version {ref.version} has checksum {found.checksum[:12]}, "
            f"but the step output refers to {ref.checksum[:12]}: the store's datasets changed under the run.",
            hint="Start a new run of the pipeline (not `--resume`): its steps then refer to the current version.",
        )
    return store.datasets.read(ref.dataset, ref.version)


def is_ref(value: Any) -> bool:
    """Whether ``value`` is one reference ``{"digest", "kind"}`` (not a mapping of output names to references)."""
    if not (type(value) is dict or isinstance(value, Mapping)):  # a plain dict skips the ABC check
        return False
    return isinstance(value.get("digest"), str) and isinstance(value.get("kind"), str)


class ValueCache:
    """Loaded values of one run by reference: each loads once however many consumers start together.

    Safe to share between threads. A ``dataset`` reference and a ``json`` one may share a digest (the same
    JSON bytes), so the key is ``(kind, digest)``.
    """

    def __init__(self) -> None:
        self._values: dict[tuple[str, str], Any] = {}
        self._loading: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()

    def load(self, store: Store, ref: Mapping[str, str]) -> Any:
        """The value ``ref`` names, read from ``store`` on first use."""
        key = (ref["kind"], ref["digest"])
        if key in self._values:  # loaded already: no lock needed to read a finished value
            return self._values[key]
        with self._lock:
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            if key not in self._values:
                self._values[key] = load_value(store, ref)
        return self._values[key]

    def put(self, ref: Mapping[str, str], value: Any) -> None:
        """Remember a value just saved as ``ref`` (not a dataset: its reference loads as rows, not as itself)."""
        if ref["kind"] != "dataset":
            self._values[(ref["kind"], ref["digest"])] = value
