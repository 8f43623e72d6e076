"""The nats source on the machine's JetStream (and a private nats-server for restarts): durable, ack after commit."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from loopline import DataError
from loopline.ingest._nats import NatsConfig, NatsSource
from loopline.ingest._source import Batch, Limits

from ._servers import PrivateServer, ids, nats_server
from ._servers import drain as drain_source

FAST = Limits(max_rows=10_000, max_seconds=0.5)
URL = "nats://127.0.0.1:4222"


async def _publish(url: str, stream: str, payloads: list[bytes], create: bool) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    if create:
        await js.add_stream(name=stream, subjects=[f"{stream}.>"])
    for payload in payloads:
        await js.publish(f"{stream}.in", payload)
    await nc.close()


async def _delete(url: str, stream: str) -> None:
    nc = await nats.connect(url)
    await nc.jetstream().delete_stream(stream)
    await nc.close()


@pytest.fixture
def stream() -> Iterator[str]:
    name = f"LL{uuid.uuid4().hex[:10]}"
    asyncio.run(_publish(URL, name, [], create=True))
    yield name
    asyncio.run(_delete(URL, name))


def config(stream: str, url: str = URL, **extra: Any) -> NatsConfig:
    return NatsConfig.model_validate(
        {"url": url, "stream": stream, "durable": "ll", "schema": {"k": "int", "s": "string"}, **extra}
    )


def drain(source: NatsSource, *, ack: bool, limits: Limits = FAST) -> list[Batch]:
    return drain_source(source, ack=ack, limits=limits)


def test_stream_sequences_are_ids_and_positions_and_bad_payloads_rejects(stream: str) -> None:
    payloads = [json.dumps({"k": i, "s": str(i)}).encode() for i in range(500)]
    asyncio.run(_publish(URL, stream, [*payloads, b"{oops", b'{"k":"x"}'], create=False))
    batches = drain(NatsSource(config(stream)), ack=True)
    assert ids(batches) == [str(i) for i in range(1, 501)]
    assert [r.position["stream_seq"] for b in batches for r in b.rejects] == [501, 502]
    assert batches[-1].position == {"stream_seq": 502}
    assert drain(NatsSource(config(stream)), ack=True) == []  # durable consumer: acknowledged means done


REDELIVERY_WITHIN = 10.0
"""Seconds the tests below wait for a redelivery after an ``ack_wait_s`` of 1 s: ample on a loaded machine, yet
well under the 30 s JetStream default (and the 60 s loopline default) a lost ``ack_wait_s`` would fall back to."""


def redelivered(cfg: NatsConfig, count: int, *, ack: bool, limits: Limits = FAST) -> list[Batch]:
    """Drain fresh sources on ``cfg`` until ``count`` messages or rejects came back or REDELIVERY_WITHIN passed."""
    batches: list[Batch] = []
    deadline = time.monotonic() + REDELIVERY_WITHIN
    while sum(len(b.ids or []) + len(b.rejects) for b in batches) < count and time.monotonic() < deadline:
        batches += drain(NatsSource(cfg), ack=ack, limits=limits)
    return batches


def test_unacknowledged_messages_are_redelivered_after_ack_wait(stream: str) -> None:
    asyncio.run(_publish(URL, stream, [json.dumps({"k": i}).encode() for i in range(100)], create=False))
    first = ids(drain(NatsSource(config(stream, ack_wait_s=1)), ack=False))
    again = ids(redelivered(config(stream, ack_wait_s=1), 100, ack=True))
    assert first == again == [str(i) for i in range(1, 101)]


def test_a_poison_message_ends_in_rejects(stream: str) -> None:
    asyncio.run(_publish(URL, stream, [b'{"k": 1}'], create=False))
    cfg = config(stream, ack_wait_s=1.0, max_deliveries=2)
    quick = Limits(max_seconds=0.3)
    for _ in range(2):  # delivered, never acknowledged (the consumer "crashes" each time)
        assert ids(redelivered(cfg, 1, ack=False, limits=quick)) == ["1"]
    batches = [b for b in redelivered(cfg, 1, ack=True, limits=quick) if b.ids or b.rejects]
    assert ids(batches) == [] and batches[0].rejects[0].reason.startswith("poison: delivered")
    assert "(max_deliveries=2)" in batches[0].rejects[0].reason


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrivateServer]:
    srv = nats_server(tmp_path)
    srv.start()
    yield srv
    srv.stop()


def publish_reliably(url: str, stream: str, count: int, done: threading.Event) -> None:
    """Each message retried until stored; Nats-Msg-Id makes a retried publish idempotent."""

    async def main() -> None:
        nc = await nats.connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
        js = nc.jetstream()
        for i in range(count):
            while True:
                try:
                    await js.publish(f"{stream}.in", json.dumps({"k": i}).encode(), headers={"Nats-Msg-Id": str(i)})
                    break
                except Exception:
                    await asyncio.sleep(0.1)
        await nc.close()

    asyncio.run(main())
    done.set()


@pytest.mark.slow
def test_a_server_restart_while_publishing_loses_nothing(server: PrivateServer) -> None:
    url, name, count = f"nats://127.0.0.1:{server.port}", "RESTART", 2_000
    asyncio.run(_publish(url, name, [], create=True))
    source = NatsSource(config(name, url))
    stream = source.batches(None, follow=True, limits=Limits(max_rows=300, max_seconds=0.2))
    done = threading.Event()
    threading.Thread(target=publish_reliably, args=(url, name, count, done)).start()
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


# -- errors in the client's event-loop thread end the ingest -------------------------------------------

USERS = """\
authorization {
  users = [
    {user: admin, password: admin}
    {user: reader, password: reader, permissions: {publish: {deny: ["$JS.API.CONSUMER.MSG.NEXT.>"]}}}
  ]
}
"""


def test_a_fetch_the_server_forbids_ends_the_ingest_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv = nats_server(tmp_path, config=USERS)  # the reader may bind the consumer, not pull from it
    srv.start()
    try:
        admin = f"nats://admin:admin@127.0.0.1:{srv.port}"
        asyncio.run(_publish(admin, "GUARDED", [b'{"k": 1}'], create=True))
        monkeypatch.setenv("LL_TEST_NATS_PASSWORD", "reader")
        url = f"nats://127.0.0.1:{srv.port}"
        source = NatsSource(config("GUARDED", url, user="reader", password_env="LL_TEST_NATS_PASSWORD"))
        started = time.monotonic()
        with pytest.raises(DataError, match="nats-py: the server .* refused: .*permissions violation"):
            for _ in source.batches(None, follow=True, limits=FAST):
                assert time.monotonic() - started < 15  # not forever
        source.close()
    finally:
        srv.stop()


def test_an_error_in_the_event_loop_thread_ends_the_ingest(stream: str) -> None:
    source = NatsSource(config(stream))
    batches = source.batches(None, follow=True, limits=FAST)
    assert next(batches).rows.height == 0
    assert source._loop is not None

    def broken() -> None:
        raise KeyError("state the client lost")

    source._loop.call_soon_threadsafe(broken)  # a library callback failing in the loop thread
    started = time.monotonic()
    with pytest.raises(DataError, match="nats-py: .*KeyError: 'state the client lost'"):
        for _ in batches:
            assert time.monotonic() - started < 10
    source.close()


def test_the_watchdog_ends_the_ingest_when_the_event_loop_thread_dies(stream: str) -> None:
    source = NatsSource(config(stream))
    batches = source.batches(None, follow=True, limits=FAST)
    assert next(batches).rows.height == 0
    assert source._loop is not None
    source._loop.call_soon_threadsafe(source._loop.stop)  # the thread ends; a pending fetch never completes
    started = time.monotonic()
    with pytest.raises(DataError, match="nats-py: its thread 'loopline-nats' stopped unexpectedly"):
        for _ in batches:
            assert time.monotonic() - started < 10
    source.close()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("subject", "orders..eu", "empty token"),
        ("subject", "orders.>.eu", "'>' must be a whole token and the last one"),
        ("subject", "orders.e*", "'\\*' must be a whole token"),
        ("subject", "orders eu", "whitespace"),
        ("stream", "ORDERS.EU", "cannot hold '.'"),
        ("durable", "a/b", "consumer name 'a/b' holds '/'"),
    ],
)
def test_invalid_subjects_and_names_are_refused_at_load(key: str, value: str, message: str) -> None:
    spec = {"stream": "ORDERS", "durable": "ll", "schema": {"k": "int"}, key: value}
    with pytest.raises(ValueError, match=message):
        NatsConfig.model_validate(spec)


def test_the_backlog_counts_messages_not_yet_delivered_or_not_yet_acknowledged(stream: str) -> None:
    asyncio.run(_publish(URL, stream, [json.dumps({"k": i, "s": "x"}).encode() for i in range(30)], create=False))
    source = NatsSource(config(stream))
    assert source.backlog() is None  # not bound to its consumer yet
    batches = source.batches(None, limits=Limits(max_rows=10, max_seconds=0.5))
    first = next(batches)
    assert source.backlog() == 30  # 20 never delivered + 10 awaiting their ack
    source.ack(first)
    assert source.backlog() == 20
    source.close()
