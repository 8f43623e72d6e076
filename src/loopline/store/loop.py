"""The loop service's state: leases (one retrain at a time across processes and hosts) and events (every decision).

A lease is a row of ``loop_leases`` named after what it guards (a pipeline's retrain). :meth:`LoopStore.acquire` is
atomic on SQLite and PostgreSQL: an INSERT that does nothing when the row exists, else a compare-and-swap UPDATE of
a *lapsed* lease (its expiry passed, or its holder's process on this host is gone: the run records' owner rule,
:mod:`loopline.store._owner`). Two processes that race get one lease. The holder renews it
(:meth:`LoopStore.renew`) and deletes it (:meth:`LoopStore.release`) when done; a holder killed mid-retrain leaves
a row that lapses, and the next acquirer learns whose it was (:attr:`Lease.previous`) to pick up its work.
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping

from loopline.store._db import check_choice, reading, utcnow, writing
from loopline.store._owner import process_exists, this_owner
from loopline.store._tables import LOOP_EVENT_KINDS, dataset_parts, loop_events, loop_leases

__all__ = ["LOOP_EVENT_KINDS", "Lease", "LeaseHolder", "LoopEvent", "LoopStore", "PipelineEvents"]


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds (or held) a lease: a unique ``holder`` token, the process, and the lease's times."""

    holder: str
    owner_host: str
    owner_pid: int
    acquired_at: datetime
    expires_at: datetime
    heartbeat: datetime

    def lapsed(self, now: datetime) -> bool:
        """Expired, or held by a process of this host that no longer exists (killed, crashed)."""
        if self.expires_at <= now:
            return True
        return self.owner_host == this_owner().host and not process_exists(self.owner_pid)

    def describe(self, now: datetime) -> str:
        """``pid N on HOST, renewed Ns ago, expires in Ms`` (for messages)."""
        renewed = (now - self.heartbeat).total_seconds()
        expires = (self.expires_at - now).total_seconds()
        return f"pid {self.owner_pid} on {self.owner_host}, renewed {renewed:.0f}s ago, expires in {expires:.0f}s"


@dataclass(frozen=True)
class Lease:
    """A lease this process holds; ``previous`` is the lapsed holder it was taken over from (None: it was free)."""

    name: str
    holder: str
    expires_at: datetime
    previous: LeaseHolder | None = None


@dataclass(frozen=True)
class LoopEvent:
    """One decision of the loop service: ``kind`` (one of :data:`LOOP_EVENT_KINDS`), why, and its details."""

    id: int
    pipeline: str
    model: str | None
    kind: str
    reason: str
    at: datetime
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "model": self.model,
            "kind": self.kind,
            "reason": self.reason,
            "at": self.at.isoformat(),
            "details": self.details,
        }


@dataclass(frozen=True)
class PipelineEvents:
    """A pipeline that has loop events: how many of each kind, its newest event, and the model it monitors (the
    newest event that names one; None when none does)."""

    pipeline: str
    events: int
    counts: dict[str, int]
    last: LoopEvent
    model: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "model": self.model,
            "events": self.events,
            "counts": dict(self.counts),
            "last": self.last.to_dict(),
        }


class LoopStore:
    """Leases and events of the loop service. Every method is one transaction; safe across processes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- leases -------------------------------------------------------------------------------------

    def acquire(self, name: str, ttl: timedelta) -> Lease | None:
        """Take the lease ``name`` for ``ttl`` (renewable), or None when a live holder has it."""
        now, owner, holder = utcnow(), this_owner(), uuid.uuid4().hex
        row = {"holder": holder, "owner_host": owner.host, "owner_pid": owner.pid}
        row |= {"acquired_at": now, "expires_at": now + ttl, "heartbeat": now}
        for _ in range(3):  # the row may vanish (released) between the insert and the read: try again
            with writing(self.engine) as conn:
                inserted = conn.execute(_insert_if_absent(conn).values(name=name, **row)).first()
                if inserted is not None:
                    return Lease(name, holder, now + ttl)
            current = self.holder(name)
            if current is None:
                continue
            if not current.lapsed(now):
                return None
            swap = update(loop_leases).where(
                loop_leases.c.name == name,
                loop_leases.c.holder == current.holder,
                loop_leases.c.expires_at == current.expires_at,
            )
            with writing(self.engine) as conn:
                taken = conn.execute(swap.values(**row)).rowcount
            return Lease(name, holder, now + ttl, previous=current) if taken else None
        return None

    def renew(self, lease: Lease, ttl: timedelta) -> bool:
        """Extend ``lease`` by ``ttl`` from now; False when it is no longer this holder's (it lapsed and was taken)."""
        now = utcnow()
        stmt = update(loop_leases).where(loop_leases.c.name == lease.name, loop_leases.c.holder == lease.holder)
        with writing(self.engine) as conn:
            return bool(conn.execute(stmt.values(heartbeat=now, expires_at=now + ttl)).rowcount)

    def release(self, lease: Lease) -> bool:
        """Give ``lease`` up; False when it was no longer this holder's."""
        stmt = delete(loop_leases).where(loop_leases.c.name == lease.name, loop_leases.c.holder == lease.holder)
        with writing(self.engine) as conn:
            return bool(conn.execute(stmt).rowcount)

    def holder(self, name: str) -> LeaseHolder | None:
        """Who holds the lease ``name`` now (possibly lapsed), or None when nobody does."""
        with reading(self.engine) as conn:
            row = conn.execute(select(loop_leases).where(loop_leases.c.name == name)).mappings().one_or_none()
        return None if row is None else _holder(row)

    # -- events -------------------------------------------------------------------------------------

    def record(
        self, pipeline: str, kind: str, reason: str, *, model: str | None = None, details: dict[str, Any] | None = None
    ) -> LoopEvent:
        """Append one event and return it."""
        check_choice("loop event kind", kind, LOOP_EVENT_KINDS)
        at, details = utcnow(), details or {}
        values = {"pipeline": pipeline, "model": model, "kind": kind, "reason": reason, "details": details, "at": at}
        with writing(self.engine) as conn:
            (event_id,) = conn.execute(insert(loop_events).values(**values).returning(loop_events.c.id)).one()
        return LoopEvent(int(event_id), pipeline, model, kind, reason, at, details)

    def events(
        self, pipeline: str, *, limit: int = 50, kinds: tuple[str, ...] | None = None, offset: int = 0
    ) -> builtins.list[LoopEvent]:
        """The newest ``limit`` events of ``pipeline`` (of ``kinds`` if given) after the newest ``offset``, newest
        first."""
        stmt = select(loop_events).where(loop_events.c.pipeline == pipeline)
        if kinds is not None:
            stmt = stmt.where(loop_events.c.kind.in_(kinds))
        stmt = stmt.order_by(loop_events.c.at.desc(), loop_events.c.id.desc()).limit(limit).offset(offset)
        with reading(self.engine) as conn:
            return [_event(row) for row in conn.execute(stmt).mappings()]

    def count(self, pipeline: str, *, kinds: tuple[str, ...] | None = None) -> int:
        """How many events ``pipeline`` has (of ``kinds`` if given)."""
        stmt = select(func.count()).select_from(loop_events).where(loop_events.c.pipeline == pipeline)
        if kinds is not None:
            stmt = stmt.where(loop_events.c.kind.in_(kinds))
        with reading(self.engine) as conn:
            return int(conn.execute(stmt).scalar_one())

    def pipeline_count(self) -> int:
        """How many pipelines have loop events."""
        stmt = select(func.count(func.distinct(loop_events.c.pipeline)))
        with reading(self.engine) as conn:
            return int(conn.execute(stmt).scalar_one())

    def pipelines(self, *, limit: int = 50, offset: int = 0) -> builtins.list[PipelineEvents]:
        """The pipelines that have loop events, the one with the newest event first (``limit`` of them after the
        first ``offset``): four grouped queries over that page of pipelines, whatever the number of events."""
        c = loop_events.c
        newest = func.max(c.id).label("newest")
        page = select(c.pipeline, newest).group_by(c.pipeline).order_by(newest.desc()).limit(limit).offset(offset)
        with reading(self.engine) as conn:
            return _summaries(conn, {str(row.pipeline): int(row.newest) for row in conn.execute(page)})

    def pipeline(self, pipeline: str) -> PipelineEvents | None:
        """What :meth:`pipelines` says of ``pipeline`` (None: it has no loop event)."""
        stmt = select(func.max(loop_events.c.id)).where(loop_events.c.pipeline == pipeline)
        with reading(self.engine) as conn:
            newest = conn.execute(stmt).scalar_one()
            found = [] if newest is None else _summaries(conn, {pipeline: int(newest)})
        return found[0] if found else None

    def latest_for_model(self, model: str, kinds: tuple[str, ...]) -> LoopEvent | None:
        """The newest event about ``model`` of one of ``kinds``, whatever the pipeline (None: none yet)."""
        stmt = (
            select(loop_events)
            .where(loop_events.c.model == model, loop_events.c.kind.in_(kinds))
            .order_by(loop_events.c.id.desc())
            .limit(1)
        )
        with reading(self.engine) as conn:
            row = conn.execute(stmt).mappings().first()
        return None if row is None else _event(row)

    def last(self, pipeline: str, kind: str) -> LoopEvent | None:
        """The newest event of ``kind`` for ``pipeline``, or None."""
        found = self.events(pipeline, limit=1, kinds=(kind,))
        return found[0] if found else None

    # -- data volume --------------------------------------------------------------------------------

    def rows_since(self, datasets: builtins.list[str], since: datetime | None) -> int:
        """Rows committed to ``datasets`` after ``since`` (all of them when None)."""
        if not datasets:
            return 0
        stmt = select(func.coalesce(func.sum(dataset_parts.c.rows), 0)).where(dataset_parts.c.dataset.in_(datasets))
        if since is not None:
            stmt = stmt.where(dataset_parts.c.created_at > since)
        with reading(self.engine) as conn:
            return int(conn.execute(stmt).scalar_one())


def _insert_if_absent(conn: Connection) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(loop_leases).on_conflict_do_nothing(index_elements=["name"]).returning(loop_leases.c.name)


def _summaries(conn: Connection, last_ids: dict[str, int]) -> builtins.list[PipelineEvents]:
    """The :class:`PipelineEvents` of the pipelines whose newest event ids ``last_ids`` holds, in its order."""
    if not last_ids:
        return []
    c, names = loop_events.c, list(last_ids)
    counts: dict[str, dict[str, int]] = {name: {} for name in names}
    kinds = select(c.pipeline, c.kind, func.count()).where(c.pipeline.in_(names)).group_by(c.pipeline, c.kind)
    for name, kind, n in conn.execute(kinds):
        counts[str(name)][str(kind)] = int(n)
    named = select(c.pipeline, func.max(c.id)).where(c.pipeline.in_(names), c.model.is_not(None))
    model_ids = [int(i) for _, i in conn.execute(named.group_by(c.pipeline))]
    wanted = select(loop_events).where(c.id.in_([*last_ids.values(), *model_ids]))
    rows = {int(row["id"]): _event(row) for row in conn.execute(wanted).mappings()}
    models = {rows[i].pipeline: rows[i].model for i in model_ids}
    return [
        PipelineEvents(name, sum(counts[name].values()), counts[name], rows[last_ids[name]], models.get(name))
        for name in names
    ]


def _holder(row: RowMapping) -> LeaseHolder:
    return LeaseHolder(**{name: row[name] for name in LeaseHolder.__dataclass_fields__})


def _event(row: RowMapping) -> LoopEvent:
    return LoopEvent(**{name: row[name] for name in LoopEvent.__dataclass_fields__})
