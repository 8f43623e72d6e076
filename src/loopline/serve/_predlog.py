"""The prediction log, off the request path: a queue drained in batches by one thread.

Guarantee: a clean ``close()`` writes everything queued; a crash loses at most the rows
of the last ``flush_interval`` seconds.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loopline.store import PredictionLog, PredictionRow

log = logging.getLogger("loopline.serve")


class PredictionLogger:
    """Buffers prediction rows and appends them to the store in batches."""

    def __init__(self, sink: PredictionLog, *, flush_interval: float = 0.5, batch_size: int = 1000) -> None:
        self.sink = sink
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self._queue: queue.Queue[PredictionRow | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.written = 0
        self.failed = 0

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._drain, name="loopline-predlog", daemon=True)
            self._thread.start()

    def put(self, rows: list[PredictionRow]) -> None:
        """Queue rows; never blocks the request."""
        for row in rows:
            self._queue.put_nowait(row)

    def depth(self) -> int:
        """Rows waiting to be written."""
        return self._queue.qsize()

    def close(self) -> None:
        """Write every queued row, then stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _drain(self) -> None:
        stop = False
        while not stop:
            batch: list[PredictionRow] = []
            try:
                item = self._queue.get(timeout=self.flush_interval)
                if item is None:
                    stop = True
                else:
                    batch.append(item)
                while len(batch) < self.batch_size:
                    item = self._queue.get_nowait()
                    if item is None:
                        stop = True
                        break
                    batch.append(item)
            except queue.Empty:
                pass
            if batch:
                self._write(batch)

    def _write(self, batch: list[PredictionRow]) -> None:
        try:
            self.sink.append(batch)
            self.written += len(batch)
        except Exception:  # keep serving; the failure is counted and logged
            self.failed += len(batch)
            log.exception("could not write %d prediction rows to the store", len(batch))
