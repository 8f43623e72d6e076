"""Run a pipeline's DAG: independent steps concurrently, unchanged steps from the cache,
every run and step recorded in the store, failed runs resumable."""

from __future__ import annotations

import functools
import logging
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopline.core.errors import ConfigError, LooplineError, StepError
from loopline.core.hashing import fingerprint
from loopline.core.pipeline import BoundStep, Pipeline
from loopline.core.step import StepContext
from loopline.run._executor import Executor, LocalExecutor
from loopline.run._values import load_value, save_value

if TYPE_CHECKING:
    from loopline.store import Store

log = logging.getLogger("loopline.run")

FLUSH_ROWS = 64
FLUSH_SECONDS = 0.25

ProgressHook = Callable[[str, str], None]  # (step, event) with event in started|succeeded|cached|reused|failed


@dataclass
class StepOutcome:
    """What happened to one step in a run."""

    name: str
    status: str  # succeeded | cached | reused | failed | skipped
    duration_s: float = 0.0
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    error: str | None = None


@dataclass
class RunResult:
    """A finished run: its id, status and per-step outcomes; values load on demand."""

    run_id: str
    status: str
    steps: dict[str, StepOutcome]
    error: str | None
    _values: dict[tuple[str, str], Any]
    _store: Store

    def output(self, step: str, name: str | None = None) -> Any:
        """The value a step produced (its first output unless ``name`` is given)."""
        outcome = self.steps.get(step)
        if outcome is None or not outcome.outputs:
            raise ConfigError(
                f"step {step!r} produced no output in run {self.run_id}.",
                hint=f"Steps with outputs: {', '.join(s for s, o in self.steps.items() if o.outputs)}.",
            )
        key = (step, name or next(iter(outcome.outputs)))
        if key not in self._values:
            self._values[key] = load_value(self._store, outcome.outputs[key[1]])
        return self._values[key]


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
        """Run every step (or only what ``targets`` need); with ``resume``, continue that run,
        reusing its succeeded steps."""
        merged = {**pipeline.params, **(params or {})}
        bound = _needed(pipeline.bind(merged), targets)
        if resume:
            record = self.store.runs.get(resume)
            done = {s.step: s.outputs for s in record.steps if s.status in ("succeeded", "cached", "reused")}
            attempt = 1 + max((s.attempt for s in record.steps), default=0)
            run_id = resume
        else:
            done, attempt = {}, 1
            run_id = self.store.runs.create_run(pipeline.name, pipeline.fingerprint(), pipeline.to_dict(), merged)
        self.store.runs.set_status(run_id, "running")
        state = _RunState(run_id, bound, done, attempt, merged)
        try:
            self._schedule(state)
        finally:
            self._flush(state)
            status = "failed" if state.failed else "succeeded"
            self.store.runs.set_status(run_id, status, state.error)
        result = RunResult(run_id, status, state.outcomes, state.error, state.values, self.store)
        if state.failed and raise_on_error:
            name, cause = state.failed[0]
            raise StepError(
                name,
                state.outcomes[name].error or "failed",
                hint=f"Fix the cause, then resume with `loopline run --resume {run_id}`.",
            ) from cause
        return result

    # -- scheduling -------------------------------------------------------------------------------
    def _schedule(self, state: _RunState) -> None:
        waiting = {name: {p for p, _ in b.inputs} for name, b in state.bound.items()}
        running: dict[Future[Any], str] = {}
        while waiting or running:
            ready = [n for n, deps in waiting.items() if not deps]
            while ready:
                name = ready.pop(0)
                del waiting[name]
                if name in state.done:
                    state.reuse(name)
                    self._release(name, waiting)
                    self.progress(name, "reused")
                    ready = [n for n, deps in waiting.items() if not deps]
                    continue
                self.progress(name, "started")
                running[self.executor.submit(functools.partial(self._execute, state, name))] = name
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                if future.exception() is None:
                    self._release(name, waiting)
                else:
                    self._skip_dependents(name, waiting, state)
            if state.flush_due():
                self._flush(state)
        for name in waiting:
            state.outcomes[name] = StepOutcome(name, "skipped")

    @staticmethod
    def _release(name: str, waiting: dict[str, set[str]]) -> None:
        for deps in waiting.values():
            deps.discard(name)

    def _skip_dependents(self, name: str, waiting: dict[str, set[str]], state: _RunState) -> None:
        blocked = {name}
        changed = True
        while changed:
            changed = False
            for other, deps in list(waiting.items()):
                if deps & blocked:
                    blocked.add(other)
                    del waiting[other]
                    state.outcomes[other] = StepOutcome(other, "skipped")
                    changed = True

    # -- one step ---------------------------------------------------------------------------------
    def _execute(self, state: _RunState, name: str) -> None:
        bound = state.bound[name]
        started, clock = datetime.now(UTC), time.perf_counter()
        config_json = bound.config.model_dump(mode="json")
        try:
            key = self._cache_key(bound, state, config_json)
            cached = self.store.runs.find_cached(key) if (self.cache and bound.step_type.cacheable) else None
            if cached is not None and all(self.store.artifacts.exists(r["digest"]) for r in cached.values()):
                outputs, status = cached, "cached"
            else:  # inputs load only now: a step served from the cache never reads them
                inputs = [self._input(state, bound, i) for i in range(len(bound.inputs))]
                ctx = StepContext(state.run_id, name, state.params, self.store, log.getChild(name))
                values = bound.step_type.run(bound.config, inputs, ctx)
                outputs = self._persist(bound, values, state)
                status = "succeeded"
        except Exception as exc:
            duration = time.perf_counter() - clock
            message = str(exc) if isinstance(exc, LooplineError) else f"{type(exc).__name__}: {exc}"
            state.fail(name, exc, message, duration)
            self._record(
                state,
                bound,
                "failed",
                None,
                started,
                duration,
                config_json,
                {},
                message + ("" if isinstance(exc, LooplineError) else "\n" + traceback.format_exc(limit=5)),
            )
            self.progress(name, "failed")
            raise
        duration = time.perf_counter() - clock
        state.outcomes[name] = StepOutcome(name, status, duration, outputs)
        self._record(state, bound, status, key, started, duration, config_json, outputs, None)
        self.progress(name, status)

    def _input(self, state: _RunState, bound: BoundStep, index: int) -> Any:
        producer, output = bound.inputs[index]
        outputs = state.outcomes[producer].outputs
        if bound.step_type.input_mode == "all" and "." not in bound.spec.inputs[index] and len(outputs) > 1:
            return {name: state.input_value(self.store, producer, name) for name in outputs}
        return state.input_value(self.store, producer, output)

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

    def _persist(self, bound: BoundStep, values: Mapping[str, Any], state: _RunState) -> dict[str, dict[str, str]]:
        declared = bound.step_type.outputs
        if set(values) != set(declared):
            raise StepError(
                bound.spec.name,
                f"returned outputs {sorted(values)}, declared {list(declared)}.",
                hint="Return a mapping with exactly the declared output names.",
            )
        outputs = {}
        for output in declared:
            outputs[output] = save_value(self.store, values[output])
            if outputs[output]["kind"] != "dataset":  # a reference: its rows load when a consumer runs
                state.values[(bound.spec.name, output)] = values[output]
        return outputs

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
    ) -> None:
        from loopline.store import StepRecord

        record = StepRecord(
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
            attempt=state.attempt,
        )
        with state.lock:
            state.pending.append(record)

    def _flush(self, state: _RunState) -> None:
        """Write buffered step records in one transaction (group commit), from the scheduling thread.

        A crash loses at most the records of the last FLUSH_SECONDS; those steps simply run again on
        resume (their artifacts are content-addressed, so nothing is duplicated). A store error keeps
        the records buffered and propagates: a run never ends with its records silently lost."""
        with state.lock:
            records, state.pending = state.pending, []
            state.flushed_at = time.monotonic()
        if not records:
            return
        try:
            self.store.runs.record_steps(state.run_id, records)
        except BaseException:
            with state.lock:
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


class _RunState:
    """Mutable bookkeeping of one run (touched from worker threads; dict ops are atomic)."""

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
        self.outcomes: dict[str, StepOutcome] = {}
        self.values: dict[tuple[str, str], Any] = {}
        self.loading: dict[tuple[str, str], threading.Lock] = {}
        self.failed: list[tuple[str, BaseException]] = []
        self.error: str | None = None
        self.pending: list[Any] = []
        self.flushed_at = time.monotonic()
        self.lock = threading.Lock()

    def flush_due(self) -> bool:
        """Records wait for a failure, a full batch or FLUSH_SECONDS."""
        with self.lock:
            return bool(self.pending) and (
                self.failed != []
                or len(self.pending) >= FLUSH_ROWS
                or time.monotonic() - self.flushed_at > FLUSH_SECONDS
            )

    def reuse(self, name: str) -> None:
        self.outcomes[name] = StepOutcome(name, "reused", 0.0, self.done[name])

    def fail(self, name: str, exc: BaseException, message: str, duration: float) -> None:
        self.failed.append((name, exc))
        self.error = self.error or f"{name}: {message}"
        self.outcomes[name] = StepOutcome(name, "failed", duration, error=message)

    def input_value(self, store: Store, producer: str, output: str) -> Any:
        """The value of a producer's output, loaded once however many consumers start together."""
        key = (producer, output)
        with self.lock:
            loading = self.loading.setdefault(key, threading.Lock())
        with loading:
            if key not in self.values:
                self.values[key] = load_value(store, self.outcomes[producer].outputs[output])
        return self.values[key]
