"""Run a pipeline's DAG: independent steps concurrently, unchanged steps from the cache,
every run and step recorded in the store, failed runs resumable.

This is the scheduler side of the step boundary: the DAG, cache lookups, outcomes, progress and every run
and step record live here. Each step that must run becomes a :class:`~loopline.run._task.StepTask` for the
executor, which runs :func:`~loopline.run._task.execute_step` wherever it runs steps.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.core.errors import ConfigError, StepError
from loopline.core.hashing import fingerprint
from loopline.core.pipeline import BoundStep, Pipeline
from loopline.core.step import FunctionStep
from loopline.run._executor import Executor, LocalExecutor
from loopline.run._heartbeat import Heartbeat
from loopline.run._resume import plan_resume
from loopline.run._task import StepResult, StepTask, TaskInput, failed_result, lend_store
from loopline.run._values import ValueCache

if TYPE_CHECKING:
    from loopline.store import Store

log = logging.getLogger("loopline.run")

FLUSH_ROWS = 64
FLUSH_SECONDS = 0.25

ProgressHook = Callable[[str, str], None]  # (step, event) with event in started|succeeded|cached|reused|failed


@dataclass
class StepOutcome:
    """What happened to one step in a run; ``attempt`` is the one its record carries (the run's attempt, plus
    one per worker that died running the step), ``worker`` the process that ran it."""

    name: str
    status: str  # succeeded | cached | reused | failed | skipped
    duration_s: float = 0.0
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    error: str | None = None
    attempt: int = 1
    worker: str | None = None


@dataclass
class RunResult:
    """A finished run: its id, status and per-step outcomes; values load on demand."""

    run_id: str
    status: str
    steps: dict[str, StepOutcome]
    error: str | None
    _values: ValueCache
    _store: Store
    changed: tuple[str, ...] = ()  # resumed with an edited pipeline: the steps that ran a config the run had not

    def output(self, step: str, name: str | None = None) -> Any:
        """The value a step produced (its first output unless ``name`` is given)."""
        outcome = self.steps.get(step)
        if outcome is None or not outcome.outputs:
            raise ConfigError(
                f"step {step!r} produced no output in run {self.run_id}.",
                hint=f"Steps with outputs: {', '.join(s for s, o in self.steps.items() if o.outputs)}.",
            )
        return self._values.load(self._store, outcome.outputs[name or next(iter(outcome.outputs))])


@dataclass(frozen=True)
class _Submitted:
    """A step handed to the executor, as the scheduler remembers it until its result arrives."""

    name: str
    key: str
    config: dict[str, Any]
    started: datetime
    clock: float


class Runner:
    """Runs pipelines against a store with an executor (a thread pool by default)."""

    def __init__(
        self,
        store: Store,
        executor: Executor | None = None,
        *,
        cache: bool = True,
        progress: ProgressHook | None = None,
    ) -> None:
        self.store = store
        self.executor = executor or LocalExecutor()
        self.cache = cache
        self.progress = progress or (lambda step, event: None)

    def run(
        self,
        pipeline: Pipeline,
        params: Mapping[str, Any] | None = None,
        *,
        resume: str | None = None,
        targets: list[str] | None = None,
        raise_on_error: bool = True,
    ) -> RunResult:
        """Run every step (or only what ``targets`` need); with ``resume``, continue that run (failed or stale;
        one whose owner is alive is refused), reusing its succeeded steps and running the others as ``pipeline``
        has them now (see :mod:`loopline.run._resume`)."""
        merged = {**pipeline.params, **(params or {})}
        bound = _needed(pipeline.bind(merged), targets)
        run_id, done, attempt, changed = self._open_run(pipeline, merged, bound, resume)
        state = _RunState(run_id, bound, done, attempt, merged)
        status = self._execute(state)
        result = RunResult(run_id, status, state.outcomes, state.error, state.values, self.store, changed)
        if state.failed and raise_on_error:
            name, cause = state.failed[0]
            raise StepError(
                name,
                state.outcomes[name].error or "failed",
                hint=f"Fix the cause, then resume with `loopline run --resume {run_id}`.",
            ) from cause
        return result

    def _open_run(
        self, pipeline: Pipeline, params: dict[str, Any], bound: dict[str, BoundStep], resume: str | None
    ) -> tuple[str, dict[str, dict[str, dict[str, str]]], int, tuple[str, ...]]:
        """Create the run, or claim the one to resume: ``(run_id, reused outputs, attempt, changed steps)``."""
        file = pipeline.source if pipeline.source and Path(pipeline.source).is_file() else None
        file = str(Path(file).resolve()) if file else None
        if not resume:
            run_id = self.store.runs.create_run(
                pipeline.name, pipeline.fingerprint(), pipeline.to_dict(), params, pipeline_file=file
            )
            return run_id, {}, 1, ()
        plan = plan_resume(self.store.runs.get(resume), pipeline, bound)
        self.store.runs.claim(resume, pipeline.fingerprint(), pipeline.to_dict(), file)
        for name in plan.changed:
            log.info("run %s: step %r runs its changed config", resume, name)
        return resume, plan.done, plan.attempt, plan.changed

    def _execute(self, state: _RunState) -> str:
        """Schedule the steps with a heartbeat; the run ends ``succeeded`` or ``failed`` whatever happens, an
        exception that stops the scheduling (a full disk, Ctrl-C) included."""
        crash: BaseException | None = None
        try:
            with Heartbeat(self.store, state.run_id), lend_store(self.store, state.run_id) as lent:
                state.location, state.values = lent
                self._schedule(state)
        except BaseException as exc:
            crash = exc
            raise
        finally:
            status = self._close(state, crash)
        return status

    def _close(self, state: _RunState, crash: BaseException | None) -> str:
        """Save the last step records and the run's final status. A record that cannot be saved fails the run
        (its error is the run's error) and is raised once the status is written."""
        unsaved: Exception | None = None
        try:
            self._flush(state)
        except Exception as exc:
            unsaved = exc
        stopped = crash or unsaved
        if stopped is not None and state.error is None:
            state.error = f"the run stopped: {str(stopped) or type(stopped).__name__}"
        status = "failed" if state.failed or stopped is not None else "succeeded"
        self.store.runs.set_status(state.run_id, status, state.error)
        if unsaved is not None and crash is None:
            raise unsaved
        return status

    # -- scheduling -------------------------------------------------------------------------------
    def _schedule(self, state: _RunState) -> None:
        graph = _Graph(state.bound)
        running: dict[Future[StepResult], _Submitted] = {}
        while graph.waiting or running:
            while (name := graph.next_ready()) is not None:
                submitted = self._start(state, name)
                if submitted is None:  # reused, cached or failed without running: its dependents may start
                    self._settle(name, graph, state)
                else:
                    running[submitted[0]] = submitted[1]
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                submitted_step = running.pop(future)
                self._finish(state, submitted_step, future)
                self._settle(submitted_step.name, graph, state)
            if state.flush_due():
                self._flush(state)
        for name in graph.waiting:
            state.outcomes[name] = StepOutcome(name, "skipped")

    @staticmethod
    def _settle(name: str, graph: _Graph, state: _RunState) -> None:
        """A step is over: release its dependents, or skip them all if it failed."""
        if state.outcomes[name].status == "failed":
            for skipped in graph.drop_dependents(name):
                state.outcomes[skipped] = StepOutcome(skipped, "skipped")
        else:
            graph.done(name)

    # -- one step ---------------------------------------------------------------------------------
    def _start(self, state: _RunState, name: str) -> tuple[Future[StepResult], _Submitted] | None:
        """Reuse, serve from the cache, or hand the step to the executor (then returns its future)."""
        if name in state.done:
            state.outcomes[name] = StepOutcome(name, "reused", 0.0, state.done[name], attempt=state.attempt)
            self.progress(name, "reused")
            return None
        self.progress(name, "started")
        bound = state.bound[name]
        started, clock = datetime.now(UTC), time.perf_counter()
        config: dict[str, Any] = {}
        key = None
        try:
            config = bound.config.model_dump(mode="json")
            key = self._cache_key(bound, state, config)
            cached = self.store.runs.find_cached(key) if (self.cache and bound.step_type.cacheable) else None
            if cached is not None and all(self.store.artifacts.exists(r["digest"]) for r in cached.values()):
                duration = time.perf_counter() - clock
                state.outcomes[name] = StepOutcome(name, "cached", duration, cached, attempt=state.attempt)
                self._record(state, bound, "cached", key, started, duration, config, cached, None)
                self.progress(name, "cached")
                return None
            # inputs load only in the step: a step served from the cache never reads them
            future = self.executor.submit(self._task(state, bound, config))
        except Exception as exc:
            self._failed(state, bound, key, config, failed_result(name, exc, started, time.perf_counter() - clock))
            return None
        return future, _Submitted(name, key, config, started, clock)

    def _task(self, state: _RunState, bound: BoundStep, config: dict[str, Any]) -> StepTask:
        step_type = bound.step_type
        return StepTask(
            run_id=state.run_id,
            step=bound.spec.name,
            step_type=step_type.type_name,
            config=config,
            inputs=tuple(self._input(state, bound, i) for i in range(len(bound.inputs))),
            params=state.params,
            attempt=state.attempt,
            store_url=state.location[0],
            artifacts=state.location[1],
            function=step_type if isinstance(step_type, FunctionStep) else None,
            validated=bound.config,
        )

    def _finish(self, state: _RunState, submitted: _Submitted, future: Future[StepResult]) -> None:
        """Turn the result of a step that ran into its outcome and record."""
        name, bound = submitted.name, state.bound[submitted.name]
        try:
            result = future.result()
        except Exception as exc:  # the executor could not run the task at all
            result = failed_result(name, exc, submitted.started, time.perf_counter() - submitted.clock)
        if result.lost_workers:
            log.warning("step %r: %d worker(s) died running it; it ran again", name, result.lost_workers)
        if result.status != "succeeded":
            self._failed(state, bound, submitted.key, submitted.config, result)
            return
        attempt = state.attempt + result.lost_workers
        outcome = StepOutcome(name, "succeeded", result.duration_s, result.outputs, None, attempt, result.worker)
        state.outcomes[name] = outcome
        self._record(
            state,
            bound,
            "succeeded",
            submitted.key,
            result.started_at,
            result.duration_s,
            submitted.config,
            result.outputs,
            None,
            attempt,
        )
        self.progress(name, "succeeded")

    def _failed(
        self, state: _RunState, bound: BoundStep, key: str | None, config: dict[str, Any], result: StepResult
    ) -> None:
        name = bound.spec.name
        message = result.error or "failed"
        attempt = state.attempt + result.lost_workers
        state.failed.append((name, result.cause))
        state.error = state.error or f"{name}: {message}"
        state.outcomes[name] = StepOutcome(
            name, "failed", result.duration_s, error=message, attempt=attempt, worker=result.worker or None
        )
        self._record(
            state,
            bound,
            "failed",
            None,
            result.started_at,
            result.duration_s,
            config,
            {},
            result.record_error,
            attempt,
        )
        self.progress(name, "failed")

    def _input(self, state: _RunState, bound: BoundStep, index: int) -> TaskInput:
        """The reference(s) an input hands over: one output, or all of them for ``input_mode = "all"``."""
        producer, output = bound.inputs[index]
        outputs = state.outcomes[producer].outputs
        if bound.step_type.input_mode == "all" and "." not in bound.spec.inputs[index] and len(outputs) > 1:
            return {name: dict(ref) for name, ref in outputs.items()}
        return dict(outputs[output])

    def _cache_key(self, bound: BoundStep, state: _RunState, config_json: dict[str, Any]) -> str:
        step_type = bound.step_type
        input_digests = [self._consumed(state, bound, i) for i in range(len(bound.inputs))]
        return fingerprint(
            step_type.type_name,
            step_type.code_version(),
            config_json,
            input_digests,
            step_type.source_fingerprint(bound.config),
        )

    @staticmethod
    def _consumed(state: _RunState, bound: BoundStep, index: int) -> list[tuple[str, str]]:
        """Digests of exactly the outputs an input hands over (one, or all for ``input_mode = "all"``)."""
        producer, output = bound.inputs[index]
        outputs = state.outcomes[producer].outputs
        if bound.step_type.input_mode == "all" and "." not in bound.spec.inputs[index] and len(outputs) > 1:
            return sorted((o, r["digest"]) for o, r in outputs.items())
        return [(output, outputs[output]["digest"])]

    def _record(
        self,
        state: _RunState,
        bound: BoundStep,
        status: str,
        key: str | None,
        started: datetime,
        duration: float,
        config: dict[str, Any],
        outputs: dict[str, dict[str, str]],
        error: str | None,
        attempt: int | None = None,
    ) -> None:
        from loopline.store import StepRecord

        state.pending.append(
            StepRecord(
                step=bound.spec.name,
                type=bound.spec.type,
                status=status,
                cache_key=key,
                started_at=started,
                finished_at=datetime.now(UTC),
                duration_s=duration,
                config=config,
                outputs=outputs,
                error=error,
                attempt=state.attempt if attempt is None else attempt,
            )
        )

    def _flush(self, state: _RunState) -> None:
        """Write buffered step records in one transaction (group commit), from the scheduling thread.

        A crash loses at most the records of the last FLUSH_SECONDS; those steps simply run again on
        resume (their artifacts are content-addressed, so nothing is duplicated). A store error keeps
        the records buffered and propagates: a run never ends with its records silently lost."""
        records, state.pending = state.pending, []
        state.flushed_at = time.monotonic()
        if not records:
            return
        try:
            self.store.runs.record_steps(state.run_id, records)
        except BaseException:
            state.pending = records + state.pending
            raise


def _needed(bound: dict[str, BoundStep], targets: list[str] | None) -> dict[str, BoundStep]:
    if not targets:
        return bound
    keep: set[str] = set()
    stack = list(targets)
    while stack:
        name = stack.pop()
        if name not in bound:
            from loopline.core.errors import did_you_mean

            raise ConfigError(f"no step named {name!r} to run to.", hint=did_you_mean(name, bound) or "Check the name.")
        if name not in keep:
            keep.add(name)
            stack.extend(producer for producer, _ in bound[name].inputs)
    return {name: b for name, b in bound.items() if name in keep}


class _Graph:
    """The steps still to start, in definition order as they become ready; each update is O(its edges)."""

    def __init__(self, bound: Mapping[str, BoundStep]) -> None:
        self.order = {name: i for i, name in enumerate(bound)}
        self.waiting: dict[str, set[str]] = {name: {p for p, _ in b.inputs} for name, b in bound.items()}
        self.dependents: dict[str, list[str]] = {name: [] for name in bound}
        for name, deps in self.waiting.items():
            for producer in deps:
                self.dependents[producer].append(name)
        self._ready = [(self.order[name], name) for name, deps in self.waiting.items() if not deps]
        heapq.heapify(self._ready)

    def next_ready(self) -> str | None:
        """The first step (in definition order) whose inputs are all done, taken off the waiting list."""
        while self._ready:
            _, name = heapq.heappop(self._ready)
            if self.waiting.pop(name, None) is not None:
                return name
        return None

    def done(self, name: str) -> None:
        """``name`` produced its outputs: dependents whose last input it was become ready."""
        for dependent in self.dependents[name]:
            deps = self.waiting.get(dependent)
            if deps is not None:
                deps.discard(name)
                if not deps:
                    heapq.heappush(self._ready, (self.order[dependent], dependent))

    def drop_dependents(self, name: str) -> list[str]:
        """``name`` failed: every step downstream of it leaves the waiting list; returns them."""
        dropped, stack = [], list(self.dependents[name])
        while stack:
            dependent = stack.pop()
            if self.waiting.pop(dependent, None) is not None:
                dropped.append(dependent)
                stack.extend(self.dependents[dependent])
        return dropped


class _RunState:
    """Bookkeeping of one run, touched only by the scheduling thread."""

    def __init__(
        self,
        run_id: str,
        bound: dict[str, BoundStep],
        done: dict[str, dict[str, dict[str, str]]],
        attempt: int,
        params: dict[str, Any],
    ) -> None:
        self.run_id = run_id
        self.bound = bound
        self.done = done
        self.attempt = attempt
        self.params = params
        self.location: tuple[str, str] = ("", "")
        self.values = ValueCache()
        self.outcomes: dict[str, StepOutcome] = {}
        self.failed: list[tuple[str, BaseException | None]] = []
        self.error: str | None = None
        self.pending: list[Any] = []
        self.flushed_at = time.monotonic()

    def flush_due(self) -> bool:
        """Records wait for a failure, a full batch or FLUSH_SECONDS."""
        return bool(self.pending) and (
            self.failed != [] or len(self.pending) >= FLUSH_ROWS or time.monotonic() - self.flushed_at > FLUSH_SECONDS
        )
