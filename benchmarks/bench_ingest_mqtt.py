"""MQTT ingestion throughput: loopline's mqtt source + engine vs a bare paho subscriber that only counts.

Both contenders read the same N QoS 1 JSON messages, published by a separate publisher process started at
the same moment, from a private Mosquitto (zero-loss settings, free port). The floor is a paho-mqtt client
(QoS 1, auto-ack) counting messages; loopline runs ``ingest_source`` (mqtt source, PUBACK after commit,
Parquet part + ids + checkpoint per batch in a SQLite store) until idle. Rate = messages / seconds from the
publisher's start to the last message counted (floor) or committed (loopline, the idle tail of
``max_seconds`` subtracted; if the publisher stalls longer than that, ingest runs again until all N are
committed or the floor's deadline passes). Loss = N minus distinct ids received (floor) or distinct ids in the
dataset; the rates count only distinct messages received, and any loopline loss fails the goal.
The publisher, the broker and the contender share the machine's cores.

    python benchmarks/bench_ingest_mqtt.py [--quick]
"""

from __future__ import annotations

import argparse
import getpass
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import final_line, goal, machine, paired_ratios, summary

PUBLISHER = """
import json, sys, paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
port, topic, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = mqtt.Client(CallbackAPIVersion.VERSION2)
c.max_inflight_messages_set(1000)
c.max_queued_messages_set(0)
c.connect("127.0.0.1", port)
c.loop_start()
infos = []
for i in range(n):
    if i >= 20000:  # packet ids wrap at 65535: keep at most 20k unacknowledged
        infos[i - 20000].wait_for_publish(120)
    infos.append(c.publish(topic, json.dumps({"device": "d1", "seq": i, "value": i * 0.5}), qos=1))
for info in infos:
    info.wait_for_publish(120)
c.disconnect()
"""
MAX_SECONDS = 0.5
GOAL = 0.5  # mqtt_vs_floor, judged on the worst alternated repeat
LABELS = {
    "floor_msgs": "msg/s: a bare paho-mqtt subscriber (QoS 1, auto-ack) counting distinct messages, publisher start "
    "to last message",
    "loopline_msgs": "msg/s: ingest_source(mqtt source) into a dataset of a SQLite store (Parquet part, ids and "
    "checkpoint committed per batch, PUBACK after commit), publisher start to last commit (idle tail subtracted)",
    "mqtt_vs_floor": "loopline msg/s / floor msg/s per alternated repeat",
}


def start_broker(folder: Path) -> tuple[int, subprocess.Popen[bytes]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {folder}/\n"
        f"max_queued_messages 0\nmax_inflight_messages 0\nlog_dest none\nuser {getpass.getuser()}\n"
    )
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)])
    for _ in range(200):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return port, proc
        time.sleep(0.05)
    raise RuntimeError("mosquitto did not start")


def publish(port: int, topic: str, n: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", PUBLISHER, str(port), topic, str(n)])


def floor(port: int, n: int) -> tuple[float, int]:
    """A bare paho subscriber (QoS 1) that counts distinct messages."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    topic = f"bench/{uuid.uuid4().hex}"
    seen: set[bytes] = set()
    done = threading.Event()
    last = [0.0]

    def on_message(client: object, userdata: object, message: mqtt.MQTTMessage) -> None:
        seen.add(bytes(message.payload))
        last[0] = time.perf_counter()
        if len(seen) >= n:
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    time.sleep(0.2)
    started = time.perf_counter()
    pub = publish(port, topic, n)
    pub.wait()
    done.wait(30 + n / 1000)
    client.disconnect()
    client.loop_stop()
    return len(seen) / (last[0] - started), n - len(seen)


def loopline(port: int, n: int, folder: Path) -> tuple[float, int]:
    """loopline's mqtt source + ingest engine into a SQLite store, acks after each commit."""
    from loopline.ingest._mqtt import MqttConfig, MqttSource
    from loopline.ingest._source import Limits
    from loopline.run import ingest_source
    from loopline.store import Store

    topic = f"bench/{uuid.uuid4().hex}"
    cfg = MqttConfig.model_validate(
        {
            "url": f"mqtt://127.0.0.1:{port}",
            "topics": [topic],
            "client_id": f"bench-{uuid.uuid4().hex[:8]}",
            "schema": {"device": "string", "seq": "int", "value": "float"},
            "id_fields": ["device", "seq"],
            "state_dir": str(folder / "mqtt"),
        }
    )
    warm = MqttSource(cfg)
    list(warm.batches(None, limits=Limits(max_seconds=0.1)))  # the persistent session exists
    warm.close()
    store_dir = folder / uuid.uuid4().hex
    store = Store.open(f"sqlite:///{store_dir}.db", store_dir)
    started = time.perf_counter()
    deadline = started + 30 + n / 1000  # as long as the floor waits
    pub = publish(port, topic, n)
    got, last = 0, started
    while got < n and time.perf_counter() < deadline:  # a stalled publisher (a loaded machine) ends a run early
        limits = Limits(max_rows=50_000, max_seconds=MAX_SECONDS)
        report = ingest_source(store, MqttSource(cfg), dataset="bench", limits=limits)
        if report.rows:
            got += report.rows
            last = time.perf_counter() - MAX_SECONDS  # the last commit, before the idle tail
    pub.wait()
    received = store.datasets.read("bench")["seq"].n_unique()
    return received / (last - started), n - received


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20k messages, 1 repeat (smoke test)")
    args = parser.parse_args()
    n, repeats = (20_000, 1) if args.quick else (100_000, 5)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port, broker = start_broker(folder)
        try:
            rates: dict[str, list[float]] = {"floor": [], "loopline": []}
            losses: dict[str, int] = {"floor": 0, "loopline": 0}
            floor(port, 2_000)  # warm-up
            loopline(port, 2_000, folder)
            for _ in range(repeats):  # A B A B ...
                for name in ("floor", "loopline"):
                    rate, lost = floor(port, n) if name == "floor" else loopline(port, n, folder)
                    rates[name].append(rate)
                    losses[name] += lost
        finally:
            broker.terminate()
            broker.wait(10)
    floor_s, loop_s = summary(rates["floor"]), summary(rates["loopline"])
    # rates: bigger is better, so loopline / floor (paired_ratios divides its first list by its second)
    per_repeat = paired_ratios(rates["loopline"], rates["floor"])
    result = goal(per_repeat, GOAL)
    if losses["loopline"]:  # a rate over fewer messages than were sent meets nothing
        result.update(met=False, lost=losses["loopline"])
    print(f"{'contender':<10} {'min msg/s':>10} {'median':>10} {'max':>10} {'lost':>6}")
    for name, s in (("floor", floor_s), ("loopline", loop_s)):
        print(f"{name:<10} {s['min']:>10.0f} {s['median']:>10.0f} {s['max']:>10.0f} {losses[name]:>6}")
    print(f"{n} QoS 1 messages x {repeats}; publisher process, mosquitto and contender share the cores")
    for name, text in LABELS.items():
        print(f"  {name}: {text}")
    ratio = summary(per_repeat)
    print(
        f"mqtt_vs_floor: median {ratio['median']:.3f} (min {ratio['min']:.3f}, max {ratio['max']:.3f}); goal >= {GOAL} "
        f"on the worst repeat: {'met' if result['met'] else 'not met'} (worst {result['worst']:.3f})"
    )
    final_line(
        "ingest_mqtt",
        sizes={"messages": n, "repeats": repeats, "payload_bytes": 50},
        versions={"paho-mqtt": version("paho-mqtt"), "mosquitto": "2.0", **machine()},
        labels=LABELS,
        median={"loopline_msgs": round(loop_s["median"]), "floor_msgs": round(floor_s["median"])},
        spread={"loopline_msgs": loop_s, "floor_msgs": floor_s, "mqtt_vs_floor": ratio},
        loss={"loopline": losses["loopline"], "floor": losses["floor"]},
        ratios={"mqtt_vs_floor": round(ratio["median"], 3)},
        goals={"mqtt_vs_floor": result},
    )


if __name__ == "__main__":
    main()
