"""The ingestion engine: exactly once across restarts and redeliveries, contracts, dead letters, versions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from loopline import DataError
from loopline.ingest import SOURCES, Batch, Limits, Reject, Source, SourceConfig
from loopline.run import ingest_source, replay_dead_letters
from loopline.store import Store


class ListConfig(SourceConfig):
    messages: list[dict[str, Any]]


class FlakyQueue(Source):
    """An in-memory queue with broker semantics: unacked messages come back; it can fail mid-stream."""

    type_name = "flaky_queue"
    Config = ListConfig

    def __init__(self, config: ListConfig, *, redeliver: int = 0, fail_after: int | None = None) -> None:
        super().__init__(config)
        self.acked: set[int] = set()
        self.redeliver = redeliver
        self.fail_after = fail_after
        self.served = 0

    def batches(self, position: Any, *, follow: bool = False, limits: Limits = Limits()) -> Iterator[Batch]:
        pending = [i for i in range(len(self.config.messages)) if i not in self.acked]
        start = max(0, min(pending, default=len(self.config.messages)) - self.redeliver)  # redeliver some acked ones
        for offset in range(start, len(self.config.messages), limits.max_rows):
            if self.fail_after is not None and self.served >= self.fail_after:
                self.fail_after = None
                raise ConnectionResetError("broker went away")
            chunk = list(range(offset, min(offset + limits.max_rows, len(self.config.messages))))
            good = [i for i in chunk if isinstance(self.config.messages[i].get("v"), int)]
            bad = [i for i in chunk if i not in good]
            self.served += 1
            yield Batch(
                pl.DataFrame([self.config.messages[i] for i in good]) if good else pl.DataFrame(),
                position={"offset": chunk[-1]},
                ids=[f"m{i}" for i in good] if good else None,
                rejects=[Reject("v is not an int", {"offset": i}, str(self.config.messages[i])) for i in bad],
                ack_token=chunk,
            )

    def ack(self, batch: Batch) -> None:
        self.acked.update(batch.ack_token)


def messages(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "v": i * 10} for i in range(n)]


def test_redelivered_messages_are_deduplicated(store: Store) -> None:
    queue = FlakyQueue(ListConfig(messages=messages(30)))
    first = ingest_source(store, queue, dataset="q", limits=Limits(max_rows=7))
    assert first.rows == 30 and first.version == 1
    queue.redeliver = 10  # the broker sends the last ten again
    again = ingest_source(store, queue, dataset="q", limits=Limits(max_rows=7))
    assert again.rows == 0 and again.duplicates == 10
    assert sorted(store.datasets.read("q")["id"].to_list()) == list(range(30))


def test_a_transient_failure_is_retried_from_the_checkpoint(store: Store) -> None:
    queue = FlakyQueue(ListConfig(messages=messages(50)), fail_after=3)
    report = ingest_source(store, queue, dataset="q", limits=Limits(max_rows=5), backoff=0.01)
    assert report.retries == 1 and "broker went away" in report.errors[0]
    assert sorted(store.datasets.read("q")["id"].to_list()) == list(range(50))


def test_bad_messages_go_to_dead_letters_and_are_counted(store: Store) -> None:
    data = messages(10)
    data[3]["v"] = "three"
    report = ingest_source(store, FlakyQueue(ListConfig(messages=data)), dataset="q", limits=Limits(max_rows=4))
    assert report.rows == 9 and report.rejected == 1
    letter = store.datasets.dead_letters("q")[0]
    assert letter.reason == "v is not an int" and letter.position == {"offset": 3} and "three" in letter.raw


def test_a_contract_break_commits_nothing_under_fail(store: Store, tmp_path: Path) -> None:
    source_type = SOURCES.get("file")
    pl.DataFrame({"id": [1, 2], "v": [1.0, 2.0]}).write_csv(tmp_path / "a.csv")
    make = lambda: source_type(source_type.Config.model_validate({"path": str(tmp_path / "*.csv")}))  # noqa: E731
    ingest_source(store, make(), dataset="files")
    pl.DataFrame({"id": [3], "v": ["n/a"]}).write_csv(tmp_path / "b.csv")
    with pytest.raises(DataError, match="column 'v' is String, expected Float64"):
        ingest_source(store, make(), dataset="files")
    assert store.datasets.read("files").height == 2
    report = ingest_source(store, make(), dataset="files", policy="quarantine")
    assert report.rows == 0 and report.rejected == 1
    assert store.datasets.dead_letters("files")[0].reason == "column 'v': 'n/a' is not Float64"


def test_dead_letters_replay_after_a_fix(store: Store, tmp_path: Path) -> None:
    source_type = SOURCES.get("file")
    make = lambda: source_type(source_type.Config.model_validate({"path": str(tmp_path / "*.csv")}))  # noqa: E731
    pl.DataFrame({"id": [1, 2], "v": [1.0, 2.0]}).write_csv(tmp_path / "a.csv")
    ingest_source(store, make(), dataset="files")
    pl.DataFrame({"id": [3, 4], "v": ["N.A.", "4.5"]}).write_csv(tmp_path / "b.csv")
    assert ingest_source(store, make(), dataset="files", policy="quarantine").rejected == 1
    assert replay_dead_letters(store, "files") == {"replayed": 0, "still_failing": 1, "skipped": 0}
    assert replay_dead_letters(store, "files", null_values=["N.A."]) == {
        "replayed": 1,
        "still_failing": 0,
        "skipped": 0,
    }
    rows = store.datasets.read("files").sort("id")
    assert rows.to_dicts()[2] == {"id": 3, "v": None}
    assert store.datasets.dead_letters("files") == []
    assert len(store.datasets.dead_letters("files", include_replayed=True)) == 1


def test_versions_snapshot_parts_and_positions(store: Store) -> None:
    queue = FlakyQueue(ListConfig(messages=messages(5)))
    ingest_source(store, queue, dataset="q", source_name="sensors")
    v1 = store.datasets.version("q")
    assert v1.rows == 5 and v1.positions == {"sensors": {"offset": 4}} and v1.schema == {"id": "Int64", "v": "Int64"}
    assert ingest_source(store, queue, dataset="q", source_name="sensors").version == 1  # nothing new: same version
    assert store.datasets.read("q", version=1).height == 5


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    from loopline.ingest import SOURCES, Limits
    from loopline.run import ingest_source
    from loopline.store import Store

    url, root, path = sys.argv[1:4]
    cls = SOURCES.get("file")
    store = Store.open(url, root)
    ingest_source(store, cls(cls.Config.model_validate({"path": path})), dataset="big", limits=Limits(max_rows=500))
    """
)


def test_kill_9_mid_ingest_then_restart_gives_every_row_exactly_once(store_url: str, tmp_path: Path) -> None:
    total = 100_000
    data = tmp_path / "data"
    data.mkdir()
    for part in range(4):
        ids = range(part * 25_000, (part + 1) * 25_000)
        pl.DataFrame({"id": ids, "s": [f"row {i}" for i in ids]}).write_csv(data / f"part-{part}.csv")
    script = tmp_path / "ingest.py"
    script.write_text(KILL_SCRIPT)
    args = [sys.executable, str(script), store_url, str(tmp_path / "artifacts"), str(data / "*.csv")]
    with Store.open(store_url, tmp_path / "artifacts") as store:
        partial = 0
        for _ in range(2):  # killed twice, each time after it committed more than the run before it left
            kill_after_progress(store, args, beyond=partial)
            partial = store.datasets.read("big").height
            assert partial < total, "the kill landed after the ingest had finished"
        subprocess.run(args, check=True, timeout=120)
        ids = store.datasets.read("big")["id"]
    assert ids.len() == total and ids.n_unique() == total
    assert set(ids.to_list()) == set(range(total))


def kill_after_progress(store: Store, args: list[str], *, beyond: int) -> None:
    """Start the ingest; once its checkpoint shows it committed rows past ``beyond``, SIGKILL it."""
    child = subprocess.Popen(args)
    deadline = time.monotonic() + 120
    try:
        while store.datasets.checkpoint("big", "file") is None or store.datasets.read("big").height <= beyond:
            assert child.poll() is None, "the child ended before it committed anything new"
            assert time.monotonic() < deadline, "the child committed nothing new in 120 s"
            time.sleep(0.02)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL  # it was still running: the kill landed mid-ingest


def test_follow_stops_cleanly_when_asked(store: Store, tmp_path: Path) -> None:
    source_type = SOURCES.get("file")
    pl.DataFrame({"id": [1]}).write_csv(tmp_path / "a.csv")
    source = source_type(source_type.Config.model_validate({"path": str(tmp_path / "*.csv")}))
    stop = threading.Event()
    result: dict[str, Any] = {}
    worker = threading.Thread(
        target=lambda: result.update(
            report=ingest_source(store, source, dataset="live", follow=True, stop=stop, limits=Limits(max_seconds=0.1))
        )
    )
    worker.start()
    try:
        wait_for_checkpoint(store, "live", lambda position: position is not None)  # a.csv is in
        pl.DataFrame({"id": [2]}).write_csv(tmp_path / "b.csv")  # a file that arrives while it follows
        wait_for_checkpoint(store, "live", lambda position: "b.csv" in str(position))
    finally:
        stop.set()
        worker.join(timeout=60)
    assert not worker.is_alive()
    assert sorted(store.datasets.read("live")["id"].to_list()) == [1, 2]


def wait_for_checkpoint(store: Store, dataset: str, condition: Callable[[Any], bool]) -> None:
    """Poll the file source's checkpoint into ``dataset`` until ``condition`` holds (60 s at most)."""
    deadline = time.monotonic() + 60
    while not condition(store.datasets.checkpoint(dataset, "file")):
        assert time.monotonic() < deadline, f"the checkpoint stayed {store.datasets.checkpoint(dataset, 'file')}"
        time.sleep(0.05)


def test_a_parquet_file_matching_the_contract_becomes_a_part_as_it_is(store: Store, tmp_path: Path) -> None:
    import hashlib

    source_type = SOURCES.get("file")
    make = lambda: source_type(source_type.Config.model_validate({"path": str(tmp_path / "*.parquet")}))  # noqa: E731
    first = tmp_path / "a.parquet"
    pl.DataFrame({"id": range(1000), "v": [0.5] * 1000}).write_parquet(first)
    report = ingest_source(store, make(), dataset="pq")
    assert report.rows == 1000
    part = store.datasets.parts("pq")[0]
    assert part["digest"] == hashlib.sha256(first.read_bytes()).hexdigest()  # the file's own bytes, not re-encoded
    pl.DataFrame({"id": ["x"], "v": [1.0]}).write_parquet(tmp_path / "b.parquet")  # another schema: checked
    with pytest.raises(DataError, match="column 'id' is String, expected Int64"):
        ingest_source(store, make(), dataset="pq")
    assert store.datasets.read("pq").height == 1000
