"""Alert events: one row per alert rule a closed monitoring window broke, until someone acknowledges it.

Rows are written by :meth:`loopline.store.WindowRepository.close`, in the transaction that stores their window,
so a window's alerts exist exactly once. ``delivery`` says what became of the webhook POST: ``none`` (no webhook
configured), ``pending``, ``sent`` or ``failed`` (``delivery_error`` says why).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, func, select, update
from sqlalchemy.engine import RowMapping

from loopline.core.errors import NotFoundError
from loopline.store._audit import os_actor
from loopline.store._db import check_choice, reading, utcnow, writing
from loopline.store._tables import alerts

DELIVERIES = ("none", "pending", "sent", "failed")


@dataclass(frozen=True)
class AlertEvent:
    """One fired alert: its window, the rule in words, the figure's value and the threshold it crossed."""

    id: int
    window_id: int
    model_name: str
    spec: str
    window_start: datetime
    window_end: datetime
    rule: str
    metric: str
    op: str
    threshold: float
    value: float
    created_at: datetime
    acknowledged_at: datetime | None
    delivery: str
    delivery_error: str | None
    acknowledged_by: str | None = None
    """Who acknowledged it: the OS user (or ``LOOPLINE_ACTOR``) from the CLI, ``ui:token:NAME`` from the dashboard."""

    @property
    def acknowledged(self) -> bool:
        """Whether someone acknowledged it."""
        return self.acknowledged_at is not None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (ISO times; ``acknowledged`` besides ``acknowledged_at``), as the CLI and the dashboard
        show it."""

        def iso(moment: datetime | None) -> str | None:
            return None if moment is None else moment.isoformat()

        return {
            "id": self.id,
            "model": self.model_name,
            "spec": self.spec,
            "window_start": iso(self.window_start),
            "window_end": iso(self.window_end),
            "rule": self.rule,
            "metric": self.metric,
            "op": self.op,
            "threshold": self.threshold,
            "value": self.value,
            "created_at": iso(self.created_at),
            "acknowledged_at": iso(self.acknowledged_at),
            "acknowledged": self.acknowledged,
            "acknowledged_by": self.acknowledged_by,
            "delivery": self.delivery,
            "delivery_error": self.delivery_error,
        }


_FIELDS = tuple(AlertEvent.__dataclass_fields__)


class AlertRepository:
    """List, acknowledge and record the delivery of alert events; safe across threads and processes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def list(
        self,
        model_name: str | None = None,
        *,
        unacknowledged: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> builtins.list[AlertEvent]:
        """Alerts, newest first; only ``model_name``'s, only the unacknowledged ones when asked; ``limit`` of them
        after the newest ``offset``."""
        stmt = _filtered(select(alerts), model_name, unacknowledged).order_by(alerts.c.id.desc())
        if limit is not None:
            stmt = stmt.limit(limit)
        if offset:
            stmt = stmt.offset(offset)
        with reading(self.engine) as conn:
            return [alert_event(row) for row in conn.execute(stmt).mappings()]

    def count(self, model_name: str | None = None, *, unacknowledged: bool = False) -> int:
        """How many alerts :meth:`list` would list without a limit."""
        stmt = _filtered(select(func.count()).select_from(alerts), model_name, unacknowledged)
        with reading(self.engine) as conn:
            return int(conn.execute(stmt).scalar_one())

    def get(self, alert_id: int) -> AlertEvent:
        """The alert ``alert_id``; NotFoundError naming the list command when there is none."""
        with reading(self.engine) as conn:
            row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no alert {alert_id}.", hint="List them with `loopline alerts`.")
        return alert_event(row)

    def acknowledge(self, alert_id: int, *, actor: str | None = None) -> AlertEvent:
        """Mark ``alert_id`` acknowledged now by ``actor`` (default: the OS user); an alert acknowledged before keeps
        its first time and acknowledger."""
        with writing(self.engine) as conn:
            conn.execute(
                update(alerts)
                .where(alerts.c.id == alert_id, alerts.c.acknowledged_at.is_(None))
                .values(acknowledged_at=utcnow(), acknowledged_by=actor or os_actor())
            )
        return self.get(alert_id)

    def record_delivery(self, alert_id: int, delivery: str, error: str | None = None) -> None:
        """What became of the webhook POST of ``alert_id``: one of :data:`DELIVERIES`, and why it failed."""
        check_choice("delivery", delivery, DELIVERIES)
        with writing(self.engine) as conn:
            conn.execute(update(alerts).where(alerts.c.id == alert_id).values(delivery=delivery, delivery_error=error))


def _filtered(stmt: Select[Any], model_name: str | None, unacknowledged: bool) -> Select[Any]:
    if model_name is not None:
        stmt = stmt.where(alerts.c.model_name == model_name)
    if unacknowledged:
        stmt = stmt.where(alerts.c.acknowledged_at.is_(None))
    return stmt


def alert_event(row: RowMapping) -> AlertEvent:
    """The record of an ``alerts`` row."""
    return AlertEvent(**{name: row[name] for name in _FIELDS})
