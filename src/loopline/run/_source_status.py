"""What each supervised source is doing, readable from any process.

Two halves make a :class:`SourceStatus`: the store's figures (rows committed, the rate over the last minute,
the age of the newest part and of the checkpoint), which every process sees, and the supervisor's own state
(running, restarting, failed; restarts; last error), which it writes as a small JSON file,
``$LOOPLINE_HOME/sources/<pipeline>.json``, every second. A file older than :data:`STALE_S` means no
supervisor is running: every source then reads as ``stopped``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopline.store import Store

#: the window of :attr:`SourceStatus.rate`
RATE_WINDOW_S = 60.0
#: a status file older than this belongs to a supervisor that is no longer running
STALE_S = 10.0
STATES = ("running", "restarting", "failed", "stopped")


@dataclass(frozen=True)
class SupervisedState:
    """The supervisor's side of one source (what the store cannot know)."""

    state: str
    restarts: int = 0
    last_error: str | None = None
    pid: int | None = None
    retry_in_s: float | None = None
    backlog: int | None = None


@dataclass(frozen=True)
class SourceStatus:
    """One continuous source of a pipeline, as ``loopline sources status`` shows it.

    ``state``: running, restarting (its process died; it starts again in ``retry_in_s``), failed (a config or
    data error that a restart cannot cure; retried at the longest backoff) or stopped (no supervisor runs it).
    ``rows``: rows committed by this source so far. ``rate``: rows per second committed over the last minute.
    ``lag_s``: seconds since its newest committed rows (None before any); ``checkpoint_age_s``: seconds since its
    checkpoint last moved (an idle stream still moves it, so this one grows only while ingestion is stuck).
    ``backlog``: messages the broker still holds for this consumer (Redis streams, NATS JetStream; sampled every
    few seconds by the running child), None where the source cannot tell.
    """

    source: str
    dataset: str
    type: str
    state: str
    restarts: int
    last_error: str | None
    pid: int | None
    retry_in_s: float | None
    rows: int
    rate: float
    lag_s: float | None
    checkpoint_age_s: float | None
    backlog: int | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def status_file(home: Path, pipeline: str) -> Path:
    """Where the supervisor of ``pipeline`` writes its state."""
    return home / "sources" / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', pipeline)}.json"


def write_states(path: Path, pipeline: str, states: dict[str, SupervisedState]) -> None:
    """Replace the status file atomically (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "pipeline": pipeline,
        "supervisor_pid": os.getpid(),
        "updated_at": datetime.now(UTC).isoformat(),
        "sources": {name: asdict(state) for name, state in states.items()},
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(body), encoding="utf-8")
    os.replace(tmp, path)


def read_states(path: Path, now: datetime | None = None) -> dict[str, SupervisedState]:
    """The states in the file; empty when there is none, it cannot be read, or it is stale."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        updated = datetime.fromisoformat(body["updated_at"])
        sources = body["sources"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if ((now or datetime.now(UTC)) - updated).total_seconds() > STALE_S:
        return {}
    return {name: SupervisedState(**fields) for name, fields in sources.items()}


def source_status(
    store: Store,
    *,
    step: str,
    dataset: str,
    source_type: str,
    supervised: SupervisedState | None,
    now: datetime | None = None,
) -> SourceStatus:
    """The status of one source: the store's figures joined with the supervisor's state (None: stopped)."""
    now = now or datetime.now(UTC)
    activity = store.datasets.source_activity(dataset, step, now - timedelta(seconds=RATE_WINDOW_S))
    state = supervised or SupervisedState("stopped")
    return SourceStatus(
        source=step,
        dataset=dataset,
        type=source_type,
        state=state.state,
        restarts=state.restarts,
        last_error=state.last_error,
        pid=state.pid,
        retry_in_s=state.retry_in_s,
        rows=activity.rows,
        rate=activity.rows_since / RATE_WINDOW_S,
        lag_s=_age(now, activity.newest_part_at),
        checkpoint_age_s=_age(now, activity.checkpoint_at),
        backlog=state.backlog,
    )


def _age(now: datetime, then: datetime | None) -> float | None:
    if then is None:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return max(0.0, (now - then).total_seconds())
