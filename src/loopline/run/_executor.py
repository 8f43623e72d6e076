"""Executors run step callables; the runner only needs ``submit`` returning a Future.

A Dask executor plugs in by wrapping ``client.submit`` into a ``concurrent.futures.Future``.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class Executor(ABC):
    """Runs callables, possibly concurrently. Implementations must be usable from one thread."""

    @abstractmethod
    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        """Start ``fn`` and return a future of its result."""

    def shutdown(self) -> None:  # noqa: B027 - optional hook, most executors hold nothing
        """Release workers; the default has none."""


class SequentialExecutor(Executor):
    """Runs each callable at once in the calling thread (debugging, profiling)."""

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn())
        except BaseException as exc:
            future.set_exception(exc)
        return future


class LocalExecutor(Executor):
    """A thread pool: independent steps overlap (polars, numpy and scikit-learn release the GIL)."""

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers or min(4, os.cpu_count() or 1)
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="loopline-step")
        return self._pool.submit(fn)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
