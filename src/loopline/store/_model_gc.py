"""Pruning the model repository: archived versions beyond a retention rule, then their orphaned artifacts.

Which versions go (:func:`collect`): of the model's **archived** versions that no alias points at (production
is an alias, so it never goes; nor do candidates — archive them first), the ``keep`` most recently archived
stay; with ``older_than``, only versions archived longer ago than that go. The rows are deleted in one
transaction that writes a ``gc`` event per version (its orphaned digests in ``details``); a foreign key makes
deleting a version an alias points at impossible even for a concurrent writer. Version numbers are never given
again (the next one counts the deleted ones, see the audit trail).

Then the artifacts: a digest the deleted versions referenced is removed only when no other row references it
(another version, a dataset, a cached step output: the same rule as ``loopline store check``) and no writer
touched it in the last ``grace`` before gc began (a writer storing the same bytes refreshes the blob's
modification time just before it commits the row that references it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, RowMapping

from loopline.core.errors import StoreError
from loopline.core.records import PERFORMANCE_REFERENCE_KEY
from loopline.store._aliases import alias_map, transact
from loopline.store._audit import record
from loopline.store._check import referenced_digests
from loopline.store._db import reading, utcnow
from loopline.store._tables import models

if TYPE_CHECKING:
    from loopline.store.models import ModelRepository

DEFAULT_KEEP = 5
DEFAULT_GC_GRACE = timedelta(minutes=10)


@dataclass(frozen=True)
class Retention:
    """Keep the ``keep`` most recently archived versions; with ``older_than``, delete only versions archived
    longer ago than that."""

    keep: int = DEFAULT_KEEP
    older_than: timedelta | None = None

    def check(self) -> None:
        """Refuse a negative count or age."""
        if self.keep < 0:
            raise StoreError(f"keep is {self.keep}; it must be 0 or more.", hint="Use e.g. --keep 5.")
        if self.older_than is not None and self.older_than < timedelta(0):
            raise StoreError("older_than must not be negative.", hint="Use e.g. --older-than 30d.")


@dataclass(frozen=True)
class GcReport:
    """What ``gc`` deleted (``dry_run``: would delete) for one model.

    ``removed``: the versions deleted; ``kept``: archived versions the retention rule kept; ``protected``:
    archived versions an alias points at. ``artifacts_removed``: digests deleted with them (``dry_run``: that
    would be); ``artifacts_kept``: their digests that stay (referenced elsewhere, or touched during the grace
    period); ``bytes_freed``: the size of the removed artifacts.
    """

    name: str
    dry_run: bool
    removed: tuple[int, ...]
    kept: tuple[int, ...]
    protected: tuple[int, ...]
    artifacts_removed: tuple[str, ...] = ()
    artifacts_kept: tuple[str, ...] = ()
    bytes_freed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "dry_run": self.dry_run,
            "removed": list(self.removed),
            "kept": list(self.kept),
            "protected": list(self.protected),
            "artifacts_removed": list(self.artifacts_removed),
            "artifacts_kept": list(self.artifacts_kept),
            "bytes_freed": self.bytes_freed,
        }


@dataclass(frozen=True)
class _Plan:
    removed: tuple[int, ...]
    kept: tuple[int, ...]
    protected: tuple[int, ...]
    digests: frozenset[str]
    orphans: frozenset[str]


def collect(
    repo: ModelRepository,
    name: str,
    rule: Retention,
    *,
    dry_run: bool,
    reason: str,
    actor: str | None,
    grace: timedelta,
) -> GcReport:
    """Apply ``rule`` to ``name`` (see the module doc)."""
    rule.check()
    started = time.time()
    if dry_run:
        with reading(repo.engine) as conn:
            plan = _plan(conn, name, rule, lock=False)
    else:
        plan = transact(repo.engine, name, lambda conn: _delete(conn, name, rule, reason, actor))
    removed, sizes = _remove_blobs(repo, plan.orphans, dry_run, modified_before=started - grace.total_seconds())
    return GcReport(
        name=name,
        dry_run=dry_run,
        removed=plan.removed,
        kept=plan.kept,
        protected=plan.protected,
        artifacts_removed=tuple(sorted(removed)),
        artifacts_kept=tuple(sorted(plan.digests - set(removed))),
        bytes_freed=sum(sizes),
    )


def _delete(conn: Connection, name: str, rule: Retention, reason: str, actor: str | None) -> _Plan:
    plan = _plan(conn, name, rule, lock=True)
    rows = {row["version"]: row for row in _rows(conn, name, lock=False)}
    if plan.removed:
        conn.execute(delete(models).where(models.c.name == name, models.c.version.in_(plan.removed)))
    orphans = frozenset(plan.digests - referenced_digests(conn))
    now = utcnow()
    for version in plan.removed:
        own = sorted(d for d in _digests(rows[version]) if d in orphans)
        record(
            conn,
            name,
            "gc",
            at=now,
            actor=actor,
            reason=reason,
            from_version=version,
            details={"artifacts": own, "archived_at": _when(rows[version]).isoformat()},
        )
    return _Plan(plan.removed, plan.kept, plan.protected, plan.digests, orphans)


def _plan(conn: Connection, name: str, rule: Retention, *, lock: bool) -> _Plan:
    rows = _rows(conn, name, lock=lock)
    if not rows:
        from loopline.store.models import _missing

        raise _missing(conn, name, None)
    pointed = set(alias_map(conn, name).values())
    archived = sorted(
        (r for r in rows if r["stage"] == "archived"), key=lambda r: (_when(r), r["version"]), reverse=True
    )
    protected = [r["version"] for r in archived if r["version"] in pointed]
    free = [r for r in archived if r["version"] not in pointed]
    cutoff = None if rule.older_than is None else utcnow() - rule.older_than
    beyond = free[rule.keep :]
    removed = [r for r in beyond if cutoff is None or _when(r) < cutoff]
    gone = {r["version"] for r in removed}
    digests = frozenset(d for r in removed for d in _digests(r))
    skip = frozenset((name, v) for v in gone)
    orphans = frozenset(digests - referenced_digests(conn, skip=skip))
    return _Plan(
        removed=tuple(sorted(gone)),
        kept=tuple(sorted(r["version"] for r in free if r["version"] not in gone)),
        protected=tuple(sorted(protected)),
        digests=digests,
        orphans=orphans,
    )


def _rows(conn: Connection, name: str, *, lock: bool) -> list[RowMapping]:
    stmt = select(models).where(models.c.name == name).order_by(models.c.version)
    return list(conn.execute(stmt.with_for_update() if lock else stmt).mappings().all())


def _when(row: RowMapping) -> datetime:
    archived: datetime | None = row["archived_at"]
    return archived if archived is not None else row["created_at"]


def _digests(row: RowMapping) -> set[str]:
    found = {row["bundle_digest"], row["reference_digest"], row["profile_digest"]}
    performance = (row["config"] or {}).get(PERFORMANCE_REFERENCE_KEY)
    if isinstance(performance, str):
        found.add(performance)
    return {d for d in found if isinstance(d, str)}


def _remove_blobs(
    repo: ModelRepository, orphans: frozenset[str], dry_run: bool, *, modified_before: float
) -> tuple[list[str], list[int]]:
    """Remove the orphaned blobs (``dry_run``: list them); returns their digests and sizes."""
    if not orphans:
        return [], []
    entries = {e.digest: e for e in repo.artifacts.entries() if e.digest in orphans}
    removed, sizes = [], []
    for digest, entry in sorted(entries.items()):
        if dry_run or repo.artifacts.remove_stale(entry, modified_before=modified_before):
            removed.append(digest)
            sizes.append(entry.size)
    return removed, sizes
