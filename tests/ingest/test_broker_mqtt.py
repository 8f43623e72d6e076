"""The mqtt source on the machine's Mosquitto (and on private ones for restarts): QoS 1, ack after commit."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from loopline import DataError
from loopline.ingest._mqtt import MqttConfig, MqttSource
from loopline.ingest._source import Batch, Limits
from loopline.run import ingest_source
from loopline.store import Store

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


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sources keep their delivery counts under $LOOPLINE_HOME/mqtt: never in the working tree."""
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


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


class FailsOnBoom(MqttSource):
    """A consumer whose processing fails on any batch holding device "boom", before the commit."""

    def batches(self, position: Any, *, follow: bool = False, limits: Limits = Limits()) -> Iterator[Batch]:
        for batch in super().batches(position, follow=follow, limits=limits):
            if "boom" in batch.rows["device"].to_list():
                raise ValueError("the model server choked on device 'boom'")
            yield batch


def publish_with_poison(port: int, topic: str, cfg: MqttConfig, count: int, poison: int) -> None:
    subscribe_once(cfg)
    pub = publisher(port)
    publish(pub, f"{topic}/d/telemetry", [msg("boom" if i == poison else "d", i) for i in range(count)])
    pub.disconnect()


def test_a_message_failing_the_consumer_every_time_ends_in_dead_letters(
    broker: PrivateServer, topic: str, tmp_path: Path, home: Path
) -> None:
    cfg = config(topic, broker.port, max_deliveries=3)
    publish_with_poison(broker.port, topic, cfg, 100, poison=40)
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "artifacts")
    limits = Limits(max_rows=16, max_seconds=0.3)
    for _ in range(3):  # deliveries 1, 2, 3: each one fails before the commit
        with pytest.raises(ValueError, match="choked"):
            ingest_source(store, FailsOnBoom(cfg), dataset="events", limits=limits)
    report = ingest_source(store, FailsOnBoom(cfg), dataset="events", limits=limits)
    assert report.status == "succeeded" and report.rejected == 1
    assert sorted(store.datasets.read("events")["seq"].to_list()) == [i for i in range(100) if i != 40]
    [letter] = store.datasets.dead_letters("events")
    assert letter.reason == "poison: delivered 4 times (max_deliveries=3)"
    assert json.loads(letter.raw)["device"] == "boom" and letter.position["topic"] == f"{topic}/d/telemetry"
    assert list((home / "mqtt").iterdir()) == []  # everything acknowledged: no count, no file
    store.close()


KILLED_CHILD = """
import json, os, signal, sys
from loopline.ingest._mqtt import MqttConfig, MqttSource
from loopline.ingest._source import Limits
from loopline.run import ingest_source
from loopline.store import Store

class DiesOnBoom(MqttSource):
    def batches(self, position, *, follow=False, limits=Limits()):
        for batch in super().batches(position, follow=follow, limits=limits):
            if "boom" in batch.rows["device"].to_list():
                os.kill(os.getpid(), signal.SIGKILL)  # a native crash: nothing gets to clean up
            yield batch

store_url, artifacts, cfg = sys.argv[1:4]
store = Store.open(store_url, artifacts)
source = DiesOnBoom(MqttConfig.model_validate_json(cfg))
report = ingest_source(store, source, dataset="events", limits=Limits(max_rows=16, max_seconds=0.3))
print(report.status, report.rows, report.rejected, flush=True)
"""


@pytest.mark.slow
def test_a_message_killing_the_consumer_process_ends_in_dead_letters(
    broker: PrivateServer, topic: str, tmp_path: Path
) -> None:
    cfg = config(topic, broker.port, max_deliveries=3, state_dir=str(tmp_path / "state"))
    publish_with_poison(broker.port, topic, cfg, 100, poison=40)
    store_url, artifacts = f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "artifacts"
    script = tmp_path / "child.py"
    script.write_text(KILLED_CHILD)
    command = [sys.executable, str(script), store_url, str(artifacts), cfg.model_dump_json(by_alias=True)]
    store = Store.open(store_url, artifacts)
    codes, committed = [], []
    for _ in range(4):
        run = subprocess.run(command, capture_output=True, text=True, timeout=120)
        codes.append(run.returncode)
        committed.append(sum(int(part["rows"]) for part in store.datasets.parts("events")))
    assert codes == [-9, -9, -9, 0], run.stderr[-2000:]
    # batches of 16: 0-31 committed, 32-47 kill; then groups of 4: 32-39 committed, 40-43 kill; 40 alone: kill
    assert committed == [32, 40, 40, 99]
    assert sorted(store.datasets.read("events")["seq"].to_list()) == [i for i in range(100) if i != 40]
    [letter] = store.datasets.dead_letters("events")
    assert letter.reason == "poison: delivered 4 times (max_deliveries=3)"
    store.close()


# -- errors in paho's thread end the ingest ------------------------------------------------------------


@pytest.fixture
def acl_broker(tmp_path: Path) -> Iterator[PrivateServer]:
    """A private Mosquitto that refuses anonymous subscriptions to ``denied/#``."""
    folder = tmp_path / "acl-broker"
    folder.mkdir()
    server = mosquitto(folder, deny_subscribe=["denied/#"])
    server.start()
    yield server
    server.stop()


def test_a_subscription_the_broker_refuses_ends_the_ingest_with_its_reason(acl_broker: PrivateServer) -> None:
    source = MqttSource(config("denied", acl_broker.port, reconnect_timeout_s=600))
    started = time.monotonic()
    with pytest.raises(DataError, match=r"paho-mqtt: the broker .* refused the subscription to 'denied/\+/telemetry'"):
        next(source.batches(None, follow=True, limits=FAST))
    assert time.monotonic() - started < 10  # not reconnect_timeout_s, not forever
    source.close()
    allowed = MqttSource(config("allowed", acl_broker.port))  # the same broker grants what its ACL allows
    assert drain(allowed, ack=True) == []


def test_an_error_in_a_callback_in_paho_s_thread_ends_the_ingest(topic: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config(topic)
    subscribe_once(cfg)

    def explode(topic: str, payload: bytes) -> str:
        raise RuntimeError("the decoder exploded")

    monkeypatch.setattr("loopline.ingest._mqtt._message_key", explode)  # runs in paho's on_message
    pub = publisher()
    publish(pub, f"{topic}/x/telemetry", [msg("x", 1)])
    pub.disconnect()
    source = MqttSource(cfg)
    started = time.monotonic()
    with pytest.raises(DataError, match="paho-mqtt: on_message raised RuntimeError: the decoder exploded") as info:
        for _ in source.batches(None, follow=True, limits=FAST):
            assert time.monotonic() - started < 10  # not forever
    assert isinstance(info.value.__cause__, RuntimeError)
    source.close()
    monkeypatch.undo()
    assert ids(drain(MqttSource(cfg), ack=True)) == ["x|1"]  # never acknowledged: it comes back


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_the_watchdog_ends_the_ingest_when_paho_s_thread_dies(topic: str) -> None:
    source = MqttSource(config(topic))
    stream = source.batches(None, follow=True, limits=FAST)
    assert next(stream).rows.height == 0

    def unguarded(*args: Any) -> None:
        raise RuntimeError("escaped every guard")

    assert source._client is not None
    source._client.on_message = unguarded  # an error no guard catches: paho's network thread dies of it
    pub = publisher()
    publish(pub, f"{topic}/w/telemetry", [msg("w", 1)])
    pub.disconnect()
    started = time.monotonic()
    with pytest.raises(DataError, match="paho-mqtt: its thread .* stopped unexpectedly"):
        for _ in stream:
            assert time.monotonic() - started < 10
    source.close()


PIPELINE = """\
name: refused
steps:
  sensors:
    type: ingest
    batch_seconds: 0.3
    source:
      type: mqtt
      url: mqtt://127.0.0.1:{port}
      topics: ["denied/#"]
      client_id: ll-refused-{suffix}
      schema: {{device: string, seq: int}}
      state_dir: {state}
"""


@pytest.mark.parametrize("command", [["ingest", "pipeline.yaml", "sensors", "--follow"], ["run", "pipeline.yaml"]])
def test_loopline_ends_non_zero_with_the_reason_when_the_broker_refuses(
    acl_broker: PrivateServer, tmp_path: Path, command: list[str]
) -> None:
    state = tmp_path / "state"
    text = PIPELINE.format(port=acl_broker.port, suffix=uuid.uuid4().hex[:8], state=state)
    (tmp_path / "pipeline.yaml").write_text(text)
    argv = [sys.executable, "-m", "loopline.cli", *command, "--home", str(tmp_path / "home")]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=60)  # a hang fails here
    assert done.returncode != 0
    assert "refused the subscription to 'denied/#'" in done.stdout + done.stderr
