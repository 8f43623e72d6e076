"""Aliases of model versions, changed in transactions that concurrent writers cannot interleave.

One version per alias per model is the ``model_aliases`` primary key; a version an alias points at cannot be
deleted (foreign key). Every change runs in :func:`transact`: the model's version rows are locked first
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` holds the database's write lock), so two
writers of one model take turns, and a transient failure — SQLite busy past its timeout, a PostgreSQL
serialization failure or deadlock, two first-time inserts of one alias — is retried with backoff; only after
``ATTEMPTS`` tries does a :class:`~loopline.core.errors.ConflictError` (never "database is locked") reach the
caller.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from loopline.core.errors import ConflictError, StoreError
from loopline.store._db import writing
from loopline.store._tables import model_aliases

T = TypeVar("T")
ALIAS_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
WELL_KNOWN = ("production", "staging", "shadow", "canary")
ATTEMPTS = 12
_ALIAS = re.compile(ALIAS_PATTERN)
_TRANSIENT_PG = ("40001", "40P01", "55P03")  # serialization failure, deadlock, lock not available
_TRANSIENT_SQLITE = ("database is locked", "database table is locked", "database is busy")


def check_alias(alias: str) -> None:
    """Refuse an alias that is not ``ALIAS_PATTERN`` (lowercase, starts with a letter, at most 64 characters)."""
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias):
        shown = repr(alias)[:70]
        raise StoreError(
            f"{shown} is not an alias name.",
            hint=f"Use lowercase letters, digits, '-' and '_', starting with a letter ({', '.join(WELL_KNOWN)}, "
            "or your own such as 'champion-eu').",
        )


def transact(engine: Engine, name: str, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in a write transaction, again (with jittered backoff) after a transient failure."""
    for attempt in range(ATTEMPTS):
        try:
            with writing(engine) as conn:
                return work(conn)
        except sa_exc.OperationalError as exc:
            if not _transient(exc):
                raise
        except sa_exc.IntegrityError as exc:
            if not _alias_clash(exc):
                raise
        time.sleep(random.uniform(0, 0.02 * 2 ** min(attempt, 6)))
    raise ConflictError(
        f"could not change model {name!r}: {ATTEMPTS} tries met concurrent changes of the same model.",
        hint="Retry; `loopline models history` shows what changed meanwhile.",
    )


def _alias_clash(exc: sa_exc.IntegrityError) -> bool:
    """Two first-time inserts of one alias (the loser retries, and then moves it)."""
    text = str(exc.orig)
    return "UNIQUE constraint failed: model_aliases" in text or (
        getattr(exc.orig, "sqlstate", None) == "23505" and "model_aliases_pkey" in text
    )


def _transient(exc: sa_exc.OperationalError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    return code in _TRANSIENT_PG or any(text in str(exc.orig).lower() for text in _TRANSIENT_SQLITE)


def alias_map(conn: Connection, name: str) -> dict[str, int]:
    """alias -> version of ``name``."""
    stmt = select(model_aliases.c.alias, model_aliases.c.version).where(model_aliases.c.name == name)
    return {alias: version for alias, version in conn.execute(stmt)}


def aliases_by_version(conn: Connection, names: list[str] | None) -> dict[tuple[str, int], tuple[str, ...]]:
    """(name, version) -> its aliases, sorted (of ``names``, or of every model)."""
    stmt = select(model_aliases.c.name, model_aliases.c.version, model_aliases.c.alias)
    if names is not None:
        stmt = stmt.where(model_aliases.c.name.in_(names))
    found: dict[tuple[str, int], list[str]] = {}
    for name, version, alias in conn.execute(stmt.order_by(model_aliases.c.alias)):
        found.setdefault((name, version), []).append(alias)
    return {key: tuple(values) for key, values in found.items()}


def point(conn: Connection, name: str, alias: str, version: int, *, at: datetime, actor: str) -> None:
    """Make ``alias`` of ``name`` point at ``version`` (set or moved)."""
    where = (model_aliases.c.name == name, model_aliases.c.alias == alias)
    moved = conn.execute(update(model_aliases).where(*where).values(version=version, set_at=at, set_by=actor))
    if moved.rowcount == 0:
        conn.execute(insert(model_aliases).values(name=name, alias=alias, version=version, set_at=at, set_by=actor))


def drop(conn: Connection, name: str, alias: str) -> None:
    """Remove ``alias`` of ``name``."""
    conn.execute(delete(model_aliases).where(model_aliases.c.name == name, model_aliases.c.alias == alias))


def check_expected(name: str, alias: str, current: int | None, expect: int | None) -> None:
    """Compare-and-set: refuse unless ``alias`` points at ``expect`` now (0: at nothing; None: no check)."""
    if expect is None or (current or 0) == expect:
        return
    now = f"version {current}" if current else "no version"
    wanted = f"version {expect}" if expect else "no version"
    raise ConflictError(
        f"alias {alias!r} of model {name!r} points at {now}, not {wanted}: another change came first.",
        hint=f"Check `loopline models history {name}` and retry with the current version.",
    )
