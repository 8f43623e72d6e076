"""How step output values become artifacts and come back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from loopline.store import ArtifactStore


def kind_of(value: Any) -> str:
    """``table`` for polars frames, ``bytes`` for raw bytes, ``json`` for everything else."""
    if isinstance(value, pl.DataFrame):
        return "table"
    if isinstance(value, bytes | bytearray):
        return "bytes"
    return "json"


def save_value(artifacts: ArtifactStore, value: Any) -> dict[str, str]:
    """Store a value; returns its reference ``{"digest", "kind"}``."""
    kind = kind_of(value)
    if kind == "table":
        digest = artifacts.put_table(value)
    elif kind == "bytes":
        digest = artifacts.put_bytes(bytes(value))
    else:
        digest = artifacts.put_json(value)
    return {"digest": digest, "kind": kind}


def load_value(artifacts: ArtifactStore, ref: dict[str, str]) -> Any:
    """Read a value back from its reference."""
    kind, digest = ref["kind"], ref["digest"]
    if kind == "table":
        return artifacts.get_table(digest)
    if kind == "bytes":
        return artifacts.get_bytes(digest)
    return artifacts.get_json(digest)
