"""Aliases of model versions, the audit trail, archiving, and migration 0010 (stage production -> alias)."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Column, Engine, MetaData, Table, delete, event, insert, inspect
from sqlalchemy import exc as sa_exc

from loopline.core.errors import ConflictError, NotFoundError, StoreError
from loopline.store import Store, open_artifacts
from loopline.store._audit import os_actor
from loopline.store._engine import create_store_engine, parse_url
from loopline.store._migrate import alembic_config
from loopline.store._tables import model_aliases, model_events, models

from .test_models import raw_row, register


def test_an_alias_points_at_one_version_and_moves(store: Store) -> None:
    for _ in range(3):
        register(store)
    store.models.set_alias("churn", "staging", 1, reason="first look")
    assert store.models.set_alias("churn", "staging", 2, reason="better").aliases == ("staging",)
    assert store.models.aliases("churn") == {"staging": 2}
    assert store.models.get("churn", 1).aliases == ()
    found = store.models.by_alias("churn", "staging")
    assert found is not None and found.version == 2 and found.stage == "candidate"
    assert store.models.resolve("churn", "staging") == 2 and store.models.resolve("churn", "nope") is None
    events = [(e.action, e.alias, e.from_version, e.to_version, e.reason) for e in store.models.history("churn")]
    assert events == [("alias", "staging", None, 1, "first look"), ("alias", "staging", 1, 2, "better")]
    store.models.set_alias("churn", "staging", 2)  # already there: no event
    assert len(store.models.history("churn")) == 2
    assert store.models.events("churn") == []  # production moves only


def test_production_is_the_production_alias(store: Store) -> None:
    register(store)
    register(store)
    promoted = store.models.set_alias("churn", "production", 1, reason="first")
    assert (promoted.stage, promoted.aliases) == ("production", ("production",))
    store.models.promote("churn", 2, reason="better")
    assert store.models.aliases("churn") == {"production": 2}
    assert [(v.version, v.stage) for v in store.models.list("churn")] == [(1, "archived"), (2, "production")]
    history = store.models.history("churn")
    assert [(e.action, e.alias, e.from_version, e.to_version) for e in history] == [
        ("promote", "production", None, 1),
        ("promote", "production", 1, 2),
    ]
    assert [e["action"] for e in store.models.events("churn")] == ["promote", "promote"]


def test_the_database_allows_one_version_per_alias(store: Store) -> None:
    register(store)
    register(store)
    store.models.promote("churn", 1)
    row = {"name": "churn", "alias": "production", "version": 2, "set_at": datetime.now(UTC), "set_by": "x"}
    with pytest.raises(sa_exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(insert(model_aliases).values(**row))
    with pytest.raises(sa_exc.IntegrityError), store.engine.begin() as conn:  # the stage column has no production
        conn.execute(insert(models).values(**raw_row(9, "production")))
    with pytest.raises(sa_exc.IntegrityError), store.engine.begin() as conn:  # an aliased version stays
        conn.execute(delete(models).where(models.c.name == "churn", models.c.version == 1))
    assert store.models.production("churn").version == 1  # type: ignore[union-attr]


def test_compare_and_set_refuses_a_stale_expectation_and_changes_nothing(store: Store) -> None:
    for _ in range(3):
        register(store)
    store.models.promote("churn", 1, expect=0)
    with pytest.raises(ConflictError, match=r"points at version 1, not version 2: another change came first"):
        store.models.promote("churn", 3, expect=2)
    with pytest.raises(ConflictError, match=r"points at no version, not version 1"):
        store.models.set_alias("churn", "canary", 3, expect=1)
    store.models.promote("churn", 2, expect=1)
    assert store.models.aliases("churn") == {"production": 2}
    assert len(store.models.history("churn")) == 2


def test_remove_an_alias_but_never_production(store: Store) -> None:
    register(store)
    store.models.promote("churn", 1)
    store.models.set_alias("churn", "shadow", 1)
    assert store.models.remove_alias("churn", "shadow", reason="done") == 1
    assert store.models.aliases("churn") == {"production": 1}
    last = store.models.history("churn")[-1]
    assert (last.action, last.alias, last.from_version, last.to_version, last.reason) == (
        "unalias",
        "shadow",
        1,
        None,
        "done",
    )
    with pytest.raises(NotFoundError, match=r"model 'churn' has no alias 'shadow'; its aliases are: production"):
        store.models.remove_alias("churn", "shadow")
    with pytest.raises(ConflictError, match=r"production alias of model 'churn' cannot be removed.*models promote"):
        store.models.remove_alias("churn", "production")


@pytest.mark.parametrize("bad", ["Prod", "1st", "", "a" * 65, "../x", "with space", "prod\x00"])
def test_bad_alias_names_are_refused_with_the_rule(store: Store, bad: str) -> None:
    register(store)
    with pytest.raises(StoreError, match=r"is not an alias name\. Use lowercase letters"):
        store.models.set_alias("churn", bad, 1)
    assert store.models.aliases("churn") == {}


def test_unknown_model_or_version(store: Store) -> None:
    register(store)
    with pytest.raises(NotFoundError, match=r"model 'churn' has no version 4"):
        store.models.set_alias("churn", "staging", 4)
    with pytest.raises(NotFoundError, match=r"model 'chrun' does not exist\. Did you mean 'churn'"):
        store.models.aliases("chrun")
    with pytest.raises(NotFoundError, match=r"model 'nope' does not exist"):
        store.models.history("nope")


def test_the_audit_trail_names_who(store: Store) -> None:
    register(store)
    store.models.promote("churn", 1)
    store.models.set_alias("churn", "staging", 1, actor="token:ci", reason="from CI")
    first, second = store.models.history("churn")
    assert first.actor == os_actor() and first.actor
    assert (second.actor, second.reason) == ("token:ci", "from CI")
    assert second.to_dict()["at"].startswith(str(second.at.year))


def test_archive_retires_a_version_unless_an_alias_points_at_it(store: Store) -> None:
    register(store)
    register(store)
    store.models.promote("churn", 2)
    store.models.set_alias("churn", "staging", 1)
    with pytest.raises(ConflictError, match=r"version 1 cannot be archived: alias staging points at it.*unalias"):
        store.models.archive("churn", 1)
    with pytest.raises(ConflictError, match=r"version 2 cannot be archived: alias production points at it"):
        store.models.archive("churn", 2)
    store.models.remove_alias("churn", "staging")
    archived = store.models.archive("churn", 1, reason="superseded")
    assert archived.stage == "archived" and archived.archived_at is not None
    store.models.archive("churn", 1)  # already archived: no second event
    assert [e.action for e in store.models.history("churn")][-1] == "archive"
    assert [e.action for e in store.models.history("churn")].count("archive") == 1


def test_rollback_follows_production_only(store: Store) -> None:
    for _ in range(3):
        register(store)
    store.models.promote("churn", 1)
    store.models.set_alias("churn", "staging", 3)
    store.models.promote("churn", 2)
    store.models.set_alias("churn", "canary", 3)
    back = store.models.rollback("churn", reason="auc dropped", actor="oncall")
    assert back.version == 1 and back.stage == "production"
    last = store.models.history("churn")[-1]
    assert (last.action, last.from_version, last.to_version, last.actor) == ("rollback", 2, 1, "oncall")
    assert store.models.aliases("churn") == {"canary": 3, "production": 1, "staging": 3}


def _old_models() -> Table:
    """``models`` as migration 0008 left it."""
    columns = [Column(c.name, c.type, primary_key=c.primary_key) for c in models.c if c.name != "archived_at"]
    return Table("models", MetaData(), *columns)


def _old_events() -> Table:
    keep = ("id", "name", "action", "from_version", "to_version", "reason", "at")
    return Table("model_events", MetaData(), *[Column(c, model_events.c[c].type, primary_key=c == "id") for c in keep])


def test_migration_0010_turns_the_production_stage_into_the_alias_and_back(store_url: str, tmp_path: Path) -> None:
    engine = create_store_engine(parse_url(store_url))
    config = alembic_config()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    digest = open_artifacts(tmp_path / "artifacts").put_bytes(b"bundle")
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0008")
        for version, stage in ((1, "archived"), (2, "production"), (3, "candidate")):
            conn.execute(
                insert(_old_models()).values(**{**raw_row(version, stage), "created_at": at, "bundle_digest": digest})
            )
        for before, after in ((None, 1), (1, 2)):
            conn.execute(
                insert(_old_events()).values(
                    name="churn", action="promote", from_version=before, to_version=after, reason="", at=at
                )
            )
    engine.dispose()
    with Store.open(store_url, tmp_path / "artifacts") as store:
        assert [(v.version, v.stage, v.aliases) for v in store.models.list("churn")] == [
            (1, "archived", ()),
            (2, "production", ("production",)),
            (3, "candidate", ()),
        ]
        assert store.models.get("churn", 1).archived_at == at
        assert [(e.alias, e.actor) for e in store.models.history("churn")] == [("production", None)] * 2
        assert store.models.rollback("churn").version == 1  # the migrated trail still rolls back
        store.models.promote("churn", 2)
        store.models.set_alias("churn", "staging", 3)
        with store.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0008")
            assert "model_aliases" not in inspect(conn).get_table_names()
            stages = conn.execute(_old_models().select().order_by(models.c.version)).mappings().all()
            assert [row["stage"] for row in stages] == ["archived", "production", "candidate"]
            command.upgrade(config, "head")
        assert store.models.aliases("churn") == {"production": 2}


def _impatient(url: str) -> Engine:
    """An engine on ``url`` whose SQLite connections wait 10 ms for a lock (not 30 s) before "database is locked"."""
    engine = create_store_engine(parse_url(url))
    event.listen(engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA busy_timeout = 10"))
    return engine


def _hold_write_lock(path: str, seconds: float, release: threading.Event) -> threading.Thread:
    """Another writer holding SQLite's write lock for ``seconds`` (or until ``release`` is set)."""
    locked = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        release.wait(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    locked.wait(5)
    return thread


def test_a_busy_sqlite_database_is_retried_and_never_reaches_the_caller_as_locked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    with Store.open(url, tmp_path / "artifacts") as store:
        register(store)
        register(store)
    engine = _impatient(url)
    busy = Store(engine, parse_url(url), open_artifacts(tmp_path / "artifacts"))
    holder = _hold_write_lock(str(tmp_path / "busy.db"), 0.4, threading.Event())
    assert busy.models.promote("churn", 1).stage == "production"  # waited out the lock by retrying
    holder.join()
    release = threading.Event()
    holder = _hold_write_lock(str(tmp_path / "busy.db"), 60, release)
    try:
        with pytest.raises(ConflictError, match=r"could not change model 'churn': 12 tries.*Retry") as caught:
            busy.models.set_alias("churn", "staging", 2)
        assert "locked" not in str(caught.value)
    finally:
        release.set()
        holder.join()
    assert busy.models.aliases("churn") == {"production": 1}
    engine.dispose()
