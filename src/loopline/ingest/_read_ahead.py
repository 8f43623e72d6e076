"""Read ahead: an iterator's next items produced in a background thread while the consumer works."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any


class ReadAhead(Iterator[Any]):
    """Run an iterator in a background thread, ``depth`` items ahead of the consumer.

    Errors in the producer (its ``close`` included) are raised in the consumer, and a consumer whose
    producer thread died without a word stops waiting (a watchdog); :meth:`close` (or garbage collection,
    or leaving a ``with`` block) stops the producer and waits for it.
    """

    _END = object()

    def __init__(self, items: Iterator[Any], depth: int = 1) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._produce, args=(items,), name="loopline-read-ahead", daemon=True)
        self._thread.start()

    def _produce(self, items: Iterator[Any]) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the consumer
            self._error = exc
        finally:
            try:
                close = getattr(items, "close", None)
                if close is not None:
                    close()
            except BaseException as exc:  # closing the stream failed: the consumer hears of it too
                self._error = self._error or exc
            self._put(self._END)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __next__(self) -> Any:
        while True:
            try:
                item = self._queue.get(timeout=0.2)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():  # the watchdog: no item will come
                    item = self._END
                    self._error = self._error or RuntimeError("the read-ahead thread stopped without a result")
                    break
        if item is self._END:
            self._thread.join()
            if self._error is not None:
                raise self._error
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop the producer and wait for it."""
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self._stop.set()
