"""Run records: one row per pipeline run, one per step, and the step cache lookup.

A run's stored status is ``running``, ``succeeded`` or ``failed``. A ``running`` run also records its owner
(host, pid) and a heartbeat; one whose owner is gone (:func:`~loopline.store._owner.owner_gone`) reads back as
``stale``, a status that is never stored. Resuming a run first claims it (:meth:`RunRepository.claim`): a run
whose owner is alive is refused.
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from loopline.core.errors import ConflictError, NotFoundError
from loopline.store._db import check_choice, reading, upsert, utcnow, writing
from loopline.store._owner import owner_gone, this_owner
from loopline.store._tables import runs, steps

RUN_STATUSES = ("running", "succeeded", "failed")
STALE = "stale"  # read back for a running run whose owner is gone; never stored
STEP_STATUSES = ("succeeded", "cached", "failed")


@dataclass(frozen=True)
class StepRecord:
    """What happened to one step of a run. ``outputs`` maps output name to ``{"digest", "kind"}``."""

    step: str
    type: str
    status: str
    cache_key: str | None
    started_at: datetime
    finished_at: datetime
    duration_s: float
    config: dict[str, Any]
    outputs: dict[str, dict[str, Any]]
    error: str | None = None
    attempt: int = 1


@dataclass(frozen=True)
class RunRecord:
    """One pipeline run and, from :meth:`RunRepository.get`, its steps in start order."""

    run_id: str
    pipeline: str
    pipeline_hash: str
    spec: dict[str, Any]
    params: dict[str, Any]
    status: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    steps: list[StepRecord] = field(default_factory=list)
    pipeline_file: str | None = None
    owner_host: str | None = None
    owner_pid: int | None = None
    heartbeat_at: datetime | None = None

    def owner(self) -> str:
        """``pid N on HOST, heartbeat Ns ago`` (for messages)."""
        if self.owner_pid is None:
            return "owner not recorded"
        if self.heartbeat_at is None:
            return f"pid {self.owner_pid} on {self.owner_host}"
        ago = (utcnow() - self.heartbeat_at).total_seconds()
        return f"pid {self.owner_pid} on {self.owner_host}, heartbeat {ago:.0f}s ago"


class RunRepository:
    """Runs and their steps. Every method is one transaction; safe across threads and processes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_run(
        self,
        pipeline: str,
        pipeline_hash: str,
        spec: dict[str, Any],
        params: dict[str, Any],
        pipeline_file: str | None = None,
    ) -> str:
        """Record a new run with status ``running``, owned by the calling process; return its id (uuid4 hex)."""
        run_id = uuid.uuid4().hex
        now, owner = utcnow(), this_owner()
        row = insert(runs).values(
            run_id=run_id,
            pipeline=pipeline,
            pipeline_hash=pipeline_hash,
            spec=spec,
            params=params,
            status="running",
            started_at=now,
            pipeline_file=pipeline_file,
            owner_host=owner.host,
            owner_pid=owner.pid,
            heartbeat_at=now,
        )
        with writing(self.engine) as conn:
            conn.execute(row)
        return run_id

    def claim(
        self, run_id: str, pipeline_hash: str, spec: dict[str, Any], pipeline_file: str | None = None
    ) -> RunRecord:
        """Take over ``run_id`` to resume it: it becomes ``running``, owned by the calling process, with the
        pipeline it now runs. Returns the run as it was. Raises ConflictError if its owner is still alive, or
        if another process claimed it first."""
        before = self.get(run_id)
        if before.status == "running":
            raise ConflictError(
                f"run {run_id} is still running ({before.owner()}).",
                hint="Wait for it to end or stop that process; a run whose owner is gone shows as `stale` in "
                "`loopline runs list` and can be resumed.",
            )
        owner, now = this_owner(), utcnow()
        values: dict[str, Any] = {"pipeline_hash": pipeline_hash, "spec": spec, "status": "running"}
        values |= {"finished_at": None, "error": None, "heartbeat_at": now}
        values |= {"owner_host": owner.host, "owner_pid": owner.pid}
        if pipeline_file is not None:
            values["pipeline_file"] = pipeline_file
        with writing(self.engine) as conn:
            if conn.execute(_unchanged(before).values(**values)).rowcount == 0:
                raise ConflictError(
                    f"run {run_id} was claimed by another process while this one resumed it.",
                    hint="See `loopline runs list`; resume it again once that process has ended.",
                )
        return before

    def heartbeat(self, run_id: str) -> bool:
        """Stamp the run's heartbeat if the calling process still owns it; False if it does not."""
        owner = this_owner()
        stmt = update(runs).where(
            runs.c.run_id == run_id,
            runs.c.owner_host == owner.host,
            runs.c.owner_pid == owner.pid,
            runs.c.status == "running",
        )
        with writing(self.engine) as conn:
            return bool(conn.execute(stmt.values(heartbeat_at=utcnow())).rowcount)

    def set_status(self, run_id: str, status: str, error: str | None = None) -> None:
        """Set a run's status; ``succeeded`` and ``failed`` also stamp ``finished_at``."""
        check_choice("run status", status, RUN_STATUSES)
        finished = None if status == "running" else utcnow()
        stmt = update(runs).where(runs.c.run_id == run_id)
        with writing(self.engine) as conn:
            result = conn.execute(stmt.values(status=status, error=error, finished_at=finished))
            if result.rowcount == 0:
                raise _run_not_found(run_id)

    def record_steps(self, run_id: str, records: list[StepRecord]) -> None:
        """Save step records in one transaction; a step already recorded for the run is replaced."""
        for record in records:
            check_choice("step status", record.status, STEP_STATUSES)
        rows = {record.step: _step_row(run_id, record) for record in records}
        with writing(self.engine) as conn:
            _require_run(conn, run_id)
            upsert(conn, steps, list(rows.values()), ["run_id", "step"])

    def find_cached(self, cache_key: str) -> dict[str, dict[str, Any]] | None:
        """Outputs of the latest succeeded or cached step with ``cache_key``, or None."""
        stmt = (
            select(steps.c.outputs)
            .where(steps.c.cache_key == cache_key, steps.c.status.in_(("succeeded", "cached")))
            .order_by(steps.c.finished_at.desc())
            .limit(1)
        )
        with reading(self.engine) as conn:
            outputs: dict[str, dict[str, Any]] | None = conn.execute(stmt).scalar_one_or_none()
        return outputs

    def get(self, run_id: str) -> RunRecord:
        """The run ``run_id`` with its steps."""
        step_query = select(steps).where(steps.c.run_id == run_id).order_by(steps.c.started_at, steps.c.step)
        with reading(self.engine) as conn:
            row = conn.execute(select(runs).where(runs.c.run_id == run_id)).mappings().one_or_none()
            if row is None:
                raise _run_not_found(run_id)
            step_rows = conn.execute(step_query).mappings().all()
        return _run_record(row, [_step_record(r) for r in step_rows])

    def list(self, limit: int = 20, pipeline: str | None = None) -> builtins.list[RunRecord]:
        """The newest ``limit`` runs (of ``pipeline`` if given), newest first, without their steps."""
        stmt = select(runs).order_by(runs.c.started_at.desc(), runs.c.run_id).limit(limit)
        if pipeline is not None:
            stmt = stmt.where(runs.c.pipeline == pipeline)
        with reading(self.engine) as conn:
            rows = conn.execute(stmt).mappings().all()
        return [_run_record(row, []) for row in rows]

    def page(
        self, *, offset: int = 0, limit: int = 50, pipeline: str | None = None, status: str | None = None
    ) -> builtins.list[RunRecord]:
        """One page of runs, newest first, without their steps: ``limit`` runs after the first ``offset``,
        of ``pipeline`` and with the stored ``status`` (``running`` includes the runs that read back ``stale``)
        if given. :meth:`count` gives the total for the same filters."""
        stmt = _filtered(select(runs), pipeline, status)
        stmt = stmt.order_by(runs.c.started_at.desc(), runs.c.run_id).offset(offset).limit(limit)
        with reading(self.engine) as conn:
            rows = conn.execute(stmt).mappings().all()
        return [_run_record(row, []) for row in rows]

    def count(self, *, pipeline: str | None = None, status: str | None = None) -> int:
        """How many runs :meth:`page` pages through for these filters."""
        with reading(self.engine) as conn:
            return int(conn.execute(_filtered(select(func.count()).select_from(runs), pipeline, status)).scalar_one())

    def pipelines(self) -> builtins.list[str]:
        """The names of the pipelines that have runs, sorted."""
        with reading(self.engine) as conn:
            return [r[0] for r in conn.execute(select(runs.c.pipeline).distinct().order_by(runs.c.pipeline))]

    def step_counts(self, run_ids: builtins.list[str]) -> dict[str, dict[str, int]]:
        """For each of ``run_ids``: how many of its recorded steps have each status (``{"succeeded": 3,
        "cached": 1, "failed": 0}``), counted in one query; a run with no step recorded has zeros."""
        counts = {run_id: dict.fromkeys(STEP_STATUSES, 0) for run_id in run_ids}
        if not run_ids:
            return counts
        stmt = (
            select(steps.c.run_id, steps.c.status, func.count())
            .where(steps.c.run_id.in_(run_ids))
            .group_by(steps.c.run_id, steps.c.status)
        )
        with reading(self.engine) as conn:
            for run_id, status, number in conn.execute(stmt):
                counts[run_id][status] = int(number)
        return counts


def _filtered(stmt: Any, pipeline: str | None, status: str | None) -> Any:
    """``stmt`` restricted to runs of ``pipeline`` with the stored ``status`` (each if given)."""
    if pipeline is not None:
        stmt = stmt.where(runs.c.pipeline == pipeline)
    if status is not None:
        check_choice("run status", status, RUN_STATUSES)
        stmt = stmt.where(runs.c.status == status)
    return stmt


def _unchanged(before: RunRecord) -> Any:
    """An UPDATE of the run that matches only while its status, owner and heartbeat are as read."""
    stored = "running" if before.status == STALE else before.status
    return update(runs).where(
        runs.c.run_id == before.run_id,
        runs.c.status == stored,
        _same(runs.c.owner_host, before.owner_host),
        _same(runs.c.owner_pid, before.owner_pid),
        _same(runs.c.heartbeat_at, before.heartbeat_at),
    )


def _same(column: Any, value: Any) -> Any:
    return column.is_(None) if value is None else column == value


def _require_run(conn: Connection, run_id: str) -> None:
    if conn.execute(select(runs.c.run_id).where(runs.c.run_id == run_id)).first() is None:
        raise _run_not_found(run_id)


def _run_not_found(run_id: str) -> NotFoundError:
    return NotFoundError(f"run {run_id!r} does not exist.", hint="List runs with `loopline runs list`.")


def _step_row(run_id: str, record: StepRecord) -> dict[str, Any]:
    return {"run_id": run_id, **{name: getattr(record, name) for name in _STEP_FIELDS}}


def _step_record(row: RowMapping) -> StepRecord:
    return StepRecord(**{name: row[name] for name in _STEP_FIELDS})


def _run_record(row: RowMapping, step_records: list[StepRecord]) -> RunRecord:
    fields = {name: row[name] for name in _RUN_FIELDS}
    if fields["status"] == "running" and owner_gone(row["owner_host"], row["owner_pid"], row["heartbeat_at"], utcnow()):
        fields["status"] = STALE
    return RunRecord(**fields, steps=step_records)


_STEP_FIELDS = tuple(StepRecord.__dataclass_fields__)
_RUN_FIELDS = tuple(name for name in RunRecord.__dataclass_fields__ if name != "steps")
