"""The durable prediction log: segments on disk, loaded into the store exactly once, through crashes and outages."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from loopline.serve import _predlog
from loopline.serve._predlog import PredictionLogger
from loopline.store import PredictionRow, Store

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PG = pytest.param("postgres", marks=pytest.mark.postgres)


def row(i: int, **inputs: object) -> PredictionRow:
    return PredictionRow(
        prediction_id=f"p{i:07d}",
        model_name="m",
        model_version=1,
        created_at=T0 + timedelta(milliseconds=i),
        inputs={"x": float(i), **inputs},
        output={"prediction": i % 2},
        latency_ms=0.25,
    )


def logged(store: Store) -> list[str]:
    """The logged ids, checked to be unique."""
    ids: list[str] = store.predictions.read("m")["prediction_id"].to_list()
    assert len(ids) == len(set(ids)), "a row was loaded twice"
    return ids


def expected(n: int, start: int = 0) -> list[str]:
    return [row(i).prediction_id for i in range(start, start + n)]


def segments(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.seg"))


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the prediction log")
        time.sleep(0.02)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'loopline.db'}", tmp_path / "artifacts")
    yield opened
    opened.close()


def test_close_loads_every_row_exactly_once_and_empties_the_folder(sqlite_store: Store, tmp_path: Path) -> None:
    logger = PredictionLogger(
        sqlite_store.predictions, flush_interval=0.05, batch_size=300, segment_dir=tmp_path / "log"
    )
    logger.start()
    for start in range(0, 2500, 7):
        logger.put([row(i) for i in range(start, min(start + 7, 2500))])
    logger.close()
    assert logged(sqlite_store) == expected(2500)  # in put order, each once
    assert (logger.durable, logger.written, logger.skipped, logger.depth()) == (2500, 2500, 0, 0)
    assert segments(tmp_path / "log") == []


def test_rows_are_durable_on_disk_before_the_store_has_them(sqlite_store: Store, tmp_path: Path) -> None:
    blocker = sqlite3.connect(tmp_path / "loopline.db", timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # the store cannot be written: the loader waits
    logger = PredictionLogger(sqlite_store.predictions, flush_interval=0.05, segment_dir=tmp_path / "log")
    logger.start()
    try:
        logger.put([row(i) for i in range(200)])
        wait_for(lambda: logger.durable == 200)
        assert (logger.buffered(), logger.pending(), logger.depth()) == (0, 200, 200)
        on_disk = b"".join(p.read_bytes() for p in segments(tmp_path / "log"))
        assert on_disk.count(b"\n") == 200 and b'"p0000199"' in on_disk
    finally:
        blocker.rollback()
        blocker.close()
    logger.close()
    assert logged(sqlite_store) == expected(200)


_CHILD = """
import sys, time
from datetime import UTC, datetime, timedelta
from loopline.serve._predlog import PredictionLogger
from loopline.store import PredictionRow, Store

store = Store.open(sys.argv[1], sys.argv[2] + "/artifacts")
logger = PredictionLogger(store.predictions, flush_interval=0.1, segment_dir=sys.argv[2] + "/log")
logger.start()
t0, put = datetime(2025, 3, 1, 12, tzinfo=UTC), 0
while True:
    logger.put([
        PredictionRow(f"p{i:07d}", "m", 1, t0 + timedelta(milliseconds=i), {"x": float(i)}, {"prediction": i % 2}, 0.25)
        for i in range(put, put + 10)
    ])
    put += 10
    print(put, logger.durable, time.monotonic(), flush=True)
    time.sleep(0.002)
"""


@pytest.mark.slow
def test_kill_9_loses_at_most_the_rows_not_yet_flushed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'loopline.db'}"
    Store.open(url, tmp_path / "artifacts").close()  # migrated before the child starts
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, url, str(tmp_path)], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    reports: list[tuple[int, int, float]] = []
    began = time.monotonic()
    try:
        assert child.stdout is not None
        for line in child.stdout:
            fields = line.split()
            reports.append((int(fields[0]), int(fields[1]), float(fields[2])))
            if reports[-1][1] >= 3000 or time.monotonic() - began > 60:
                break
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    put, durable, at = reports[-1]
    assert durable >= 3000, "the child never reported 3000 durable rows"
    with Store.open(url, tmp_path / "artifacts") as store:
        logger = PredictionLogger(store.predictions, flush_interval=0.1, segment_dir=tmp_path / "log")
        logger.start()
        logger.close()
        ids = logged(store)
    survived = len(ids)
    assert ids == expected(survived), "the surviving rows are not a gap-free prefix in put order"
    assert survived >= durable, "a row reported durable was lost"
    # what was lost is what was still in memory: at the last report, at most put - durable rows
    rate = put / (at - reports[0][2])
    worst_buffer = max(p - d for p, d, _ in reports)
    assert max(put - survived, 0) <= put - durable <= worst_buffer
    assert worst_buffer <= rate * 1.0, f"{worst_buffer} rows in memory: more than 1 s of rows at {rate:.0f}/s"
    assert segments(tmp_path / "log") == []


def test_a_torn_or_corrupt_line_is_skipped_and_counted(sqlite_store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "log"
    folder.mkdir()
    lines = [_predlog._encode(row(i)) for i in range(6)]
    lines[2] = lines[2].replace(b'"x":2.0', b'"x":9.0')  # checksum no longer matches
    torn = _predlog._encode(row(6))[:-20]  # the crash cut the last write short
    (folder / "00000000000000000001-1-00000001.seg").write_bytes(b"".join(lines) + torn)
    logger = PredictionLogger(sqlite_store.predictions, segment_dir=folder)
    logger.start()
    assert logger.pending() == 7
    logger.close()
    assert logged(sqlite_store) == [row(i).prediction_id for i in (0, 1, 3, 4, 5)]
    assert (logger.skipped, logger.written, logger.depth()) == (2, 5, 0)
    assert segments(folder) == []


def test_loading_a_segment_twice_inserts_nothing_twice(sqlite_store: Store, tmp_path: Path) -> None:
    folder, saved = tmp_path / "log", tmp_path / "saved.seg"
    folder.mkdir()
    segment = folder / "00000000000000000001-1-00000001.seg"
    segment.write_bytes(b"".join(_predlog._encode(row(i)) for i in range(100)))
    shutil.copy(segment, saved)
    sqlite_store.predictions.append([row(i) for i in range(60)])  # committed, then the crash: not marked loaded
    for _ in range(2):
        logger = PredictionLogger(sqlite_store.predictions, batch_size=30, segment_dir=folder)
        logger.start()
        logger.close()
        assert logged(sqlite_store) == expected(100)
        assert logger.written == 100 and segments(folder) == []
        shutil.copy(saved, segment)  # and once more, as if the deletion had never happened


def test_leftovers_load_before_new_rows_and_a_live_writers_segment_is_left_alone(
    sqlite_store: Store, tmp_path: Path
) -> None:
    folder = tmp_path / "log"
    live = PredictionLogger(sqlite_store.predictions, flush_interval=0.05, segment_dir=folder)
    live.start()
    live.put([row(i) for i in range(1000, 1010)])
    wait_for(lambda: live.durable == 10)
    (folder / "00000000000000000001-1-00000001.seg").write_bytes(b"".join(_predlog._encode(row(i)) for i in range(50)))
    other = PredictionLogger(sqlite_store.predictions, flush_interval=0.05, segment_dir=folder)
    other.start()
    assert other.pending() == 50  # the live logger's segment is locked: not taken over
    other.put([row(i) for i in range(50, 80)])
    other.close()
    live.close()
    ids = logged(sqlite_store)
    assert sorted(ids) == expected(80) + expected(10, start=1000)
    assert segments(folder) == []


class Gate:
    """Wraps a call so that its callers wait while the gate is closed (``SAFETY`` seconds at most, then it opens
    for good and records that it gave up: something waited on a caller it was holding)."""

    SAFETY = 30.0

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self.held = 0  # callers waiting at the gate now
        self.gave_up = False

    def close(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    def wrap(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def gated(*args: Any) -> Any:
            if not self._open.is_set():
                with self._lock:
                    self.held += 1
                if not self._open.wait(self.SAFETY):
                    self.gave_up = True
                    self._open.set()
                with self._lock:
                    self.held -= 1
            return call(*args)

        return gated


def test_put_never_waits_for_a_slow_disk_or_store(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3,000 puts return while the writer is stuck in an fsync and the loader in a store insert."""
    disk, db = Gate(), Gate()
    monkeypatch.setattr(os, "fsync", disk.wrap(os.fsync))
    sink = sqlite_store.predictions
    monkeypatch.setattr(sink, "append_new", db.wrap(sink.append_new))  # the real insert, once the gate opens
    logger = PredictionLogger(sink, flush_interval=0.01, segment_dir=tmp_path / "log")
    logger.start()
    try:
        db.close()
        logger.put([row(i) for i in range(100)])
        wait_for(lambda: logger.durable == 100 and db.held == 1)  # the loader is inside an insert
        disk.close()
        logger.put([row(100)])
        wait_for(lambda: disk.held == 1)  # the writer is inside an fsync
        for i in range(101, 3101):
            logger.put([row(i)])
        stuck = (disk.held, db.held, disk.gave_up, db.gave_up, logger.durable, logger.written, logger.buffered())
    finally:
        disk.open()
        db.open()
    # both were still held when the last put returned (no put waited for the disk or the store), and the 3,000
    # rows wait in memory
    assert stuck == (1, 1, False, False, 100, 0, 3000)
    logger.close()
    assert logged(sqlite_store) == expected(3101)


def _pg(store_url: str, name: str) -> str:
    return make_url(store_url).update_query_dict({"application_name": name}).render_as_string(hide_password=False)


def _terminate(admin_url: str, name: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :n"), {"n": name}
        )
    engine.dispose()


def _rename(admin_url: str, old: str, new: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"ALTER TABLE {old} RENAME TO {new}")
    engine.dispose()


@pytest.mark.parametrize("store_url", [PG], indirect=True)
def test_a_store_outage_keeps_rows_on_disk_until_the_store_is_back(store_url: str, tmp_path: Path) -> None:
    name = f"predlog-{os.getpid()}-{time.monotonic_ns()}"
    store = Store.open(_pg(store_url, name), tmp_path / "artifacts")
    folder = tmp_path / "log"
    logger = PredictionLogger(store.predictions, flush_interval=0.05, retry_max=0.3, segment_dir=folder)
    logger.start()
    try:
        logger.put([row(i) for i in range(100)])
        wait_for(lambda: logger.written == 100)
        _rename(store_url, "predictions", "predictions_away")  # the store refuses every insert...
        _terminate(store_url, name)  # ...and loses its connections
        logger.put([row(i) for i in range(100, 600)])
        wait_for(lambda: logger.durable == 600 and logger.retries >= 3)
        assert logger.pending() == 500 and segments(folder) != []
        _terminate(store_url, name)
        _rename(store_url, "predictions_away", "predictions")
        logger.put([row(i) for i in range(600, 700)])
        wait_for(lambda: logger.depth() == 0)
        logger.close()
        assert logged(store) == expected(700)
        assert segments(folder) == []
    finally:
        logger.close()
        store.close()


@pytest.mark.parametrize("store_url", [PG], indirect=True)
def test_close_returns_during_an_outage_and_the_next_start_loads_the_rows(store_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "log"
    with Store.open(store_url, tmp_path / "artifacts") as store:
        _rename(store_url, "predictions", "predictions_away")
        logger = PredictionLogger(store.predictions, flush_interval=0.05, close_timeout=0.5, segment_dir=folder)
        logger.start()
        logger.put([row(i) for i in range(300)])
        began = time.monotonic()
        logger.close()
        # close_timeout (0.5 s) bounds it, not the 30 s defaults of close_timeout and retry_max
        assert time.monotonic() - began < 15
        assert logger.durable == 300 and logger.written == 0 and logger.retries >= 1
        assert len(segments(folder)) == 1
        _rename(store_url, "predictions_away", "predictions")
        again = PredictionLogger(store.predictions, segment_dir=folder)
        again.start()
        again.close()
        assert logged(store) == expected(300)
        assert segments(folder) == []


@pytest.mark.parametrize("store_url", [PG], indirect=True)
def test_a_row_the_store_refuses_is_set_aside_and_blocks_nothing(store_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "log"
    with Store.open(store_url, tmp_path / "artifacts") as store:
        logger = PredictionLogger(store.predictions, flush_interval=0.05, segment_dir=folder)
        logger.start()
        logger.put([row(i) for i in range(10)] + [row(10, bad=float("nan"))] + [row(i) for i in range(11, 20)])
        logger.close()
        assert logged(store) == [p for p in expected(20) if p != row(10).prediction_id]
        assert (logger.rejected, logger.written, logger.depth()) == (1, 19, 0)
        assert b'"p0000010"' in (folder / "rejected.jsonl").read_bytes()


def test_a_full_disk_is_logged_as_itself_and_the_rows_land_once_space_is_back(
    sqlite_store: Store, tiny_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    filler = tiny_disk / "filler"
    with open(filler, "wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    logger = PredictionLogger(
        sqlite_store.predictions, flush_interval=0.02, retry_max=0.05, segment_dir=tiny_disk / "log"
    )
    (tiny_disk / "log").mkdir(exist_ok=True)
    logger.start()
    try:
        logger.put([row(i, note="x" * 200) for i in range(100)])
        full = f"no space left on the device holding {tiny_disk / 'log'} (needs about"
        wait_for(lambda: any(full in r.getMessage() for r in caplog.records))
        record = next(r for r in caplog.records if full in r.getMessage())
        assert record.levelname == "ERROR" and record.exc_info is None  # one clear line, no traceback
        assert "They wait in memory" in record.getMessage()
        filler.unlink()
        wait_for(lambda: logger.written == 100)
    finally:
        logger.close()
    assert logged(sqlite_store) == expected(100)


def test_failed_requests_are_tallied_and_reach_the_store_once_per_flush(sqlite_store: Store, tmp_path: Path) -> None:
    logger = PredictionLogger(sqlite_store.predictions, flush_interval=0.05, segment_dir=tmp_path / "log")
    logger.start()
    logger.put([row(0)])
    for _ in range(500):
        logger.count_error("m", 1, "model", "ValueError")
    logger.count_error("m", 1, "input", "validation")
    logger.count_error("m", 2, "input", "x" * 300)  # a cause is cut to the column's 100 characters
    logger.close()
    assert sqlite_store.predictions.error_counts("m") == {"model": 500, "input": 2}
    assert sqlite_store.predictions.error_counts("m", version=2) == {"input": 1}
    with sqlite_store.engine.connect() as conn:
        tallies = conn.execute(text("SELECT count(*) FROM serve_errors")).scalar_one()
    assert tallies <= 4  # one line per (version, kind, cause) and flush, never one per failure
    assert logged(sqlite_store) == expected(1) and segments(tmp_path / "log") == []


def test_error_tallies_left_in_a_segment_are_loaded_by_the_next_logger_once(
    sqlite_store: Store, tmp_path: Path
) -> None:
    folder = tmp_path / "log"
    logger = PredictionLogger(sqlite_store.predictions, flush_interval=0.05, segment_dir=folder)
    logger.start()
    logger.count_error("m", 1, "model", "RuntimeError")
    wait_for(lambda: logger.durable == 1)
    kept = folder / "kept.bin"
    shutil.copy(segments(folder)[0], kept)  # as if the process died after the commit, before deleting it
    logger.close()
    shutil.copy(kept, folder / "00000000000000000000-1-00000001.seg")
    again = PredictionLogger(sqlite_store.predictions, flush_interval=0.05, segment_dir=folder)
    again.start()
    again.close()
    assert sqlite_store.predictions.error_counts("m") == {"model": 1}
