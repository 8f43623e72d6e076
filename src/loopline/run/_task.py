"""The serialisable step boundary: the runner hands an executor a :class:`StepTask`, gets a :class:`StepResult`.

A task holds names and references only (step type name, config as JSON, input references, the store's
location), so it pickles with the standard :mod:`pickle`; the one exception is a Python function step
(:class:`~loopline.core.step.FunctionStep`), which carries its function (Dask pickles it with cloudpickle).
:func:`execute_step` is the worker side: it opens the store from the location, runs the step and saves its
outputs as artifacts. It writes no run or step record: the scheduler side (the runner) writes them all.

Credentials never travel in a task: its store URL has no password. A worker takes it from its own
environment: libpq reads ``PGPASSWORD`` (or ``~/.pgpass``) by itself, or set ``LOOPLINE_STORE_URL`` in the
worker's environment to a URL with a password that names the same database (backend, host, port, database
and user).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import URL

from loopline.core.errors import ConfigError, LooplineError
from loopline.core.settings import STORE_URL_ENV
from loopline.core.step import STEP_TYPES, FunctionStep, StepContext, StepType
from loopline.run._values import ValueCache, is_ref, save_value

if TYPE_CHECKING:
    from loopline.store import Store

log = logging.getLogger("loopline.run")

Ref = dict[str, str]
"""An artifact reference ``{"digest", "kind"}`` (see :mod:`loopline.run._values`)."""

TaskInput = Ref | dict[str, Ref]
"""One input: a reference, or all of a producer's outputs by name (``input_mode = "all"``, bare step name)."""

TRACEBACK_FRAMES = 5


@dataclass(frozen=True)
class StepTask:
    """Everything a worker needs to run one step, and nothing bound to a live object.

    ``config`` is the validated config in its JSON form (a worker in another process validates it again);
    ``store_url`` is the metadata store's URL without its password and ``artifacts`` the artifact store's
    location, both as :meth:`loopline.store.Store.open` takes them. ``function`` is set only for a Python
    function step. ``validated`` is the runner's own config object, used as it is when the task runs in the
    runner's process; it is never pickled, so a task that travels is validated from ``config`` where it runs.
    """

    run_id: str
    step: str
    step_type: str
    config: dict[str, Any]
    inputs: tuple[TaskInput, ...]
    params: dict[str, Any]
    attempt: int
    store_url: str
    artifacts: str
    function: FunctionStep | None = None
    validated: BaseModel | None = field(default=None, compare=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "validated": None}


@dataclass(frozen=True)
class StepResult:
    """What running a task gave: ``status`` is ``succeeded`` (with ``outputs``) or ``failed`` (with ``error``).

    ``worker`` names the process that ran it (``host/pid``); ``lost_workers`` counts the workers that died
    while running it before this result (a Dask cluster runs such a task again elsewhere). ``cause`` is the
    exception itself, kept only in the process that ran the step (it is never pickled).
    """

    step: str
    status: str
    outputs: dict[str, Ref]
    started_at: datetime
    duration_s: float
    error: str | None = None
    traceback: str | None = None
    worker: str = ""
    lost_workers: int = 0
    cause: BaseException | None = field(default=None, compare=False, repr=False)

    @property
    def record_error(self) -> str | None:
        """The error as a step record keeps it: the message, then the short traceback if any."""
        if self.error is None:
            return None
        return self.error + (f"\n{self.traceback}" if self.traceback else "")

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "cause": None}


def failed_result(step: str, exc: BaseException, started_at: datetime, duration_s: float) -> StepResult:
    """A failed result for ``exc``: a loopline error as its message, anything else with a short traceback."""
    if isinstance(exc, LooplineError):
        message, trace = str(exc), None
    else:
        message = f"{type(exc).__name__}: {exc}"
        trace = "".join(traceback.format_exception(exc, limit=TRACEBACK_FRAMES))
    return StepResult(step, "failed", {}, started_at, duration_s, message, trace, worker_name(), cause=exc)


def execute_step(task: StepTask) -> StepResult:
    """Run one step where this function is called: load its inputs from the store, run it, save its outputs.

    Never raises for a failing step: the failure comes back as a ``failed`` result with the error text.
    """
    started, clock = datetime.now(UTC), time.perf_counter()
    try:
        outputs = _run(task)
    except Exception as exc:
        return failed_result(task.step, exc, started, time.perf_counter() - clock)
    return StepResult(task.step, "succeeded", outputs, started, time.perf_counter() - clock, worker=worker_name())


def _run(task: StepTask) -> dict[str, Ref]:
    step_type = resolve_step_type(task)
    config = task.validated if task.validated is not None else _validated(step_type, task)
    store, values = _resources(task)
    inputs = [_load(store, values, item) for item in task.inputs]
    ctx = StepContext(task.run_id, task.step, dict(task.params), store, _step_log(task.step))
    produced = step_type.run(config, inputs, ctx)
    return _persist(task.step, step_type, produced, store, values)


@lru_cache(maxsize=4096)
def _step_log(step: str) -> logging.Logger:
    """The logger of step ``step`` (``loopline.run.<step>``); logging's own lookup takes a global lock."""
    return log.getChild(step)


def resolve_step_type(task: StepTask) -> StepType[Any]:
    """The task's step type: its function step, or the registered type of that name in this process."""
    if task.function is not None:
        return task.function
    try:
        return STEP_TYPES.get(task.step_type)
    except ConfigError:
        raise ConfigError(
            f"step {task.step!r} has type {task.step_type!r}, which is not registered in the worker process "
            f"{worker_name()}.",
            key=f"steps.{task.step}.type",
            hint="Install the package that provides it (its `loopline.steps` entry point) wherever workers run.",
        ) from None


def _validated(step_type: StepType[Any], task: StepTask) -> BaseModel:
    from loopline.core.pipeline import config_error_from_validation

    try:
        return step_type.Config.model_validate(task.config)
    except ValidationError as exc:
        raise config_error_from_validation(exc, prefix=f"steps.{task.step}", model=step_type.Config) from None
    except ConfigError as exc:  # nested config (a source, an estimator) keyed relative to the step
        raise exc.under(f"steps.{task.step}") from None


def _load(store: Store, values: ValueCache, item: TaskInput) -> Any:
    if is_ref(item):
        return values.load(store, cast(Ref, item))
    return {name: values.load(store, ref) for name, ref in cast(dict[str, Ref], item).items()}


def _persist(
    step: str, step_type: StepType[Any], produced: Mapping[str, Any], store: Store, values: ValueCache
) -> dict[str, Ref]:
    declared = step_type.outputs
    if not (type(produced) is dict or isinstance(produced, Mapping)) or produced.keys() != set(declared):
        got = sorted(produced) if isinstance(produced, Mapping) else type(produced).__name__
        raise ConfigError(
            f"step {step!r} returned outputs {got}, but its type declares {list(declared)}.",
            key=f"steps.{step}.type",
            hint="Return a mapping with exactly the declared output names (the step type's `outputs`).",
        )
    outputs = {}
    for output in declared:
        outputs[output] = save_value(store, produced[output])
        values.put(outputs[output], produced[output])
    return outputs


def worker_name() -> str:
    """``host/pid`` of this process (computed once per process: a forked child gets its own)."""
    pid = os.getpid()
    if _WORKER_NAME[0] != pid:
        _WORKER_NAME[:] = [pid, f"{socket.gethostname()}/{pid}"]
    return str(_WORKER_NAME[1])


_WORKER_NAME: list[Any] = [None, ""]


# -- where a step finds its store ----------------------------------------------------------------------
# A worker process keeps one Store per location. A runner in this process lends its own open store and its
# run's value cache (values loaded once, shared by every consumer) while it runs: in-process executors use them.

_LOCK = threading.Lock()
_OPENED: dict[tuple[str, str], Store] = {}
_LENT: dict[tuple[str, str], list[Store]] = {}
_RUN_VALUES: dict[str, ValueCache] = {}


def store_location(store: Store) -> tuple[str, str]:
    """``(url, artifacts)`` that open ``store`` again from another process: the URL has no password, a SQLite
    file and a local artifact folder are absolute paths, an artifact URL (``s3://…``) is kept as it is."""
    url = store.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        url = url.set(database=str(Path(url.database).expanduser().resolve()))
    root = store.artifacts.location
    location = root if "://" in root else str(Path(root).expanduser().resolve())  # an fsspec URL stays as it is
    bare = URL.create(url.drivername, url.username, None, url.host, url.port, url.database, url.query)
    return bare.render_as_string(hide_password=False), str(location)


@contextmanager
def lend_store(store: Store, run_id: str) -> Iterator[tuple[tuple[str, str], ValueCache]]:
    """While the block runs, steps of ``run_id`` executed in this process use ``store`` and one value cache.

    Yields the store's location and the cache."""
    location = store_location(store)
    values = ValueCache()
    with _LOCK:
        _LENT.setdefault(location, []).append(store)
        _RUN_VALUES[run_id] = values
    try:
        yield location, values
    finally:
        with _LOCK:
            _LENT[location].remove(store)
            if not _LENT[location]:
                del _LENT[location]
            if _RUN_VALUES.get(run_id) is values:
                del _RUN_VALUES[run_id]


def _resources(task: StepTask) -> tuple[Store, ValueCache]:
    location = (task.store_url, task.artifacts)
    with _LOCK:
        lent = _LENT.get(location)
        values = _RUN_VALUES.get(task.run_id) if lent else None
        if lent:
            return lent[-1], values or ValueCache()
        store = _OPENED.get(location)
        if store is None:
            store = _OPENED[location] = _open(*location)
    return store, ValueCache()


def _open(url: str, artifacts: str) -> Store:
    from loopline.store import Store

    return Store.open(with_password(url), artifacts)


def with_password(url: str, environ: Mapping[str, str] | None = None) -> str:
    """``url`` with the password of ``LOOPLINE_STORE_URL`` when that names the same database, else ``url``
    unchanged (libpq then reads ``PGPASSWORD`` or ``~/.pgpass`` itself)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    env = (os.environ if environ is None else environ).get(STORE_URL_ENV)
    parsed = make_url(url)
    if not env or parsed.password is not None:
        return url
    try:
        own = make_url(env)
    except ArgumentError:
        return url
    same = own.get_backend_name() == parsed.get_backend_name() and (own.host, own.port, own.database, own.username) == (
        parsed.host,
        parsed.port,
        parsed.database,
        parsed.username,
    )
    if not same or own.password is None:
        return url
    return parsed.set(password=own.password).render_as_string(hide_password=False)
