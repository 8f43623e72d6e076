"""A cron tick's catch-up pass of the continuous sources (a real Redis stream): it reads each source from its
checkpoint to its current end, within a budget; the next pass reads only what came since (nothing twice); a
supervisor that runs the sources already keeps them."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from loopline.core.yamlfile import load_pipeline
from loopline.run._catch_up import catch_up_sources
from loopline.run._supervisor import hold_sources_lock
from loopline.store import Store

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
PIPELINE = """
name: feeds
steps:
  events:
    type: ingest
    batch_rows: 100
    batch_seconds: 0.2
    source: {{type: redis, stream: {stream}, schema: {{k: int}}}}
  table: {{type: ingest, source: {{type: file, path: x.csv}}}}
monitor:
  model: feeds-model
"""


@pytest.fixture
def stream() -> Iterator[str]:
    name = f"llcatch{uuid.uuid4().hex[:10]}"
    yield name
    redis.Redis().delete(name)


def add(stream: str, keys: range) -> None:
    client = redis.Redis()
    for k in keys:
        client.xadd(stream, {"data": json.dumps({"k": k})})


def test_a_pass_reads_to_the_end_and_the_next_one_only_what_came_since(
    store: Store, stream: str, tmp_path: Path
) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE.format(stream=stream))
    pipeline = load_pipeline(path)
    add(stream, range(250))
    first = catch_up_sources(store, pipeline, tmp_path, budget=timedelta(minutes=1))
    assert [(c.step, c.state, c.rows, c.batches) for c in first] == [("events", "caught up", 250, 3)]  # not `table`
    assert first[0].version == 1 and "250 rows in 3 batches, v1" in first[0].describe()
    add(stream, range(250, 300))
    second = catch_up_sources(store, pipeline, tmp_path, budget=timedelta(minutes=1))
    assert [(c.state, c.rows) for c in second] == [("caught up", 50)]
    keys = store.datasets.read("events")["k"].to_list()
    assert sorted(keys) == list(range(300))  # every entry once
    assert catch_up_sources(store, pipeline, tmp_path, budget=timedelta(minutes=1))[0].rows == 0


def test_a_supervised_source_is_left_to_its_supervisor_and_a_stop_skips_the_pass(
    store: Store, stream: str, tmp_path: Path
) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE.format(stream=stream))
    pipeline = load_pipeline(path)
    add(stream, range(10))
    lock = hold_sources_lock(tmp_path, "feeds")  # a running supervisor (or another cron tick) holds it
    try:
        held = catch_up_sources(store, pipeline, tmp_path, budget=timedelta(minutes=1))
    finally:
        lock.close()
    assert [c.state for c in held] == ["supervised"] and "supervised already" in held[0].note
    assert store.datasets.rows_since("events", EPOCH) == 0
    stopped = threading.Event()
    stopped.set()
    skipped = catch_up_sources(store, pipeline, tmp_path, budget=timedelta(minutes=1), stop=stopped)
    assert [(c.state, c.note) for c in skipped] == [("skipped", "stopped (a signal)")]
    resumed = catch_up_sources(store, pipeline, tmp_path, budget=timedelta(minutes=1))
    assert [(c.state, c.rows) for c in resumed] == [("caught up", 10)]


def test_a_pass_cut_short_by_its_budget_resumes_at_the_next_one(store: Store, stream: str, tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE.format(stream=stream).replace("batch_rows: 100", "batch_rows: 20"))
    pipeline = load_pipeline(path)
    add(stream, range(3000))  # 150 batches, each committed with its checkpoint: well over 0.2 s
    cut = catch_up_sources(store, pipeline, tmp_path, budget=timedelta(seconds=0.2))
    assert cut[0].state == "budget spent" and 0 < cut[0].rows < 3000
    rest = catch_up_sources(store, pipeline, tmp_path, budget=timedelta(minutes=2))
    assert rest[0].state == "caught up" and cut[0].rows + rest[0].rows == 3000
    assert sorted(store.datasets.read("events")["k"].to_list()) == list(range(3000))
