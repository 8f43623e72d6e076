"""Exporting a model version: its bundle file plus a JSON card next to it.

The bundle bytes are the stored ones, verified against the recorded digest; the card
(``<file>.card.json``) tells what the model is: metrics, params, input schema, lineage,
library and code versions, training info. Both files are written atomically (a temporary
file in the same folder, then a rename) and never replace existing files unless asked.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.core.errors import ConfigError
from loopline.run._evaluate import load_bundle

if TYPE_CHECKING:
    from loopline.bundle import ModelBundle
    from loopline.store import Store
    from loopline.store.models import ModelVersion

CARD_FORMAT = "loopline.model-card"


@dataclass(frozen=True)
class Export:
    """Where a model version was exported: the bundle file and its card."""

    name: str
    version: int
    bundle: Path
    card: Path
    digest: str


def card_path(bundle_path: Path) -> Path:
    """The card written next to a bundle file: ``model.zip`` -> ``model.zip.card.json``."""
    return bundle_path.with_name(bundle_path.name + ".card.json")


def export_model(
    store: Store, name: str, out: str | Path, *, version: int | None = None, force: bool = False
) -> Export:
    """Write version ``version`` of ``name`` (latest if None) to ``out`` and its card next to it.

    ``out`` is resolved first (symlinks and ``..`` followed), so the files land where the resolved path
    says; an existing directory, a missing parent folder, a path inside the artifact store or existing
    files (without ``force``) raise ConfigError and nothing is written.
    """
    found = store.models.get(name, version)
    target = Path(out).expanduser().resolve()
    card = card_path(target)
    _check_destination(target, card, force=force)
    if store.artifacts.is_inside(target):
        raise ConfigError(
            f"{target} is inside the artifact store ({store.artifacts.location}).", hint="Export to a path outside it."
        )
    data = store.artifacts.get_bytes(found.bundle_digest)  # verified against the digest
    bundle = load_bundle(store, found)
    payload = json.dumps(model_card(found, bundle, target.name), indent=2, default=str).encode()
    _write_atomic(target, data)
    _write_atomic(card, payload + b"\n")
    return Export(found.name, found.version, target, card, found.bundle_digest)


def model_card(found: ModelVersion, bundle: ModelBundle, file_name: str) -> dict[str, Any]:
    """The JSON card of a model version: what it is, what it was trained on, and with what."""
    metadata = bundle.metadata
    return {
        "format": CARD_FORMAT,
        "name": found.name,
        "version": found.version,
        "stage": found.stage,
        "algorithm": found.algorithm,
        "task": bundle.task,
        "target": bundle.target,
        "classes": bundle.classes,
        "bundle": {"file": file_name, "sha256": found.bundle_digest},
        "metrics": found.metrics,
        "params": found.params,
        "input_schema": found.input_schema,
        "lineage": {
            "data_fingerprint": found.data_fingerprint,
            "run_id": found.run_id,
            "columns": found.typed_config.lineage,
        },
        "library_versions": metadata.get("versions", {}),
        "code_version": metadata.get("code_version"),
        "training": {
            "trained_at": metadata.get("trained_at"),
            "rows": {"train": metadata.get("n_train"), "valid": metadata.get("n_valid")},
            "seed": metadata.get("seed"),
            "fit_options": metadata.get("fit_options"),
            "timings": found.timings,
        },
        "created_at": found.created_at,
    }


def _check_destination(target: Path, card: Path, *, force: bool) -> None:
    if target.is_dir():
        raise ConfigError(f"{target} is a directory.", hint="Give a file path, e.g. --out model.zip.")
    if not target.parent.is_dir():
        raise ConfigError(f"folder {target.parent} does not exist.", hint="Create it first, or pick another --out.")
    existing = [str(p) for p in (target, card) if p.exists() or p.is_symlink()]
    if existing and not force:
        raise ConfigError(f"{', '.join(existing)} already exists.", hint="Pass --force to overwrite.")


def _write_atomic(target: Path, data: bytes) -> None:
    handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
