"""The mqtt source on the machine's Mosquitto (and on private ones for restarts): QoS 1, ack after commit."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from loopline.ingest._mqtt import MqttConfig, MqttSource
from loopline.ingest._source import Batch, Limits

from ._servers import PrivateServer, ids, mosquitto

SCHEMA = {"device": "string", "seq": "int", "value": "float"}
FAST = Limits(max_rows=10_000, max_seconds=0.4)


def config(topic: str, port: int = 1883, **extra: Any) -> MqttConfig:
    return MqttConfig.model_validate(
        {
            "url": f"mqtt://127.0.0.1:{port}",
            "topics": [f"{topic}/+/telemetry"],
            "client_id": f"ll-test-{uuid.uuid4().hex[:10]}",
            "schema": SCHEMA,
            "id_fields": ["device", "seq"],
            **extra,
        }
    )


def publisher(port: int = 1883) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def publish(client: mqtt.Client, topic: str, payloads: list[bytes]) -> None:
    infos = [client.publish(topic, payload, qos=1) for payload in payloads]
    for info in infos:
        info.wait_for_publish(10)


def msg(device: str, seq: int) -> bytes:
    return json.dumps({"device": device, "seq": seq, "value": seq / 2}).encode()


def drain(source: MqttSource, *, ack: bool) -> list[Batch]:
    batches = list(source.batches(None, limits=FAST))
    if ack:
        for batch in batches:
            source.ack(batch)
    source.close()
    return batches


def subscribe_once(cfg: MqttConfig) -> None:
    """Create the persistent session, so messages published from now on are queued for it."""
    drain(MqttSource(cfg), ack=True)


@pytest.fixture
def topic() -> str:
    return f"lltest/{uuid.uuid4().hex}"


def test_queued_messages_arrive_typed_with_wildcards_rejects_and_gaps(topic: str) -> None:
    cfg = config(topic, sequence_field="seq", device_field="device")
    subscribe_once(cfg)
    pub = publisher()
    publish(pub, f"{topic}/a/telemetry", [msg("a", i) for i in range(1, 101) if i != 50])
    publish(pub, f"{topic}/b/telemetry", [msg("b", 1), b"{broken", b'{"device":"b","seq":"two"}', b"x" * 2_000_000])
    publish(pub, f"{topic}/c/other", [msg("c", 1)])  # not matched by the filter
    pub.disconnect()

    source = MqttSource(cfg)
    batches = drain(source, ack=True)
    assert sorted(ids(batches)) == sorted([f"a|{i}" for i in range(1, 101) if i != 50] + ["b|1"])
    assert all(b.rows.schema["seq"].is_integer() for b in batches)
    rejects = [r for b in batches for r in b.rejects]
    assert [r.reason.split(":")[0] for r in rejects[:2]] == ["invalid JSON", "column 'seq'"]
    assert all(r.position["topic"] == f"{topic}/b/telemetry" and r.position["received"] > 0 for r in rejects)
    assert "exceeds max_payload_bytes" in rejects[2].reason
    assert source.gaps() == 1
    assert batches[-1].position["gaps"] == 1 and batches[-1].position["last_seq"] == {"a": 100, "b": 1}


def test_unacknowledged_messages_come_back_with_the_same_ids(topic: str) -> None:
    cfg = config(topic)
    subscribe_once(cfg)
    pub = publisher()
    publish(pub, f"{topic}/d/telemetry", [msg("d", i) for i in range(300)])
    pub.disconnect()

    first = ids(drain(MqttSource(cfg), ack=False))  # "crash" before the commit: nothing acknowledged
    again = ids(drain(MqttSource(cfg), ack=True))
    assert sorted(first) == sorted(again) == sorted(f"d|{i}" for i in range(300))
    assert ids(drain(MqttSource(cfg), ack=True)) == []  # acknowledged: gone


def test_without_id_fields_there_are_no_ids(topic: str) -> None:
    cfg = config(topic, id_fields=None)
    subscribe_once(cfg)
    pub = publisher()
    publish(pub, f"{topic}/e/telemetry", [msg("e", 1)])
    pub.disconnect()
    batches = drain(MqttSource(cfg), ack=True)
    assert [b.ids for b in batches] == [None] and batches[0].rows.height == 1


def test_follow_yields_empty_batches_while_idle(topic: str) -> None:
    source = MqttSource(config(topic))
    stream = source.batches(None, follow=True, limits=Limits(max_seconds=0.2))
    started = time.monotonic()
    assert [next(stream).rows.height for _ in range(3)] == [0, 0, 0]
    assert time.monotonic() - started < 5
    source.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateServer]:
    server = mosquitto(tmp_path)
    server.start()
    yield server
    server.stop()


def publish_reliably(port: int, topic: str, count: int, done: threading.Event) -> None:
    """QoS 1, each message retried until the broker acknowledged it (duplicates are fine: ids dedup)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
    client.connect("127.0.0.1", port)
    client.loop_start()
    for seq in range(count):
        while True:
            info = client.publish(topic, msg("r", seq), qos=1)
            with contextlib.suppress(RuntimeError, ValueError):  # not connected: retry below
                info.wait_for_publish(1.0)
            if info.is_published():
                break
            time.sleep(0.1)
    client.loop_stop()
    client.disconnect()
    done.set()


@pytest.mark.slow
def test_a_broker_restart_while_publishing_loses_nothing(broker: PrivateServer, topic: str) -> None:
    count = 3_000
    cfg = config(topic, broker.port)
    source = MqttSource(cfg)
    stream = source.batches(None, follow=True, limits=Limits(max_rows=500, max_seconds=0.2))
    next(stream)  # session and subscription exist
    done = threading.Event()
    threading.Thread(target=publish_reliably, args=(broker.port, f"{topic}/r/telemetry", count, done)).start()
    seen: set[str] = set()
    restarted = False
    deadline = time.monotonic() + 90
    while (len(seen) < count or not done.is_set()) and time.monotonic() < deadline:
        batch = next(stream)
        seen.update(batch.ids or [])
        source.ack(batch)  # the "commit" happened: acknowledge
        if not restarted and len(seen) > count // 3:
            broker.stop()
            time.sleep(0.5)
            broker.start()
            restarted = True
    source.close()
    assert restarted and seen == {f"r|{i}" for i in range(count)}
