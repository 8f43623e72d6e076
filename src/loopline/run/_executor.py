"""Executors run step tasks (:class:`~loopline.run._task.StepTask`) and hand back futures of their results.

The runner only calls :meth:`Executor.submit` (from one thread) and waits on the
``concurrent.futures.Future`` it returns. Every executor runs the same :func:`execute_step`: in this
process (a thread pool, or the calling thread) or on a Dask cluster (:class:`loopline.run.DaskExecutor`).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

from loopline.run._task import StepResult, StepTask, execute_step


class Executor(ABC):
    """Runs step tasks, possibly concurrently or elsewhere. ``submit`` is called from one thread."""

    @abstractmethod
    def submit(self, task: StepTask) -> Future[StepResult]:
        """Start ``task`` and return a future of its result (a failing step is a ``failed`` result)."""

    def shutdown(self) -> None:  # noqa: B027 - optional hook, most executors hold nothing
        """Release workers; the default has none."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()


class SequentialExecutor(Executor):
    """Runs each task at once in the calling thread (debugging, profiling)."""

    def submit(self, task: StepTask) -> Future[StepResult]:
        future: Future[StepResult] = Future()
        future.set_result(execute_step(task))
        return future


class LocalExecutor(Executor):
    """A thread pool: independent steps overlap (polars, numpy and scikit-learn release the GIL)."""

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers or min(4, os.cpu_count() or 1)
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, task: StepTask) -> Future[StepResult]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="loopline-step")
        return self._pool.submit(execute_step, task)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
