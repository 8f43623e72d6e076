"""The consistency check of a store: the artifact store against the metadata rows that reference it.

It finds (a) temp files left by killed writers (``.tmp-*`` in the root or a ``<2 hex>`` folder), (b) orphans:
blobs that no row references, and (c) rows that reference a missing or corrupted blob. ``fix`` removes (a)
and (b) only; a referenced blob is never removed, whatever its state. It works on every artifact backend
through the contract (:meth:`ArtifactStore.entries`, ``open``, ``remove_stale``); on object storage a
"file" is an object and its modification time the object's.

Every place that references an artifact digest (``test_check`` fails when a table gains a ``*digest``
column that is not listed here):

- ``models.bundle_digest``, ``models.reference_digest``, ``models.profile_digest`` and the performance
  reference its ``config`` names (``performance_reference``);
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

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from loopline.core.errors import NotFoundError
from loopline.core.records import PERFORMANCE_REFERENCE_KEY
from loopline.store._db import reading
from loopline.store._tables import dataset_parts, dataset_versions, models, steps
from loopline.store.artifacts import ArtifactEntry, ArtifactStore
from loopline.store.artifacts._contract import sha256_stream

DEFAULT_GRACE = timedelta(hours=1)
_DIGEST = re.compile(r"[0-9a-f]{64}")


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
    def left(self) -> list[StrayFile]:
        """The temp files and orphans still there (not removed), young ones included."""
        return [f for f in self.temp_files + self.orphans if not f.removed]

    @property
    def clean(self) -> bool:
        """Nothing to repair is left: no broken reference, and no temp file or orphan still there.

        Young ones (maybe a write in progress, left alone even by ``fix``) count too: the store is not known to
        be consistent until they are referenced or removed.
        """
        return not (self.missing or self.corrupted or self.left)


def check_store(
    engine: Engine, artifacts: ArtifactStore, *, fix: bool = False, grace: timedelta = DEFAULT_GRACE
) -> CheckReport:
    """Check every blob and every reference; with ``fix``, remove old temp files and old orphans."""
    listed = artifacts.entries()  # listed BEFORE the references are read (see the module doc)
    temps = [e for e in listed if e.digest is None]
    blobs = {e.digest: e for e in listed if e.digest is not None}
    references = _references(engine)
    referenced = {ref.digest for ref in references}
    state = {digest: _state(artifacts, digest) for digest in sorted(referenced)}
    cutoff = grace.total_seconds()
    orphans = [e for digest, e in sorted(blobs.items()) if digest not in referenced]
    return CheckReport(
        artifacts=len(blobs),
        referenced=len(referenced),
        temp_files=[_stray(artifacts, e, cutoff, fix) for e in temps],
        orphans=[_stray(artifacts, e, cutoff, fix) for e in orphans],
        missing=[ref for ref in references if state[ref.digest] == "missing"],
        corrupted=[ref for ref in references if state[ref.digest] == "corrupted"],
    )


def _references(engine: Engine) -> list[Reference]:
    with reading(engine) as conn:
        return [*_model_refs(conn), *_dataset_refs(conn), *_step_refs(conn)]


def referenced_digests(conn: Connection, *, skip: frozenset[tuple[str, int]] = frozenset()) -> set[str]:
    """Every digest a row references, as ``conn`` sees them; ``skip``: model versions (name, version) whose
    references do not count (what a dry run of ``gc`` would delete)."""
    return {ref.digest for ref in [*_model_refs(conn, skip), *_dataset_refs(conn), *_step_refs(conn)]}


def _model_refs(conn: Connection, skip: frozenset[tuple[str, int]] = frozenset()) -> Iterator[Reference]:
    columns = (
        models.c.name,
        models.c.version,
        models.c.bundle_digest,
        models.c.reference_digest,
        models.c.profile_digest,
        models.c.config,
    )
    for name, version, bundle, reference, profile, config in conn.execute(select(*columns)):
        if (name, version) in skip:
            continue
        yield Reference(bundle, f"models {name} v{version} bundle")
        if reference is not None:
            yield Reference(reference, f"models {name} v{version} reference")
        if profile is not None:
            yield Reference(profile, f"models {name} v{version} profile")
        performance = (config or {}).get(PERFORMANCE_REFERENCE_KEY)
        if isinstance(performance, str):
            yield Reference(performance, f"models {name} v{version} performance reference")


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
        with artifacts.open(digest) as handle:
            actual = sha256_stream(handle)
    except NotFoundError:
        return "missing"
    return "ok" if actual == digest else "corrupted"


def _stray(artifacts: ArtifactStore, found: ArtifactEntry, cutoff: float, fix: bool) -> StrayFile:
    now = _now()
    age = now - found.mtime
    kept = age < cutoff
    # removed unless a writer touched it since it was listed (a blob being referenced again)
    removed = fix and not kept and artifacts.remove_stale(found, modified_before=now - cutoff)
    return StrayFile(found.name, found.size, round(age, 3), kept, removed)


def _now() -> float:
    return time.time()
