"""Closed monitoring windows over the prediction log, one row per (model, window spec, window number).

The orchestrator (:mod:`loopline.run._windows`) computes a window once it is complete and stores it here with
the alerts it fired, in one transaction. The key ``(model_name, spec, seq)`` is unique: a window closed by
another process first is not stored twice, and neither are its alerts. ``result`` is the window's record as JSON
(:class:`loopline.monitor.WindowResult`); the columns beside it are what the queries need.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping

from loopline.store._db import reading, utcnow, writing
from loopline.store._tables import alerts, monitor_windows
from loopline.store.alerts import AlertEvent, alert_event


@dataclass(frozen=True)
class WindowRow:
    """A window to store: where it lies in the log, its row count, its drifted features and its record."""

    model_name: str
    spec: str
    seq: int
    start_at: datetime
    end_at: datetime
    last_id: str | None
    rows: int
    drifted: int | None
    result: dict[str, Any]


@dataclass(frozen=True)
class AlertRow:
    """An alert to store with its window: the rule in words, the figure, ``above``/``below``, the numbers."""

    rule: str
    metric: str
    op: str
    threshold: float
    value: float


@dataclass(frozen=True)
class StoredWindow(WindowRow):
    """A closed window as stored: its row's fields, the row ``id`` and when it was ``closed_at``."""

    id: int
    closed_at: datetime


_FIELDS = tuple(StoredWindow.__dataclass_fields__)


class WindowRepository:
    """Closed windows per model and spec; safe across threads and processes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def last(self, model_name: str, spec: str) -> StoredWindow | None:
        """The newest closed window of ``model_name`` for ``spec`` (None before the first)."""
        stmt = (
            select(monitor_windows)
            .where(monitor_windows.c.model_name == model_name, monitor_windows.c.spec == spec)
            .order_by(monitor_windows.c.seq.desc())
            .limit(1)
        )
        with reading(self.engine) as conn:
            row = conn.execute(stmt).mappings().first()
        return None if row is None else _stored(row)

    def latest(self, model_name: str) -> StoredWindow | None:
        """The window of ``model_name`` closed last, whatever its spec (None before the first)."""
        stmt = (
            select(monitor_windows)
            .where(monitor_windows.c.model_name == model_name)
            .order_by(monitor_windows.c.end_at.desc(), monitor_windows.c.id.desc())
            .limit(1)
        )
        with reading(self.engine) as conn:
            row = conn.execute(stmt).mappings().first()
        return None if row is None else _stored(row)

    def list(
        self,
        model_name: str,
        spec: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> builtins.list[StoredWindow]:
        """Closed windows of ``model_name``, oldest first: of one ``spec``, ending after ``since``, starting
        before ``until``; ``limit`` keeps the newest ones."""
        stmt = select(monitor_windows).where(monitor_windows.c.model_name == model_name)
        if spec is not None:
            stmt = stmt.where(monitor_windows.c.spec == spec)
        if since is not None:
            stmt = stmt.where(monitor_windows.c.end_at > since)
        if until is not None:
            stmt = stmt.where(monitor_windows.c.start_at < until)
        stmt = stmt.order_by(monitor_windows.c.spec, monitor_windows.c.seq.desc())
        if limit is not None:
            stmt = stmt.limit(limit)
        with reading(self.engine) as conn:
            rows = [_stored(row) for row in conn.execute(stmt).mappings()]
        return sorted(rows, key=lambda w: (w.spec, w.seq))

    def specs(self, model_name: str) -> dict[str, int]:
        """The window specs of ``model_name`` with how many windows of each are closed, by spec (one grouped
        query)."""
        c = monitor_windows.c
        stmt = select(c.spec, func.count()).where(c.model_name == model_name).group_by(c.spec).order_by(c.spec)
        with reading(self.engine) as conn:
            return {str(spec): int(n) for spec, n in conn.execute(stmt)}

    def close(
        self, window: WindowRow, fired: Sequence[AlertRow], *, delivery: str = "none"
    ) -> tuple[StoredWindow, builtins.list[AlertEvent]] | None:
        """Store ``window`` and its ``fired`` alerts (``delivery``: their initial delivery state) in one
        transaction; None, storing nothing, when that window is already closed."""
        with writing(self.engine) as conn:
            values = {name: getattr(window, name) for name in WindowRow.__dataclass_fields__}
            stmt = _insert_new(conn).values(**values, closed_at=utcnow()).returning(*monitor_windows.c)
            row = conn.execute(stmt).mappings().first()
            if row is None:
                return None
            stored = _stored(row)
            events = [_insert_alert(conn, stored, alert, delivery) for alert in fired]
        return stored, events

    def refresh(
        self, window_id: int, result: dict[str, Any], fired: Sequence[AlertRow], *, delivery: str = "none"
    ) -> builtins.list[AlertEvent]:
        """Replace the record of closed window ``window_id`` (its labels changed) and store those of ``fired``
        whose rule has not fired on that window yet, in one transaction; returns the alerts stored."""
        with writing(self.engine) as conn:
            conn.execute(update(monitor_windows).where(monitor_windows.c.id == window_id).values(result=result))
            row = conn.execute(select(monitor_windows).where(monitor_windows.c.id == window_id)).mappings().one()
            stored = _stored(row)
            known = set(conn.execute(select(alerts.c.rule).where(alerts.c.window_id == window_id)).scalars())
            return [_insert_alert(conn, stored, alert, delivery) for alert in fired if alert.rule not in known]


def _insert_new(conn: Connection) -> Any:
    """An INSERT that does nothing when the window's key is taken."""
    keys = ["model_name", "spec", "seq"]
    if conn.dialect.name == "postgresql":
        return postgresql.insert(monitor_windows).on_conflict_do_nothing(index_elements=keys)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(monitor_windows).on_conflict_do_nothing(index_elements=keys)
    raise NotImplementedError(conn.dialect.name)  # pragma: no cover - _engine builds SQLite and PostgreSQL only


def _insert_alert(conn: Connection, window: StoredWindow, alert: AlertRow, delivery: str) -> AlertEvent:
    values = {
        "window_id": window.id,
        "model_name": window.model_name,
        "spec": window.spec,
        "window_start": window.start_at,
        "window_end": window.end_at,
        "rule": alert.rule,
        "metric": alert.metric,
        "op": alert.op,
        "threshold": alert.threshold,
        "value": alert.value,
        "created_at": utcnow(),
        "acknowledged_at": None,
        "delivery": delivery,
        "delivery_error": None,
    }
    row = conn.execute(insert(alerts).values(**values).returning(*alerts.c)).mappings().one()
    return alert_event(row)


def _stored(row: RowMapping) -> StoredWindow:
    return StoredWindow(**{name: row[name] for name in _FIELDS})
