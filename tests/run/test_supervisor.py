"""The sources supervisor against real brokers: a broken source fails alone (with its reason, never in a tight
loop), a child killed with SIGKILL is restarted with backoff and nothing is lost or ingested twice, status shows
it all from another process, and stop() ends every child cleanly with its checkpoint committed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
import redis
from tests.ingest._servers import PrivateServer, mosquitto

from loopline.core.errors import ConfigError, LooplineError
from loopline.core.pipeline import Pipeline
from loopline.core.yamlfile import pipeline_from_dict
from loopline.run import RestartPolicy, SourceStatus, Supervisor, continuous_sources, sources_status
from loopline.run._source_status import STALE_S, SupervisedState, read_states, status_file, write_states
from loopline.run._supervisor import _Child
from loopline.store import Store

FAST = RestartPolicy(initial_s=0.2, max_s=30.0, jitter=0.25, healthy_s=60.0)
FILE = {"type": "file", "path": "x"}
REDIS = {"type": "ingest", "source": {"type": "redis", "stream": "llsup-unused", "schema": {"k": "int"}}}
BAD_CSV = 'a,b\n1,"never closed\n2,3\n'


def pipeline(steps: dict[str, dict[str, Any]]) -> Pipeline:
    return pipeline_from_dict({"name": "feeds", "steps": steps})


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def by_name(statuses: list[SourceStatus]) -> dict[str, SourceStatus]:
    return {s.source: s for s in statuses}


@pytest.fixture
def stores(tmp_path: Path) -> dict[str, Any]:
    return {"store_url": f"sqlite:///{tmp_path / 'loopline.db'}", "artifacts": tmp_path / "artifacts"}


@pytest.fixture
def any_stores(store_url: str, tmp_path: Path) -> dict[str, Any]:
    """A store on SQLite, then on PostgreSQL (the children reach it by the same URL)."""
    return {"store_url": store_url, "artifacts": tmp_path / "artifacts"}


@pytest.fixture
def supervisors() -> Iterator[list[Supervisor]]:
    """Supervisors a test started: stopped (bounded) whatever happens, so no child outlives the test."""
    started: list[Supervisor] = []
    yield started
    for supervisor in started:
        supervisor.stop(timeout=20)


# -- which sources, and the restart policy -----------------------------------------------------------
def test_brokers_are_continuous_by_default_and_files_and_databases_only_with_follow() -> None:
    found = continuous_sources(
        pipeline(
            {
                "stream": {"type": "ingest", "source": {"type": "redis", "stream": "s", "schema": {"k": "int"}}},
                "files": {
                    "type": "ingest",
                    "follow": True,
                    "dataset": "landed",
                    "source": {"type": "file", "path": "x"},
                },
                "once": {"type": "ingest", "source": FILE},
                "paused": {
                    "type": "ingest",
                    "follow": False,
                    "source": {"type": "nats", "stream": "s", "durable": "d", "schema": {"k": "int"}},
                },
            }
        )
    )
    assert [(s.step, s.dataset, s.type) for s in found] == [("stream", "stream", "redis"), ("files", "landed", "file")]


def test_a_pipeline_without_a_continuous_source_is_refused_with_the_fix(tmp_path: Path) -> None:
    plain = pipeline({"once": {"type": "ingest", "source": {"type": "file", "path": "x"}}})
    with pytest.raises(ConfigError, match=r"'feeds' has no continuous source.*follow: true"):
        Supervisor(plain, home=tmp_path).start()


def test_backoff_doubles_up_to_its_bound_with_jitter_and_a_permanent_error_waits_the_longest() -> None:
    policy = RestartPolicy(initial_s=1.0, max_s=8.0, jitter=0.5)
    for failures, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 8.0), (500, 8.0)]:
        delays = [policy.delay(failures) for _ in range(200)]
        assert all(base * 0.5 <= d <= base for d in delays)
        assert len(set(delays)) > 1  # jitter: restarts of many sources do not line up
    assert policy.delay(1, permanent=True) == 8.0


def test_a_stale_or_unreadable_status_file_means_no_supervisor_runs(tmp_path: Path) -> None:
    path = status_file(tmp_path, "my pipeline/../x")
    assert path.parent == tmp_path / "sources"  # the name cannot climb out of the folder
    assert read_states(path) == {}
    write_states(path, "p", {"a": SupervisedState("running", restarts=2, pid=7)})
    assert read_states(path)["a"] == SupervisedState("running", restarts=2, pid=7)
    assert read_states(path, now=datetime.now(UTC) + timedelta(seconds=STALE_S + 1)) == {}
    path.write_text("{not json")
    assert read_states(path) == {}


# -- real brokers ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_broken_source_fails_alone_and_a_killed_child_resumes_exactly_once(
    tmp_path: Path, any_stores: dict[str, Any], supervisors: list[Supervisor]
) -> None:
    stores = any_stores
    stream = f"llsup{uuid.uuid4().hex[:10]}"
    client = redis.Redis()
    publish_redis(client, stream, range(0, 5000))
    (tmp_path / "bad.csv").write_text(BAD_CSV)
    feeds = pipeline(
        {
            "events": {
                "type": "ingest",
                "batch_rows": 100,
                "batch_seconds": 0.2,
                "source": {"type": "redis", "stream": stream, "schema": {"k": "int"}},
            },
            "broken": {"type": "ingest", "follow": True, "source": {"type": "file", "path": str(tmp_path / "bad.csv")}},
        }
    )
    home = tmp_path / "home"
    supervisor = Supervisor(feeds, home=home, restart=FAST, **stores)
    supervisors.append(supervisor.start())
    try:
        wait_for("the first commit", lambda: by_name(supervisor.status())["events"].rows > 0)
        wait_for("the broker's backlog", lambda: (by_name(supervisor.status())["events"].backlog or 0) > 0)
        first = by_name(supervisor.status())["events"]
        assert first.pid is not None and first.backlog is not None and first.backlog <= 5000 - 100
        os.kill(first.pid, signal.SIGKILL)  # mid-stream: 5000 rows come in batches of 100
        wait_for("the death to be seen", lambda: by_name(supervisor.status())["events"].pid != first.pid)
        assert 0 < by_name(supervisor.status())["events"].rows < 5000
        publish_redis(client, stream, range(5000, 6000))
        wait_for("the restart", lambda: by_name(supervisor.status())["events"].restarts == 1)
        wait_for("every message", lambda: by_name(supervisor.status())["events"].rows == 6000)
        wait_for("an empty backlog", lambda: by_name(supervisor.status())["events"].backlog == 0, timeout=15)

        status = by_name(supervisor.status())
        assert status["events"].state == "running" and status["events"].pid not in (None, first.pid)
        assert status["events"].last_error == "killed by SIGKILL"
        assert status["events"].rate == pytest.approx(6000 / 60)
        assert status["events"].lag_s is not None and status["events"].lag_s < 60
        broken = status["broken"]  # failed for good: reported with its reason, not restarted meanwhile
        assert (broken.state, broken.restarts, broken.rows) == ("failed", 0, 0)
        assert broken.last_error is not None and "line 2" in broken.last_error and "closing quote" in broken.last_error
        assert broken.retry_in_s is not None and 0 < broken.retry_in_s <= FAST.max_s
        assert broken.backlog is None  # a file cannot tell

        with Store.open(stores["store_url"], stores["artifacts"]) as other:  # another process's view
            seen = by_name(sources_status(other, feeds, home))
            assert (seen["events"].state, seen["events"].restarts, seen["events"].rows) == ("running", 1, 6000)
            assert seen["broken"].state == "failed" and seen["broken"].last_error == broken.last_error
            keys = other.datasets.read("events")["k"].to_list()
        assert len(keys) == 6000 and set(keys) == set(range(6000))  # nothing lost, nothing twice

        publish_redis(client, stream, range(6000, 6500))
        assert supervisor.stop(timeout=20)  # every child stopped by itself, its batch committed and acknowledged
        after = by_name(supervisor_status(stores, feeds, home))
        assert {s.state for s in after.values()} == {"stopped"}
        assert client.xpending(stream, "loopline")["pending"] == 0  # nothing committed is left unacknowledged
        assert client.xinfo_groups(stream)[0]["lag"] == 6500 - after["events"].rows  # the rest waits, unread
    finally:
        client.delete(stream)


@pytest.mark.slow
def test_a_refused_mqtt_subscription_leaves_a_nats_source_ingesting_through_a_kill(
    tmp_path: Path, stores: dict[str, Any], supervisors: list[Supervisor]
) -> None:
    folder = tmp_path / "acl-broker"
    folder.mkdir()
    broker: PrivateServer = mosquitto(folder, deny_subscribe=["denied/#"])
    broker.start()
    stream = f"LLSUP{uuid.uuid4().hex[:10]}"
    asyncio.run(publish_nats(stream, range(0, 3000), create=True))
    feeds = pipeline(
        {
            "jets": {
                "type": "ingest",
                "batch_rows": 100,
                "batch_seconds": 0.2,
                "source": {"type": "nats", "stream": stream, "durable": "ll", "schema": {"k": "int"}, "ack_wait_s": 2},
            },
            "refused": {
                "type": "ingest",
                "source": {
                    "type": "mqtt",
                    "url": f"mqtt://127.0.0.1:{broker.port}",
                    "topics": ["denied/#"],
                    "client_id": "ll-refused",
                    "schema": {"k": "int"},
                    "state_dir": str(tmp_path / "mqtt-state"),
                },
            },
        }
    )
    policy = RestartPolicy(initial_s=0.2, max_s=3.0, jitter=0.0, healthy_s=60.0)
    supervisor = Supervisor(feeds, home=tmp_path / "home", restart=policy, **stores)
    supervisors.append(supervisor.start())
    started = time.monotonic()
    try:
        wait_for("the first commit", lambda: by_name(supervisor.status())["jets"].rows > 0)
        os.kill(by_name(supervisor.status())["jets"].pid or 0, signal.SIGKILL)
        asyncio.run(publish_nats(stream, range(3000, 4000)))
        wait_for("every message", lambda: by_name(supervisor.status())["jets"].rows == 4000, timeout=90)
        wait_for("an empty backlog", lambda: by_name(supervisor.status())["jets"].backlog == 0, timeout=15)
        status = by_name(supervisor.status())
        assert status["jets"].restarts == 1 and status["jets"].state == "running"
        # failed, except while a retry runs: each retry fails again with the same reason
        wait_for("the refusal", lambda: by_name(supervisor.status())["refused"].state == "failed", timeout=10)
        refused = by_name(supervisor.status())["refused"]
        assert "refused the subscription to 'denied/#'" in (refused.last_error or "")
        # retried only every max_s (3 s), never in a tight loop
        assert refused.restarts <= (time.monotonic() - started) / policy.max_s + 1
        with Store.open(stores["store_url"], stores["artifacts"]) as other:
            keys = other.datasets.read("jets")["k"].to_list()
        assert len(keys) == 4000 and set(keys) == set(range(4000))
    finally:
        assert supervisor.stop(timeout=20)
        asyncio.run(delete_nats(stream))
        broker.stop()


def supervisor_status(stores: dict[str, Any], feeds: Pipeline, home: Path) -> list[SourceStatus]:
    with Store.open(stores["store_url"], stores["artifacts"]) as store:
        return sources_status(store, feeds, home)


def publish_redis(client: redis.Redis, stream: str, keys: range) -> None:
    pipe = client.pipeline()
    for k in keys:
        pipe.xadd(stream, {"data": json.dumps({"k": k})})
    pipe.execute()


async def publish_nats(stream: str, keys: range, *, create: bool = False) -> None:
    nc = await nats.connect("nats://127.0.0.1:4222")
    js = nc.jetstream()
    if create:
        await js.add_stream(name=stream, subjects=[f"{stream}.>"])
    for k in keys:
        await js.publish(f"{stream}.in", json.dumps({"k": k}).encode())
    await nc.close()


async def delete_nats(stream: str) -> None:
    nc = await nats.connect("nats://127.0.0.1:4222")
    await nc.jetstream().delete_stream(stream)
    await nc.close()


def test_consecutive_deaths_back_off_further_and_a_healthy_run_starts_over(tmp_path: Path) -> None:
    policy = RestartPolicy(initial_s=1.0, max_s=8.0, jitter=0.0, healthy_s=30.0)
    supervisor = Supervisor(pipeline({"s": REDIS}), restart=policy)
    child = _Child(continuous_sources(pipeline({"s": REDIS}))[0], tmp_path)
    waits = []
    for now in (0.0, 1.0, 3.0, 7.0, 15.0, 23.0):  # each death soon after its start
        child.started = now - 0.5
        supervisor._ended(child, -9, now)
        waits.append(child.next_start - now)
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert (child.state, child.last_error) == ("restarting", "killed by SIGKILL")
    child.started = 100.0
    supervisor._ended(child, 1, 140.0)  # it ran longer than healthy_s: a first failure again
    assert (child.next_start - 140.0, child.last_error) == (1.0, "exited with code 1")


def test_a_second_supervisor_of_the_same_pipeline_is_refused(
    tmp_path: Path, stores: dict[str, Any], supervisors: list[Supervisor]
) -> None:
    feeds = pipeline({"s": REDIS})
    supervisors.append(Supervisor(feeds, home=tmp_path, restart=FAST, **stores).start())
    with pytest.raises(LooplineError, match=r"supervised already \(by pid \d+\).*Stop that supervisor first"):
        Supervisor(feeds, home=tmp_path, **stores).start()
    assert supervisors[0].stop(timeout=20)
    supervisors.append(Supervisor(feeds, home=tmp_path, restart=FAST, **stores).start())  # free again once stopped
