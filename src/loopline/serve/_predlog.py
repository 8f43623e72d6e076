"""The prediction log, off the request path: rows go to append-only segment files, then to the store.

How it works: ``put`` appends rows to an in-memory buffer (a lock and a list, never any I/O). A *writer*
thread, every ``flush_interval`` seconds or as soon as ``batch_size`` rows are buffered, appends the buffered
rows to the current segment under ``segment_dir`` and calls ``fsync`` on it. A *loader* thread inserts the fsynced
rows into the store in batches of ``batch_size`` and deletes a segment once it is rotated and fully loaded.
A segment (``<start ns>-<pid>-<seq>.seg``, names sort in write order) holds one row per line,
``<crc32 of the JSON, 8 hex digits> <JSON>``; it is rotated after ``segment_bytes`` bytes or ``segment_age``
seconds.

Guarantees:

- **Durable when**: a row is on disk once the writer's first ``fsync`` after its ``put`` returns, at most
  about ``flush_interval`` seconds later (sooner when ``batch_size`` rows are waiting). ``durable`` counts
  the rows made durable, in ``put`` order.
- **A crash** (``kill -9``, power loss) loses at most the rows still in memory: those put since the last
  flush, i.e. the rows of the last ``flush_interval`` (plus the time of one write and fsync). Everything on
  disk is loaded by the next logger on the same folder, before its own rows.
- **A clean** ``close()`` **loses nothing**: it flushes the buffer to a segment, then loads every segment into
  the store. If the store stays unreachable for ``close_timeout`` seconds, ``close()`` returns anyway and
  the rows wait, durable, in their segments for the next start.
- **Store outages** drop nothing: the segments stay on disk and the loader retries with exponential backoff
  capped at ``retry_max`` seconds (``retries`` counts the failed attempts).
- **Exactly once**: the loader inserts only ids the store does not hold yet (``PredictionLog.append_new``),
  so loading a segment again after a crash between the commit and its deletion inserts nothing twice.
- **Torn lines** (a crash in the middle of a write) fail their checksum or JSON parse: they are skipped,
  counted in ``skipped`` and logged, never loaded in part.
- **Rows the store refuses** for their content (a data or integrity error, such as ``NaN`` in a PostgreSQL
  JSON column) are set aside in ``segment_dir/rejected.jsonl``, counted in ``rejected``; they block nothing.
- **Ordering**: rows are written, and loaded, in ``put`` order; segments left by earlier processes are
  loaded first, in name order.
- Several processes may share ``segment_dir``: each holds an ``flock`` on the segment it is writing, and at
  start a logger takes over only the segments nobody holds (those of finished or dead processes).

``depth()`` is ``buffered()`` (rows not durable yet) plus ``pending()`` (durable rows not in the store yet).

Failed requests are not rows: ``count_error`` adds one to an in-memory tally per (model, version, kind, cause);
the writer turns each non-zero tally into one :class:`~loopline.store.ErrorCount` line of the next segment it
writes, so the failures reach the store by the same durable, exactly-once path, one line per tally and flush
whatever the failure rate.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.core.diskspace import disk_full_error, is_disk_full
from loopline.core.errors import DiskFullError
from loopline.core.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from loopline.store import ErrorCount, PredictionLog, PredictionRow

    Record = PredictionRow | ErrorCount

log = logging.getLogger("loopline.serve")

SUFFIX = ".seg"
REJECTED = "rejected.jsonl"


@dataclass
class _Segment:
    """One segment file: ``size`` bytes (``lines`` lines) are durable, ``loaded`` (``done``) are in the store."""

    path: Path
    size: int = 0
    lines: int = 0
    loaded: int = 0
    done: int = 0
    sealed: bool = False  # no more writes: rotated, or left by an earlier process
    lock_fd: int | None = None  # held flock of a segment taken over from an earlier process


class PredictionLogger:
    """Logs prediction rows durably on local disk, then loads them into the store (see the module doc).

    Thread-safe; ``put`` never blocks on I/O.
    """

    def __init__(
        self,
        sink: PredictionLog,
        *,
        flush_interval: float = 0.5,
        batch_size: int = 1000,
        segment_dir: str | Path | None = None,
        segment_bytes: int = 64 * 1024 * 1024,
        segment_age: float = 60.0,
        retry_max: float = 30.0,
        close_timeout: float = 30.0,
    ) -> None:
        self.sink = sink
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.segment_dir = segment_dir
        self.segment_bytes = segment_bytes
        self.segment_age = segment_age
        self.retry_max = retry_max
        self.close_timeout = close_timeout
        self.durable = 0  # rows fsynced to a segment by this logger
        self.written = 0  # rows loaded into the store (new or already there)
        self.skipped = 0  # torn or corrupt lines
        self.rejected = 0  # rows the store refused, set aside in rejected.jsonl
        self.failed = 0  # rows lost: the disk refused them until close gave up
        self.retries = 0  # failed load attempts (store outages)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._buffer: list[PredictionRow] = []
        self._errors: dict[tuple[str, int, str, str], list[Any]] = {}  # key -> [count, first at]
        self._segments: list[_Segment] = []
        self._stopping = False
        self._deadline: float | None = None  # set once the writer has stopped, by close()
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- public surface --------------------------------------------------------------------------

    def start(self) -> None:
        """Take over leftover segments, then start the writer and loader threads (idempotent)."""
        if self._threads:
            return
        self.dir_ = Path(self.segment_dir or Settings.from_env().home / "predlog")
        self.dir_.mkdir(parents=True, exist_ok=True)
        self._prefix = f"{time.time_ns():020d}-{os.getpid()}"
        self._seq, self._fd, self._opened, self._seg = 0, -1, 0.0, _Segment(self.dir_)
        self._stopping, self._deadline = False, None
        self._closing.clear()
        self._adopt_leftovers()
        for target, name in ((self._write_loop, "writer"), (self._load_loop, "loader")):
            thread = threading.Thread(target=target, name=f"loopline-predlog-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def put(self, rows: list[PredictionRow]) -> None:
        """Buffer ``rows`` for the writer; never blocks on I/O."""
        with self._lock:
            self._buffer.extend(rows)
            if len(self._buffer) >= self.batch_size:
                self._cond.notify()

    def count_error(self, model: str, version: int, kind: str, cause: str) -> None:
        """Count one failed request (``kind`` ``input`` or ``model``); never blocks on I/O."""
        key = (model, version, kind, cause[:100])
        with self._lock:
            tally = self._errors.get(key)
            if tally is None:
                self._errors[key] = [1, datetime.now(UTC)]
            else:
                tally[0] += 1

    def buffered(self) -> int:
        """Rows in memory, not durable yet."""
        with self._lock:
            return len(self._buffer)

    def pending(self) -> int:
        """Rows durable in a segment but not yet in the store."""
        with self._lock:
            return self._pending()

    def depth(self) -> int:
        """Rows not in the store yet: ``buffered() + pending()``."""
        with self._lock:
            return len(self._buffer) + self._pending()

    def close(self) -> None:
        """Flush every buffered row to a segment, load the segments into the store, stop the threads.

        Returns after at most ``close_timeout`` seconds of store outage; unloaded rows stay on disk.
        """
        if not self._threads:
            return
        writer, loader = self._threads
        with self._lock:
            self._stopping = True
            self._cond.notify()
        writer.join()
        self._deadline = time.monotonic() + self.close_timeout
        self._closing.set()
        self._wake.set()
        loader.join()
        self._threads = []
        for seg in self._segments:
            _unlock(seg)
        self._segments = []

    # -- writer ----------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        delay, give_up = 0.0, float("inf")
        while True:
            with self._lock:
                if not self._stopping and len(self._buffer) < self.batch_size:
                    self._cond.wait(self.flush_interval)
                rows, self._buffer = self._buffer, []
                errors, self._errors = self._errors, {}
                stopping = self._stopping
            records: list[Record] = [*rows, *_tallies(errors)] if errors else list(rows)
            if stopping and give_up == float("inf"):
                give_up = time.monotonic() + self.close_timeout
            if records and not self._write(records):
                if time.monotonic() < give_up:  # keep the rows (in order) and try again after a pause
                    with self._lock:
                        self._buffer[:0] = rows
                        _merge(self._errors, errors)
                    delay = min(max(2 * delay, self.flush_interval), self.retry_max)
                    time.sleep(delay)
                    continue
                self._lose(records)
            delay = 0.0
            if stopping:
                self._seal()
                return

    def _write(self, rows: list[Record]) -> bool:
        """Append ``rows`` to the current segment and fsync it; False when the disk refused them."""
        data = b"".join(_encode(row) for row in rows)
        try:
            seg = self._current()
            _write_all(self._fd, data)
            os.fsync(self._fd)
        except OSError as exc:
            if is_disk_full(exc):  # reported as itself, without a traceback: the rows wait in memory
                full = disk_full_error(self.dir_, len(data))
                log.error("could not write %d prediction rows: %s They wait in memory; retrying.", len(rows), full)
            else:
                log.exception("could not write %d prediction rows to %s; retrying", len(rows), self.dir_)
            self._abandon()
            return False
        with self._lock:
            seg.size += len(data)
            seg.lines += len(rows)
            self.durable += len(rows)
        self._wake.set()
        if seg.size >= self.segment_bytes or time.monotonic() - self._opened >= self.segment_age:
            self._seal()
        return True

    def _current(self) -> _Segment:
        """The segment being written, opened (locked, then named, then the folder fsynced) if none is."""
        if self._fd >= 0:
            return self._seg
        self._seq += 1
        path = self.dir_ / f"{self._prefix}-{self._seq:08d}{SUFFIX}"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)  # before the name is visible to another process's start()
        os.replace(tmp, path)
        _fsync_dir(self.dir_)
        seg = _Segment(path)
        with self._lock:
            self._segments.append(seg)
        self._fd, self._opened, self._seg = fd, time.monotonic(), seg
        return seg

    def _seal(self) -> None:
        """Stop writing the current segment (it is loaded, then deleted, by the loader)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            with self._lock:
                self._seg.sealed = True
            self._wake.set()

    def _abandon(self) -> None:
        """After a failed write: cut the segment back to its durable size and seal it."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._seg.size)
            self._seal()

    def _lose(self, rows: list[Record]) -> None:
        with self._lock:
            self.failed += len(rows)
        log.error("lost %d prediction rows: the disk refused them until close() gave up", len(rows))

    # -- loader ----------------------------------------------------------------------------------

    def _adopt_leftovers(self) -> None:
        """Queue the segments of earlier processes that nobody writes any more, oldest first."""
        for tmp in self.dir_.glob("*.tmp"):  # a crash between creating a segment and naming it
            fd = _try_lock(tmp)
            if fd is not None:
                tmp.unlink(missing_ok=True)
                os.close(fd)
        for path in sorted(self.dir_.glob(f"*{SUFFIX}")):
            fd = _try_lock(path)
            if fd is None:  # its writer is alive, or another logger took it over
                continue
            data = _read(path, 0, None)
            lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
            self._segments.append(_Segment(path, size=len(data), lines=lines, sealed=True, lock_fd=fd))
            log.info("loading prediction log segment %s left by an earlier process", path.name)

    def _load_loop(self) -> None:
        delay = 0.0
        while True:
            self._pause(delay)
            try:
                self._load_all()
                delay = 0.0
            except Exception as exc:  # the store is unreachable: the rows wait on disk
                delay = min(max(2 * delay, min(0.1, self.retry_max)), self.retry_max)
                with self._lock:
                    self.retries += 1
                log.warning("could not load prediction rows (%s); retrying in %.1f s", _reason(exc), delay)
            if self._deadline is not None and (self._idle() or time.monotonic() >= self._deadline):
                if not self._idle():
                    log.warning("%d prediction rows stay in %s until the next start", self.pending(), self.dir_)
                return

    def _pause(self, delay: float) -> None:
        """Wait for new rows (at most ``flush_interval``), or back off ``delay`` seconds after a failure."""
        if not delay:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
        elif self._deadline is None:
            self._closing.wait(delay)  # new rows do not cut an outage's backoff short; close() does
        else:
            time.sleep(min(delay, max(self._deadline - time.monotonic(), 0.0)))

    def _pending(self) -> int:
        """Durable rows not in the store (call with the lock held)."""
        return sum(seg.lines - seg.done for seg in self._segments)

    def _idle(self) -> bool:
        with self._lock:
            return all(seg.loaded >= seg.size for seg in self._segments) and not any(
                seg.sealed for seg in self._segments
            )

    def _load_all(self) -> None:
        with self._lock:
            work = list(self._segments)
        for seg in work:
            self._load(seg)

    def _load(self, seg: _Segment) -> None:
        """Load the durable, unloaded part of ``seg``; delete it when it is sealed and fully loaded."""
        with self._lock:
            start, end, sealed = seg.loaded, seg.size, seg.sealed
        if start < end:
            for rows, lines, offset in self._batches(seg.path, start, end):
                stored = self._insert(rows)
                with self._lock:
                    seg.loaded, seg.done = offset, seg.done + lines
                    self.written += stored
        if sealed:
            seg.path.unlink(missing_ok=True)
            _unlock(seg)
            with self._lock:
                self._segments.remove(seg)

    def _batches(self, path: Path, start: int, end: int) -> Iterator[tuple[list[Record], int, int]]:
        """(rows, lines read, offset after them) for each batch of the lines in ``[start, end)``."""
        rows: list[Record] = []
        lines, offset = 0, start
        data = _read(path, start, end)
        for line in data.splitlines(keepends=True):
            offset += len(line)
            lines += 1
            row = _decode(line)
            if row is None:
                self._skip(path, offset - len(line))
            else:
                rows.append(row)
            if len(rows) >= self.batch_size:
                yield rows, lines, offset
                rows, lines = [], 0
        if lines:
            yield rows, lines, offset

    def _skip(self, path: Path, offset: int) -> None:
        with self._lock:
            self.skipped += 1
        log.warning("skipped a torn or corrupt prediction log line in %s at byte %d", path.name, offset)

    def _insert(self, rows: list[Record]) -> int:
        """Insert ``rows`` (those not in the store yet); return how many the store holds now."""
        from sqlalchemy.exc import DataError, IntegrityError

        from loopline.store import ErrorCount, PredictionRow

        predictions = [row for row in rows if isinstance(row, PredictionRow)]
        errors = [row for row in rows if isinstance(row, ErrorCount)]
        try:
            self.sink.append_new(predictions, errors)
        except (DataError, IntegrityError):  # a row's content, not the connection: find it, set it aside
            if len(rows) == 1:
                self._reject(rows[0])
                return 0
            return sum(self._insert([row]) for row in rows)
        return len(rows)

    def _reject(self, row: Record) -> None:
        with open(self.dir_ / REJECTED, "ab") as handle:
            handle.write(_encode(row))
            handle.flush()
            os.fsync(handle.fileno())
        with self._lock:
            self.rejected += 1
        what = f"prediction {row.prediction_id}" if hasattr(row, "prediction_id") else f"error tally {row.error_id}"
        log.error("the store refused %s; it is kept in %s", what, self.dir_ / REJECTED)


# -- the segment format ------------------------------------------------------------------------


def _tallies(errors: dict[tuple[str, int, str, str], list[Any]]) -> list[ErrorCount]:
    """One record per tally of failed requests."""
    from loopline.store import ErrorCount

    return [
        ErrorCount(uuid.uuid4().hex, model, version, kind, cause, first, count)
        for (model, version, kind, cause), (count, first) in errors.items()
    ]


def _merge(
    into: dict[tuple[str, int, str, str], list[Any]], errors: dict[tuple[str, int, str, str], list[Any]]
) -> None:
    """Add the tallies ``errors`` (not written) back to ``into`` (counted since)."""
    for key, (count, first) in errors.items():
        tally = into.setdefault(key, [0, first])
        tally[0] += count
        tally[1] = min(tally[1], first)


def _encode(row: Record) -> bytes:
    record = {name: getattr(row, name) for name in row.__dataclass_fields__}
    record["created_at"] = row.created_at.isoformat()
    body = json.dumps(record, separators=(",", ":"), default=_plain).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _decode(line: bytes) -> Record | None:
    """The row (a prediction or an error tally) on ``line``, or None when the line is torn or corrupt."""
    from loopline.store import ErrorCount, PredictionRow

    if len(line) < 11 or line[8:9] != b" " or not line.endswith(b"\n"):
        return None
    body = line[9:-1]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        record = json.loads(body)
        record["created_at"] = datetime.fromisoformat(record["created_at"])
        return ErrorCount(**record) if "error_id" in record else PredictionRow(**record)
    except (ValueError, TypeError, KeyError):
        return None


def _reason(exc: Exception) -> str:
    """The driver's first line (not SQLAlchemy's statement and row parameters, which can be huge)."""
    if isinstance(exc, DiskFullError):
        return str(exc)
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300] if lines else ''}"


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python values; anything else as its string."""
    for method in ("item", "tolist"):
        if callable(getattr(value, method, None)):
            return getattr(value, method)()
    return str(value)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read(path: Path, start: int, end: int | None) -> bytes:
    """Bytes ``[start, end)`` of ``path``; nothing when another process has loaded and deleted it."""
    try:
        with open(path, "rb") as handle:
            handle.seek(start)
            return handle.read(-1 if end is None else end - start)
    except FileNotFoundError:
        return b""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _try_lock(path: Path) -> int | None:
    """An open descriptor of ``path`` holding its flock, or None when someone else holds it (or it is gone)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _unlock(seg: _Segment) -> None:
    if seg.lock_fd is not None:
        os.close(seg.lock_fd)
        seg.lock_fd = None
