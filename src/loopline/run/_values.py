"""How step output values become artifacts and come back.

A reference is ``{"digest", "kind"}``; the digest is what consumers' cache keys see. A :class:`DatasetRef`
is stored as its own small JSON form (kind ``dataset``), never as a copy of the rows: its digest changes
exactly when the version's checksum does, and loading it reads the version's rows from the dataset.
"""

from __future__ import annotations

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


def load_value(store: Store, ref: dict[str, str]) -> Any:
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
