from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Column, MetaData, Table, insert, inspect, update

from loopline.core.errors import ConflictError, DiskFullError, NotFoundError, StoreError
from loopline.store import StepRecord, Store
from loopline.store._engine import create_store_engine, parse_url
from loopline.store._migrate import alembic_config
from loopline.store._owner import STALE_AFTER_S
from loopline.store._tables import runs

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


OUT = {"out": {"digest": "d" * 64, "kind": "table"}}


def step(
    name: str,
    *,
    status: str = "succeeded",
    key: str | None = "k1",
    offset: int = 0,
    outputs: dict[str, dict[str, str]] = OUT,
    error: str | None = None,
    attempt: int = 1,
) -> StepRecord:
    return StepRecord(
        step=name,
        type="python",
        status=status,
        cache_key=key,
        started_at=T0 + timedelta(seconds=offset),
        finished_at=T0 + timedelta(seconds=offset + 1),
        duration_s=1.0,
        config={"n": 1},
        outputs=dict(outputs),
        error=error,
        attempt=attempt,
    )


def test_create_run_and_get(store: Store) -> None:
    run_id = store.runs.create_run("flights", "h" * 64, {"steps": []}, {"seed": 1})
    run = store.runs.get(run_id)
    assert len(run_id) == 32
    assert (run.pipeline, run.status, run.spec, run.params) == ("flights", "running", {"steps": []}, {"seed": 1})
    assert run.started_at.tzinfo is not None and run.started_at.utcoffset() == timedelta(0)
    assert run.finished_at is None and run.steps == []


def test_set_status_stamps_finished_at_and_error(store: Store) -> None:
    run_id = store.runs.create_run("p", "h", {}, {})
    store.runs.set_status(run_id, "failed", error="boom")
    run = store.runs.get(run_id)
    assert (run.status, run.error) == ("failed", "boom")
    assert run.finished_at is not None and run.finished_at >= run.started_at


def test_set_status_rejects_unknown_status(store: Store) -> None:
    run_id = store.runs.create_run("p", "h", {}, {})
    with pytest.raises(StoreError, match="unknown run status 'done'.*Use one of: failed, running, succeeded"):
        store.runs.set_status(run_id, "done")


def test_record_steps_round_trip_and_upsert(store: Store) -> None:
    run_id = store.runs.create_run("p", "h", {}, {})
    store.runs.record_steps(run_id, [step("load"), step("train", status="failed", key=None, offset=5, error="x")])
    store.runs.record_steps(run_id, [step("train", offset=5, attempt=2)])
    steps = store.runs.get(run_id).steps
    assert [s.step for s in steps] == ["load", "train"]
    assert steps[0] == step("load")
    assert (steps[1].status, steps[1].attempt, steps[1].error) == ("succeeded", 2, None)
    assert steps[1].started_at == T0 + timedelta(seconds=5)


def test_find_cached_returns_latest_successful_outputs(store: Store) -> None:
    old, new, failed = ({"out": {"digest": c * 64, "kind": "json"}} for c in "abc")
    first = store.runs.create_run("p", "h", {}, {})
    second = store.runs.create_run("p", "h", {}, {})
    store.runs.record_steps(first, [step("s", outputs=old)])
    store.runs.record_steps(second, [step("s", status="cached", offset=10, outputs=new)])
    store.runs.record_steps(second, [step("t", status="failed", offset=20, outputs=failed)])
    assert store.runs.find_cached("k1") == new
    assert store.runs.find_cached("unknown") is None


def test_get_unknown_run_says_how_to_list_runs(store: Store) -> None:
    with pytest.raises(NotFoundError, match=r"run 'nope' does not exist\. List runs with `loopline runs list`\."):
        store.runs.get("nope")


def test_unknown_run_cannot_get_steps_or_status(store: Store) -> None:
    with pytest.raises(NotFoundError, match="run 'nope' does not exist"):
        store.runs.record_steps("nope", [step("s")])
    with pytest.raises(NotFoundError, match="run 'nope' does not exist"):
        store.runs.set_status("nope", "succeeded")


def test_list_is_newest_first_with_filter_and_limit(store: Store) -> None:
    ids = [store.runs.create_run("a" if i % 2 else "b", "h", {}, {}) for i in range(4)]
    assert [r.run_id for r in store.runs.list()] == ids[::-1]
    assert [r.run_id for r in store.runs.list(pipeline="a")] == [ids[3], ids[1]]
    assert [r.run_id for r in store.runs.list(limit=1)] == [ids[3]]


# -- owners, heartbeats, stale runs (issue 11, item 7) ----------------------------------------------


def _set_owner(store: Store, run_id: str, host: str, pid: int, heartbeat: datetime) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            update(runs).where(runs.c.run_id == run_id).values(owner_host=host, owner_pid=pid, heartbeat_at=heartbeat)
        )


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_new_run_is_owned_by_this_process_and_reads_back_running(store: Store) -> None:
    run_id = store.runs.create_run("p", "h", {}, {}, pipeline_file="/x/p.yaml")
    run = store.runs.get(run_id)
    assert (run.status, run.owner_host, run.owner_pid) == ("running", socket.gethostname(), os.getpid())
    assert run.pipeline_file == "/x/p.yaml" and run.heartbeat_at is not None
    assert f"pid {os.getpid()}" in run.owner()


def test_a_running_run_whose_process_is_gone_reads_back_stale(store: Store) -> None:
    run_id = store.runs.create_run("p", "h", {}, {})
    _set_owner(store, run_id, socket.gethostname(), _dead_pid(), datetime.now(UTC))
    assert store.runs.get(run_id).status == "stale"
    assert [r.status for r in store.runs.list()] == ["stale"]
    store.runs.set_status(run_id, "failed", "x")
    assert store.runs.get(run_id).status == "failed"  # only a running run can be stale


def test_a_run_of_another_host_is_stale_only_once_its_heartbeat_is_old(store: Store) -> None:
    run_id = store.runs.create_run("p", "h", {}, {})
    _set_owner(store, run_id, "elsewhere", 1, datetime.now(UTC) - timedelta(seconds=STALE_AFTER_S / 2))
    assert store.runs.get(run_id).status == "running"
    _set_owner(store, run_id, "elsewhere", 1, datetime.now(UTC) - timedelta(seconds=STALE_AFTER_S + 5))
    assert store.runs.get(run_id).status == "stale"


def test_claim_refuses_a_live_run_and_takes_a_stale_or_failed_one(store: Store) -> None:
    run_id = store.runs.create_run("p", "h", {"old": 1}, {})
    with pytest.raises(ConflictError, match=f"run {run_id} is still running \\(pid {os.getpid()} on .*stale"):
        store.runs.claim(run_id, "h2", {"new": 1})
    _set_owner(store, run_id, socket.gethostname(), _dead_pid(), datetime.now(UTC))
    assert store.runs.claim(run_id, "h2", {"new": 1}, "/x/p.yaml").status == "stale"
    run = store.runs.get(run_id)
    assert (run.status, run.owner_pid, run.spec, run.pipeline_hash) == ("running", os.getpid(), {"new": 1}, "h2")
    assert run.pipeline_file == "/x/p.yaml"
    store.runs.set_status(run_id, "failed", "boom")
    assert store.runs.claim(run_id, "h3", {}).error == "boom"
    assert (store.runs.get(run_id).status, store.runs.get(run_id).error) == ("running", None)


def test_a_claim_that_lost_the_race_is_refused(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = store.runs.create_run("p", "h", {}, {})
    store.runs.set_status(run_id, "failed", "boom")
    as_read = store.runs.get(run_id)
    store.runs.claim(run_id, "h", {})  # another process claims it between our read and our write
    monkeypatch.setattr(store.runs, "get", lambda _: as_read)
    with pytest.raises(ConflictError, match="claimed by another process"):
        store.runs.claim(run_id, "h", {})


def test_heartbeat_stamps_only_a_run_this_process_owns(store: Store) -> None:
    run_id = store.runs.create_run("p", "h", {}, {})
    old = datetime.now(UTC) - timedelta(seconds=30)
    _set_owner(store, run_id, socket.gethostname(), os.getpid(), old)
    assert store.runs.heartbeat(run_id) is True
    assert (heartbeat := store.runs.get(run_id).heartbeat_at) is not None and heartbeat > old
    _set_owner(store, run_id, "elsewhere", 1, old)
    assert store.runs.heartbeat(run_id) is False
    assert store.runs.get(run_id).heartbeat_at == old


def test_migration_0004_keeps_the_runs_of_a_0003_store_and_trusts_their_status(store_url: str, tmp_path: Path) -> None:
    engine = create_store_engine(parse_url(store_url))
    config = alembic_config()
    before_owners = Table("runs", MetaData(), *[Column(c.name, c.type, primary_key=c.primary_key) for c in runs.c][:9])
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0003")
        row = {"run_id": "r" * 32, "pipeline": "p", "pipeline_hash": "h", "spec": {}, "params": {}}
        conn.execute(insert(before_owners).values(**row, status="running", started_at=T0))
    engine.dispose()
    with Store.open(store_url, tmp_path / "artifacts") as store:
        old = store.runs.get("r" * 32)
        assert (old.status, old.owner_pid, old.pipeline_file) == ("running", None, None)  # no owner: trusted
        with store.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0003")
            assert "owner_pid" not in {c["name"] for c in inspect(conn).get_columns("runs")}
            command.upgrade(config, "head")
        assert store.runs.get("r" * 32).pipeline == "p"


def test_a_full_disk_under_the_sqlite_store_is_a_disk_full_error_naming_the_file(tiny_disk: Path) -> None:
    database = tiny_disk / "loopline.db"
    with Store.open(f"sqlite:///{database}", tiny_disk / "artifacts") as store:
        kept = store.runs.create_run("p", "h", {}, {})
        with pytest.raises(DiskFullError, match=f"no space left on the device holding {database} \\(free"):
            store.runs.create_run("p", "h", {"big": "x" * 3 * 2**20}, {})
        assert [r.run_id for r in store.runs.list()] == [kept]  # the failed write left nothing


def test_on_this_host_a_live_owner_with_a_late_heartbeat_is_not_stale(store: Store) -> None:
    run_id = store.runs.create_run("p", "h", {}, {})
    _set_owner(store, run_id, socket.gethostname(), os.getpid(), datetime.now(UTC) - timedelta(hours=1))
    assert store.runs.get(run_id).status == "running"  # a step holding the GIL for an hour is still running
