"""Every broker source passes the broker conformance checks plugin authors run, each on a private server."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import paho.mqtt.client as mqtt
import pytest
import redis
from paho.mqtt.enums import CallbackAPIVersion

from loopline.ingest._mqtt import MqttConfig, MqttSource
from loopline.ingest._nats import NatsConfig, NatsSource
from loopline.ingest._redis import RedisConfig, RedisSource
from loopline.ingest._source import Source
from loopline.testing import check_broker_source

from ._servers import PrivateServer, mosquitto, nats_server, redis_server

SCHEMA = {"id": "int", "s": "string", "x": "float"}
Records = list[dict[str, Any]]


def records(start: int, count: int) -> Records:
    return [{"id": i, "s": f"r{i}", "x": i / 4} for i in range(start, start + count)]


class Broker:
    """A private server, and how to build a source on it and publish to it."""

    def __init__(self, server: PrivateServer, folder: Path) -> None:
        self.server = server
        self.folder = folder
        self.name = f"LL{uuid.uuid4().hex[:10]}"

    def source(self) -> Source:
        raise NotImplementedError

    def publish(self, payloads: list[bytes]) -> None:
        raise NotImplementedError

    def produce(self, rows: Records) -> None:
        self.publish([json.dumps(row).encode() for row in rows])

    def produce_raw(self, payload: bytes) -> None:
        self.publish([payload])


class Mqtt(Broker):
    ids = True

    def source(self) -> Source:
        cfg = {"topics": [f"{self.name}/#"], "client_id": f"ll-{self.name}", "schema": SCHEMA}
        cfg |= {"url": f"mqtt://127.0.0.1:{self.server.port}", "state_dir": str(self.folder / "state")}
        return MqttSource(MqttConfig.model_validate({**cfg, "id_fields": ["id"] if self.ids else None}))

    def publish(self, payloads: list[bytes]) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2)
        client.connect("127.0.0.1", self.server.port)
        client.loop_start()
        for info in [client.publish(f"{self.name}/in", payload, qos=1) for payload in payloads]:
            info.wait_for_publish(10)
        client.disconnect()
        client.loop_stop()


class MqttWithoutIds(Mqtt):
    ids = False


class Nats(Broker):
    def source(self) -> Source:
        url = f"nats://127.0.0.1:{self.server.port}"
        # ack_wait_s: redelivery to the next instance soon, yet never within one read
        cfg = {"url": url, "stream": self.name, "durable": "ll", "schema": SCHEMA, "ack_wait_s": 2.0}
        return NatsSource(NatsConfig.model_validate(cfg))

    def publish(self, payloads: list[bytes]) -> None:
        async def main() -> None:
            nc = await nats.connect(f"nats://127.0.0.1:{self.server.port}")
            js = nc.jetstream()
            await js.add_stream(name=self.name, subjects=[f"{self.name}.>"])  # idempotent for the same config
            for payload in payloads:
                await js.publish(f"{self.name}.in", payload)
            await nc.close()

        asyncio.run(main())


class Redis(Broker):
    def source(self) -> Source:
        url = f"redis://127.0.0.1:{self.server.port}/0"
        return RedisSource(RedisConfig.model_validate({"url": url, "stream": self.name, "schema": SCHEMA}))

    def publish(self, payloads: list[bytes]) -> None:
        client = redis.Redis(port=self.server.port)
        for payload in payloads:
            client.xadd(self.name, {"data": payload})
        client.close()


BROKERS: dict[str, tuple[type[Broker], Callable[[Path], PrivateServer]]] = {
    "mqtt": (Mqtt, mosquitto),
    "mqtt-without-ids": (MqttWithoutIds, mosquitto),
    "nats": (Nats, nats_server),
    "redis": (Redis, redis_server),
}


@pytest.fixture(params=sorted(BROKERS))
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    kind, start = BROKERS[request.param]
    (tmp_path / "server").mkdir()
    server = start(tmp_path / "server")
    server.start()
    made = kind(server, tmp_path)
    if isinstance(made, Nats):
        made.publish([])  # the stream must exist before the consumer
    yield made
    server.stop()


def test_broker_sources_conform(broker: Broker) -> None:
    check_broker_source(
        broker.source,
        broker.produce,
        broker.produce_raw,
        key="id",
        rows=records,
        with_ids=not isinstance(broker, MqttWithoutIds),
        max_seconds=0.3,
    )
