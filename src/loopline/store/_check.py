"""The consistency check of a store: the artifact folder against the metadata rows that reference it.

It finds (a) temp files left by killed writers (``.tmp-*`` in the root or a ``<2 hex>`` folder), (b) orphans:
blobs that no row references, and (c) rows that reference a missing or corrupted blob. ``fix`` removes (a)
and (b) only; a referenced blob is never removed, whatever its state.

Every place that references an artifact digest (``test_check`` fails when a table gains a ``*digest``
column that is not listed here):

- ``models.bundle_digest`` and ``models.reference_digest``;
- ``dataset_parts.digest`` (the Parquet parts of datasets; dataset versions name parts by sequence number);
- ``dataset_versions.profile_digest`` (the JSON profile of a version);
- ``steps.outputs``: ``{output: {"digest", "kind"}}``; every 64-hex string anywhere in it counts, so a
  cached step output stays. Runs, predictions, checkpoints, dead letters and schemas reference none.

Safe while other processes write. A writer puts its blobs first and commits the row that references
them last, so between the two a blob is briefly unreferenced; and a temp file is a write in progress until
it is renamed. Files younger than ``grace`` (one hour by default) are therefore reported but left alone;
a writer that finds its blob already stored refreshes its mtime, so an old orphan that is about to be
referenced again counts as young too. Files are listed before the references are read, and each one's
age is checked again just before it is removed.
"""

from __future__ import annotations

import hashlib
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from loopline.store._db import reading
from loopline.store._tables import dataset_parts, dataset_versions, models, steps
from loopline.store.artifacts import ArtifactStore

DEFAULT_GRACE = timedelta(hours=1)
TEMP_PREFIX = ".tmp-"
_DIGEST = re.compile(r"[0-9a-f]{64}")
_SHARD = re.compile(r"[0-9a-f]{2}")


@dataclass(frozen=True)
class Reference:
    """A row's reference to an artifact: ``where`` names the row and column (``models churn v3 bundle``)."""

    digest: str
    where: str


@dataclass(frozen=True)
class StrayFile:
    """A temp file or an orphan blob. ``kept``: younger than the grace period, so never removed."""

    path: str
    bytes: int
    age_s: float
    kept: bool
    removed: bool = False


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check_store` found (and, with ``fix``, removed)."""

    artifacts: int
    referenced: int
    temp_files: list[StrayFile] = field(default_factory=list)
    orphans: list[StrayFile] = field(default_factory=list)
    missing: list[Reference] = field(default_factory=list)
    corrupted: list[Reference] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """No broken reference and no stray file left, except young ones (maybe a write in progress)."""
        stray = [f for f in self.temp_files + self.orphans if not (f.kept or f.removed)]
        return not (self.missing or self.corrupted or stray)


@dataclass(frozen=True)
class _File:
    path: Path
    size: int
    mtime: float


def check_store(
    engine: Engine, artifacts: ArtifactStore, *, fix: bool = False, grace: timedelta = DEFAULT_GRACE
) -> CheckReport:
    """Check every blob and every reference; with ``fix``, remove old temp files and old orphans."""
    temps, blobs = _scan(artifacts.root)  # listed BEFORE the references are read (see the module doc)
    references = _references(engine)
    referenced = {ref.digest for ref in references}
    state = {digest: _state(artifacts, digest) for digest in sorted(referenced)}
    cutoff = grace.total_seconds()
    orphans = [f for digest, f in sorted(blobs.items()) if digest not in referenced]
    return CheckReport(
        artifacts=len(blobs),
        referenced=len(referenced),
        temp_files=[_stray(artifacts.root, f, cutoff, fix) for f in temps],
        orphans=[_stray(artifacts.root, f, cutoff, fix) for f in orphans],
        missing=[ref for ref in references if state[ref.digest] == "missing"],
        corrupted=[ref for ref in references if state[ref.digest] == "corrupted"],
    )


def _scan(root: Path) -> tuple[list[_File], dict[str, _File]]:
    """Temp files, and blobs by digest, under ``root`` (other files are none of the store's business)."""
    temps: list[_File | None] = []
    blobs: dict[str, _File | None] = {}
    for entry in _listdir(root):
        if entry.name.startswith(TEMP_PREFIX):
            temps.append(_stat(entry))
        elif _SHARD.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
            for inner in _listdir(entry):
                if inner.name.startswith(TEMP_PREFIX):
                    temps.append(_stat(inner))
                elif _DIGEST.fullmatch(inner.name) and inner.name.startswith(entry.name):
                    blobs[inner.name] = _stat(inner)
    found = sorted((f for f in temps if f is not None), key=lambda f: f.path)
    return found, {digest: f for digest, f in blobs.items() if f is not None}


def _listdir(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except FileNotFoundError:
        return []


def _stat(path: Path) -> _File | None:
    """The file's size and mtime; None for a symlink, a folder, or a file a writer renamed meanwhile."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    return _File(path, info.st_size, info.st_mtime) if stat.S_ISREG(info.st_mode) else None


def _references(engine: Engine) -> list[Reference]:
    with reading(engine) as conn:
        return [*_model_refs(conn), *_dataset_refs(conn), *_step_refs(conn)]


def _model_refs(conn: Connection) -> Iterator[Reference]:
    columns = (models.c.name, models.c.version, models.c.bundle_digest, models.c.reference_digest)
    for name, version, bundle, reference in conn.execute(select(*columns)):
        yield Reference(bundle, f"models {name} v{version} bundle")
        if reference is not None:
            yield Reference(reference, f"models {name} v{version} reference")


def _dataset_refs(conn: Connection) -> Iterator[Reference]:
    for dataset, seq, digest in conn.execute(
        select(dataset_parts.c.dataset, dataset_parts.c.seq, dataset_parts.c.digest)
    ):
        yield Reference(digest, f"dataset_parts {dataset} part {seq}")
    columns = (dataset_versions.c.dataset, dataset_versions.c.version, dataset_versions.c.profile_digest)
    for dataset, version, profile in conn.execute(select(*columns).where(columns[2].is_not(None))):
        yield Reference(profile, f"dataset_versions {dataset} v{version} profile")


def _step_refs(conn: Connection) -> Iterator[Reference]:
    for run_id, step, outputs in conn.execute(select(steps.c.run_id, steps.c.step, steps.c.outputs)):
        for name, value in (outputs or {}).items():
            for digest in _digests_in(value):
                yield Reference(digest, f"steps run {run_id} step {step} output {name}")


def _digests_in(value: Any) -> Iterator[str]:
    if isinstance(value, str) and _DIGEST.fullmatch(value):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _digests_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _digests_in(item)


def _state(artifacts: ArtifactStore, digest: str) -> str:
    """``ok``, ``missing`` or ``corrupted`` (its bytes hash to something else)."""
    try:
        with open(artifacts.path(digest), "rb") as handle:
            actual = hashlib.file_digest(handle, "sha256").hexdigest()
    except FileNotFoundError:
        return "missing"
    return "ok" if actual == digest else "corrupted"


def _stray(root: Path, found: _File, cutoff: float, fix: bool) -> StrayFile:
    age = time.time() - found.mtime
    kept = age < cutoff
    removed = fix and not kept and _remove_if_old(found.path, cutoff)
    return StrayFile(str(found.path.relative_to(root)), found.size, round(age, 3), kept, removed)


def _remove_if_old(path: Path, cutoff: float) -> bool:
    """Remove ``path`` unless a writer touched it since it was listed (a blob being referenced again)."""
    try:
        if time.time() - path.lstat().st_mtime < cutoff:
            return False
        path.unlink()
    except FileNotFoundError:
        return False
    return True
