"""Steps on a Dask cluster: each :class:`StepTask` runs :func:`execute_step` in a Dask worker process.

Workers read their inputs and write their outputs through the store, so every worker must reach the same
metadata database and artifact store: a PostgreSQL store and object storage (``LOOPLINE_ARTIFACTS_URL``) for
workers on other machines; a SQLite file and a local folder do for workers on this machine. Each worker takes
the database password from its own environment (see :mod:`loopline.run._task`); loopline, and any package
providing the pipeline's step types, must be installed where the workers run.

A worker that dies mid-step is Dask's to handle: the scheduler runs the step again on another worker, up to
its ``distributed.scheduler.allowed-failures`` (then the step fails with the worker deaths named). The runner
records each death in the step's ``attempt``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from loopline.core.cpu import CPUS_ENV
from loopline.core.errors import ConfigError, LooplineError, MissingExtraError
from loopline.run._executor import Executor
from loopline.run._task import StepResult, StepTask, execute_step, failed_result

log = logging.getLogger("loopline.run.dask")

CONNECT_TIMEOUT_S = 10


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise MissingExtraError("distributed", "dask") from None
    return distributed


class DaskExecutor(Executor):
    """Runs steps on a Dask cluster: the scheduler at ``address`` (``dask://HOST:PORT``, ``tcp://…``,
    ``tls://…``), or, without one, a :class:`distributed.LocalCluster` of ``n_workers`` worker processes
    started on first use and closed by :meth:`shutdown`.

    ``allowed_failures`` bounds how many workers may die running one step on that local cluster; a running
    scheduler has its own (``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES``, default 3).
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        n_workers: int | None = None,
        threads_per_worker: int = 1,
        allowed_failures: int = 2,
    ) -> None:
        self.address = address
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.allowed_failures = allowed_failures
        self._client: Any = None
        self._cluster: Any = None
        _distributed()  # a missing extra fails here, before any run starts

    @property
    def client(self) -> Any:
        """The ``distributed.Client``, connected (or the local cluster started) on first use."""
        if self._client is None:
            self._client = self._connect()
        return self._client

    def __enter__(self) -> DaskExecutor:
        """Connect (or start the local cluster) now, so that a wrong address fails before any step runs."""
        _ = self.client
        return self

    def _connect(self) -> Any:
        distributed = _distributed()
        if self.address is None:
            import dask

            with dask.config.set({"distributed.scheduler.allowed-failures": self.allowed_failures}):
                self._cluster = distributed.LocalCluster(
                    n_workers=self.n_workers,
                    threads_per_worker=self.threads_per_worker,
                    processes=True,
                    host="127.0.0.1",  # loopback only
                    dashboard_address=":0",  # the scheduler's HTTP endpoints on a free port, no dashboard
                    scheduler_kwargs={"dashboard": False},
                    silence_logs=logging.ERROR,
                    env={CPUS_ENV: str(self.threads_per_worker)},  # each worker's core budget: its own threads
                )
            return distributed.Client(self._cluster)
        address = (
            "tcp://" + self.address.removeprefix("dask://") if self.address.startswith("dask://") else self.address
        )
        try:
            client = distributed.Client(address, timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {address}: {exc}",
                key="executor",
                hint="Start one with `dask scheduler` (and workers with `dask worker tcp://HOST:PORT`), "
                "or fix the address in --executor dask://HOST:PORT.",
            ) from None
        if not client.scheduler_info().get("workers"):
            log.warning("the Dask scheduler at %s has no worker yet: steps wait until one connects", address)
        return client

    def submit(self, task: StepTask) -> Future[StepResult]:
        _check_shareable(task)
        future: Future[StepResult] = Future()
        key = f"loopline:{task.step}-{uuid.uuid4().hex[:12]}"  # the dashboard groups by "loopline:STEP"
        try:
            remote = self.client.submit(execute_step, task, key=key, pure=False)
        except LooplineError:
            raise
        except Exception as exc:  # the task (a function step's function) does not pickle
            raise ConfigError(
                f"step {task.step!r} cannot be sent to a Dask worker: {type(exc).__name__}: {exc}",
                key=f"steps.{task.step}",
                hint="Define the step's function at module level, without captured locks, connections or open "
                "files, or ship it as a step type registered by a `loopline.steps` entry point.",
            ) from None
        submitted = datetime.now(UTC)
        remote.add_done_callback(lambda done: self._settle(task, done, future, submitted))
        return future

    def _settle(self, task: StepTask, remote: Any, future: Future[StepResult], submitted: datetime) -> None:
        """Hand the Dask future's outcome to ours (runs in Dask's callback thread), then release it."""
        try:
            lost = self._lost_workers(remote.key)
            if remote.status == "finished":
                result: StepResult = remote.result()
                future.set_result(replace(result, lost_workers=lost) if lost else result)
            else:
                future.set_result(self._failure(task, remote, lost, submitted))
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
        finally:
            remote.release()

    def _failure(self, task: StepTask, remote: Any, lost: int, submitted: datetime) -> StepResult:
        elapsed = (datetime.now(UTC) - submitted).total_seconds()
        exc = remote.exception() if remote.status == "error" else None
        if exc is not None and type(exc).__name__ == "KilledWorker":
            error: BaseException = LooplineError(
                f"{max(lost, 1)} Dask worker(s) died while running it (the scheduler's allowed-failures is "
                f"{getattr(exc, 'allowed_failures', '?')}); the last was "
                f"{getattr(getattr(exc, 'last_worker', None), 'address', '?')}.",
                hint="Look for the cause in the workers' logs (memory limit, a crash in native code, os._exit).",
            )
        else:
            error = exc or LooplineError(f"its Dask task ended as {remote.status!r}.")
        return replace(failed_result(task.step, error, submitted, elapsed), lost_workers=lost)

    def _lost_workers(self, key: str) -> int:
        """How many workers died while running the task ``key`` (the scheduler's count), 0 if unknown."""

        def suspicious(key: str, dask_scheduler: Any = None) -> int:
            state = dask_scheduler.tasks.get(key)
            return int(state.suspicious) if state is not None else 0

        try:
            return int(self.client.run_on_scheduler(suspicious, key))
        except Exception as exc:  # a scheduler that refuses to run functions: the count is only informative
            log.debug("cannot ask the scheduler about task %s: %s", key, exc)
            return 0

    def shutdown(self) -> None:
        """Disconnect; a local cluster started here stops with its workers."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def _check_shareable(task: StepTask) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(task.store_url)
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise ConfigError(
            f"step {task.step!r} cannot run on Dask workers: the store is an in-memory SQLite database, which "
            "no other process can open.",
            key="executor",
            hint="Use a store file (sqlite:///path/loopline.db) or PostgreSQL, or --executor local.",
        )


def dask_launcher() -> Callable[[list[Callable[[], None]]], None] | None:
    """Inside a task on a Dask worker: a launcher that runs jobs as tasks of the same cluster (the calling task
    leaves its worker's thread pool while it waits, so the jobs can use that thread too); None elsewhere.

    How a tune step run by the Dask executor spreads its ``n_jobs`` trial workers over the cluster."""
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return None

    def launch(jobs: list[Callable[[], None]]) -> None:
        from distributed import worker_client

        with worker_client() as client:
            client.gather([client.submit(job, pure=False) for job in jobs])

    return launch
