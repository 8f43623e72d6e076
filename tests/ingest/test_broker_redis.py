"""The redis source on the machine's Redis (and a private redis-server for restarts): groups, PEL recovery."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from loopline import DataError
from loopline.ingest._redis import RedisConfig, RedisSource
from loopline.ingest._source import Batch, Limits

from ._servers import PrivateServer, ids, redis_server
from ._servers import drain as drain_source

FAST = Limits(max_rows=1_000, max_seconds=0.3)


@pytest.fixture
def stream() -> Iterator[str]:
    name = f"ll-{uuid.uuid4().hex[:10]}"
    yield name
    redis.Redis().delete(name)


def config(stream: str, port: int = 6379, **extra: Any) -> RedisConfig:
    return RedisConfig.model_validate(
        {"url": f"redis://127.0.0.1:{port}/0", "stream": stream, "consumer": "c1", "schema": {"k": "int"}, **extra}
    )


def drain(source: RedisSource, *, ack: bool) -> list[Batch]:
    return drain_source(source, ack=ack, limits=FAST)


def test_entries_come_in_batches_with_stream_ids_and_rejects(stream: str) -> None:
    r = redis.Redis(decode_responses=True)
    added = [r.xadd(stream, {"data": json.dumps({"k": i})}) for i in range(2_500)]
    bad = [r.xadd(stream, {"data": "{x"}), r.xadd(stream, {"other": "1"})]
    batches = drain(RedisSource(config(stream)), ack=True)
    assert ids(batches) == added and max(b.rows.height for b in batches) == 1_000
    assert sorted(r.position["id"] for b in batches for r in b.rejects) == sorted(bad)
    assert batches[-1].position == {"last_id": bad[-1]}
    assert drain(RedisSource(config(stream)), ack=True) == []


def test_own_pending_entries_are_recovered_after_a_crash(stream: str) -> None:
    r = redis.Redis(decode_responses=True)
    added = [r.xadd(stream, {"data": json.dumps({"k": i})}) for i in range(300)]
    assert ids(drain(RedisSource(config(stream)), ack=False)) == added  # crash before the commit
    assert ids(drain(RedisSource(config(stream)), ack=True)) == added  # the PEL comes back first
    assert r.xpending(stream, "loopline")["pending"] == 0


def test_entries_of_a_dead_consumer_are_claimed(stream: str) -> None:
    r = redis.Redis(decode_responses=True)
    added = [r.xadd(stream, {"data": json.dumps({"k": i})}) for i in range(50)]
    assert ids(drain(RedisSource(config(stream, consumer="dead")), ack=False)) == added
    time.sleep(0.3)
    assert ids(drain(RedisSource(config(stream, consumer="alive", claim_idle_s=0.2)), ack=True)) == added


def test_a_poison_entry_ends_in_rejects(stream: str) -> None:
    redis.Redis().xadd(stream, {"data": b'{"k": 1}'})
    cfg = config(stream, max_deliveries=1, claim_idle_s=0.1)
    assert len(ids(drain(RedisSource(cfg), ack=False))) == 1
    time.sleep(0.2)
    batches = drain(RedisSource(config(stream, consumer="c2", max_deliveries=1, claim_idle_s=0.1)), ack=True)
    assert ids(batches) == [] and "poison" in batches[0].rejects[0].reason


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrivateServer]:
    srv = redis_server(tmp_path)
    srv.start()
    yield srv
    srv.stop()


def publish_reliably(port: int, stream: str, count: int, done: threading.Event) -> None:
    """XADD with explicit ids: a retry of an entry already stored is refused, so each is stored once."""
    r = redis.Redis(port=port)
    for i in range(count):
        while True:
            try:
                r.xadd(stream, {"data": json.dumps({"k": i})}, id=f"{i + 1}-0")
                break
            except redis.ResponseError:
                break  # "equal or smaller": stored before the connection broke
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(0.1)
    done.set()


@pytest.mark.slow
def test_a_server_restart_while_publishing_loses_nothing(server: PrivateServer) -> None:
    count = 3_000
    source = RedisSource(config("restart", server.port))
    stream = source.batches(None, follow=True, limits=Limits(max_rows=300, max_seconds=0.2))
    next(stream)
    done = threading.Event()
    threading.Thread(target=publish_reliably, args=(server.port, "restart", count, done)).start()
    seen: set[int] = set()
    restarted = False
    deadline = time.monotonic() + 90
    while (len(seen) < count or not done.is_set()) and time.monotonic() < deadline:
        batch = next(stream)
        seen.update(batch.rows["k"].to_list())
        source.ack(batch)
        if not restarted and len(seen) > count // 3:
            server.stop()
            time.sleep(0.5)
            server.start()
            restarted = True
    source.close()
    assert restarted and seen == set(range(count))


def test_a_key_that_is_not_a_stream_is_a_clear_error_not_a_driver_trace(stream: str) -> None:
    redis.Redis().set(stream, "a string, not a stream")
    with pytest.raises(DataError, match=r"Redis at .* refused a command on stream .*WRONGTYPE.*names a stream"):
        drain(RedisSource(config(stream)), ack=True)


def test_the_backlog_counts_entries_not_yet_delivered_or_not_yet_acknowledged(stream: str) -> None:
    r = redis.Redis()
    for i in range(30):
        r.xadd(stream, {"data": json.dumps({"k": i})})
    source = RedisSource(config(stream))
    assert source.backlog() is None  # no consumer group yet: nothing to tell
    batches = source.batches(None, limits=Limits(max_rows=10, max_seconds=0.3))
    first = next(batches)
    assert source.backlog() == 30  # 20 never delivered + 10 delivered, not acknowledged
    source.ack(first)
    assert source.backlog() == 20
    source.close()
