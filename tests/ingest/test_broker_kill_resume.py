"""SIGKILL a child ingesting from a broker mid-run, restart it: the dataset holds every message exactly once."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import paho.mqtt.client as mqtt
import pytest
import redis
from paho.mqtt.enums import CallbackAPIVersion

from loopline.ingest._mqtt import MqttConfig, MqttSource
from loopline.ingest._source import Limits
from loopline.store import Store

from ._servers import mosquitto

COUNT = 20_000

CHILD = """
import json, sys
import loopline.ingest._broker_sources
from loopline.ingest._source import SOURCES, Limits
from loopline.run import ingest_source
from loopline.store import Store

store_url, artifacts, kind, cfg = sys.argv[1:5]
cls = SOURCES.get(kind)
source = cls(cls.Config.model_validate(json.loads(cfg)))
store = Store.open(store_url, artifacts)
report = ingest_source(store, source, dataset="events", limits=Limits(max_rows=500, max_seconds=0.5))
source.close()
print(report.status, report.rows, flush=True)
"""


def setup_mqtt(name: str, folder: Path) -> tuple[dict[str, Any], Callable[[], None]]:
    server = mosquitto(folder)
    server.start()
    port = server.port
    cfg = {"topics": [f"llkill/{name}/#"], "client_id": f"ll-{name}", "schema": {"device": "string", "k": "int"}}
    cfg["url"] = f"mqtt://127.0.0.1:{port}"
    cfg["id_fields"] = ["device", "k"]
    cfg["state_dir"] = str(folder / "state")  # delivery counts: next to the broker's files, not in the working tree
    source = MqttSource(MqttConfig.model_validate(cfg))
    list(source.batches(None, limits=Limits(max_seconds=0.2)))  # create the persistent session
    source.close()
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(f"llkill/{name}/d", json.dumps({"device": "d", "k": i}), qos=1) for i in range(COUNT)]
    for info in infos:
        info.wait_for_publish(30)
    client.disconnect()

    return cfg, server.stop


def setup_nats(name: str, folder: Path) -> tuple[dict[str, Any], Callable[[], None]]:
    async def publish() -> None:
        nc = await nats.connect("nats://127.0.0.1:4222")
        js = nc.jetstream()
        await js.add_stream(name=name, subjects=[f"{name}.>"])
        for i in range(COUNT):
            await js.publish(f"{name}.in", json.dumps({"k": i}).encode())
        await nc.close()

    async def delete() -> None:
        nc = await nats.connect("nats://127.0.0.1:4222")
        await nc.jetstream().delete_stream(name)
        await nc.close()

    asyncio.run(publish())
    return {"stream": name, "durable": "ll", "schema": {"k": "int"}, "ack_wait_s": 3}, lambda: asyncio.run(delete())


def setup_redis(name: str, folder: Path) -> tuple[dict[str, Any], Callable[[], None]]:
    r = redis.Redis()
    pipe = r.pipeline()
    for i in range(COUNT):
        pipe.xadd(name, {"data": json.dumps({"k": i})})
    pipe.execute()

    def delete() -> None:
        r.delete(name)

    return {"stream": name, "consumer": "c1", "schema": {"k": "int"}}, delete


SETUPS = {"mqtt": setup_mqtt, "nats": setup_nats, "redis": setup_redis}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(SETUPS))
def test_a_killed_broker_ingest_resumes_with_nothing_lost_or_doubled(kind: str, tmp_path: Path) -> None:
    name = f"LL{uuid.uuid4().hex[:10]}"
    folder = tmp_path / "broker"
    folder.mkdir()
    cfg, cleanup = SETUPS[kind](name, folder)
    try:
        store_url, artifacts = f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "artifacts"
        store = Store.open(store_url, artifacts)
        script = tmp_path / "child.py"
        script.write_text(CHILD)
        command = [sys.executable, str(script), store_url, str(artifacts), kind, json.dumps(cfg)]
        log = tmp_path / "child.log"
        with log.open("w") as out:
            child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while store.datasets.checkpoint("events", kind) is None:
            if child.poll() is not None or time.monotonic() > deadline:
                child.kill()
                child.wait()
                pytest.fail(f"the child ended before its first commit: {log.read_text()[-2000:]}")
            time.sleep(0.02)
        time.sleep(0.3)
        child.send_signal(signal.SIGKILL)
        child.wait()
        partial = store.datasets.read("events").height
        assert 0 < partial < COUNT

        done = subprocess.run(command, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        rows = store.datasets.read("events")
        assert rows.height == COUNT and set(rows["k"].to_list()) == set(range(COUNT))
    finally:
        cleanup()
