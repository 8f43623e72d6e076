"""The model repository's audit trail: one ``model_events`` row per transition, with who, when, from → to and why.

Actions: ``promote`` and ``rollback`` (moves of the ``production`` alias), ``alias`` (another alias set or moved),
``unalias`` (an alias removed), ``archive`` (a version retired) and ``gc`` (an archived version deleted, with the
artifacts removed with it in ``details``). Rows are only ever added, in the transaction of the change itself.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection, RowMapping

from loopline.store._tables import model_events

ACTIONS = ("promote", "rollback", "alias", "unalias", "archive", "gc")
PRODUCTION = "production"


@dataclass(frozen=True)
class ModelEvent:
    """One transition of a model. ``from_version``/``to_version``: where ``alias`` pointed before and after
    (``archive``/``gc``: the version, then None); ``actor``: the token's name (``token:NAME``) for a change made
    over HTTP, else the OS user (None for events recorded before actors were kept)."""

    id: int
    name: str
    action: str
    alias: str | None
    from_version: int | None
    to_version: int | None
    actor: str | None
    reason: str
    at: datetime
    details: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``at`` in ISO 8601)."""
        return {
            "id": self.id,
            "name": self.name,
            "action": self.action,
            "alias": self.alias,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "actor": self.actor,
            "reason": self.reason,
            "at": self.at.isoformat(),
            "details": self.details,
        }

    @classmethod
    def from_row(cls, row: RowMapping) -> ModelEvent:
        """The record of a ``model_events`` row."""
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


def os_actor() -> str:
    """Who runs this process: the OS user name, else ``uid:N`` (a container without a passwd entry)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def record(
    conn: Connection,
    name: str,
    action: str,
    *,
    at: datetime,
    actor: str | None,
    reason: str,
    alias: str | None = None,
    from_version: int | None = None,
    to_version: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add one event in the caller's transaction (``actor`` None: the OS user)."""
    conn.execute(
        insert(model_events).values(
            name=name,
            action=action,
            alias=alias,
            from_version=from_version,
            to_version=to_version,
            actor=actor or os_actor(),
            reason=reason,
            at=at,
            details=details,
        )
    )
