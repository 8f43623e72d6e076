"""Run records: one row per pipeline run, one per step, and the step cache lookup."""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from loopline.core.errors import NotFoundError
from loopline.store._db import check_choice, reading, upsert, utcnow, writing
from loopline.store._tables import runs, steps

RUN_STATUSES = ("running", "succeeded", "failed")
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


class RunRepository:
    """Runs and their steps. Every method is one transaction; safe across threads and processes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_run(self, pipeline: str, pipeline_hash: str, spec: dict[str, Any], params: dict[str, Any]) -> str:
        """Record a new run with status ``running`` and return its id (uuid4 hex)."""
        run_id = uuid.uuid4().hex
        row = insert(runs).values(
            run_id=run_id,
            pipeline=pipeline,
            pipeline_hash=pipeline_hash,
            spec=spec,
            params=params,
            status="running",
            started_at=utcnow(),
        )
        with writing(self.engine) as conn:
            conn.execute(row)
        return run_id

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
    return RunRecord(**{name: row[name] for name in _RUN_FIELDS}, steps=step_records)


_STEP_FIELDS = tuple(StepRecord.__dataclass_fields__)
_RUN_FIELDS = tuple(name for name in RunRecord.__dataclass_fields__ if name != "steps")
