"""Continuous sources under supervision: one child process per source, restarted with backoff when it dies.

    with Supervisor(pipeline, home=home) as supervisor:   # start(): every continuous source ingesting
        supervisor.status()                                # -> list[SourceStatus]
    # stop(): SIGTERM to every child; each finishes its batch, commits its checkpoint and exits

A source is *continuous* when its ingest step says ``follow: true``, or says nothing and its source type is
streaming (the brokers: mqtt, nats, redis). Each runs ``python -m loopline.run._source_worker`` in its own
process and session: a crash, a leak or a hung driver in one never touches another, a terminal's Ctrl-C reaches
only the supervisor (which then stops the children in order), and nothing is pickled or re-imported from the
caller's ``__main__`` (as multiprocessing's spawn would), so any program can embed a supervisor. Exactly-once
comes from the ingestion engine: every batch is committed with its checkpoint before it is acknowledged, so a
child killed at any point resumes, once restarted, from its last commit, and what the broker redelivers is
dropped by message id.

Restarts (:class:`RestartPolicy`): after the n-th consecutive failure a child starts again after
``initial_s * 2**(n-1)`` seconds (at most ``max_s``), less up to ``jitter`` of it at random; a child that ran
``healthy_s`` before dying counts as a first failure again. A child that failed with a config or data error
(or a missing extra) is reported ``failed`` with its reason and retried only every ``max_s``: a restart cannot
cure it, but the file or the broker's permissions may be fixed meanwhile.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from loopline.core.errors import ConfigError, LooplineError
from loopline.core.settings import HOME_ENV, Settings
from loopline.run._source_status import (
    SourceStatus,
    SupervisedState,
    read_states,
    source_status,
    status_file,
    write_states,
)
from loopline.run._source_worker import EXIT_STOPPED, SourceJob, WorkerResult, read_backlog

if TYPE_CHECKING:
    from loopline.core.pipeline import Pipeline
    from loopline.store import Store

log = logging.getLogger("loopline.sources")

_TICK_S = 0.1
_WRITE_EVERY_S = 1.0
_LOG_ROTATE_BYTES = 16 * 2**20


@dataclass(frozen=True)
class ContinuousSource:
    """An ingest step to keep running: its source, dataset and batch settings, params substituted."""

    step: str
    dataset: str
    type: str
    source: dict[str, Any]
    policy: str
    batch_rows: int
    batch_seconds: float


@dataclass(frozen=True)
class RestartPolicy:
    """Exponential backoff with jitter between restarts of a child (see the module docstring)."""

    initial_s: float = 1.0
    max_s: float = 60.0
    jitter: float = 0.25
    healthy_s: float = 60.0

    def delay(self, failures: int, *, permanent: bool = False, rng: random.Random | None = None) -> float:
        """Seconds to wait before the next start after ``failures`` consecutive failures."""
        if permanent:
            return self.max_s
        base = min(self.max_s, self.initial_s * 2 ** min(max(failures, 1) - 1, 30))
        draw = rng.random() if rng is not None else random.random()
        return float(base * (1 - self.jitter * draw))


def continuous_sources(pipeline: Pipeline, params: Mapping[str, Any] | None = None) -> list[ContinuousSource]:
    """The pipeline's ingest steps to keep running (``follow: true``, or streaming sources by default)."""
    from loopline.ingest import SOURCES

    found = []
    for name, bound in pipeline.bind(params).items():
        if bound.spec.type != "ingest":
            continue
        config: Any = bound.config
        source_type = str(config.source["type"])
        follow = config.follow if config.follow is not None else SOURCES.get(source_type).streaming
        if follow:
            found.append(
                ContinuousSource(
                    name,
                    config.dataset or name,
                    source_type,
                    dict(config.source),
                    config.policy,
                    config.batch_rows,
                    config.batch_seconds,
                )
            )
    return found


def sources_status(
    store: Store, pipeline: Pipeline, home: Path, params: Mapping[str, Any] | None = None
) -> list[SourceStatus]:
    """The status of every continuous source of ``pipeline``, from any process: the store's figures, and the
    state its supervisor last wrote under ``home`` (``stopped`` when none runs)."""
    states = read_states(status_file(home, pipeline.name))
    return [
        source_status(store, step=s.step, dataset=s.dataset, source_type=s.type, supervised=states.get(s.step))
        for s in continuous_sources(pipeline, params)
    ]


class _Child:
    """One supervised source: its process (None between runs) and its record of failures."""

    def __init__(self, source: ContinuousSource, folder: Path) -> None:
        self.source = source
        self.result_file = folder / f"{source.step}.result.json"
        self.log_file = folder / f"{source.step}.log"
        self.progress_file = folder / f"{source.step}.progress"
        self.proc: subprocess.Popen[bytes] | None = None
        self.state = "restarting"
        self.spawns = 0
        self.failures = 0
        self.last_error: str | None = None
        self.started = 0.0
        self.next_start = 0.0

    def snapshot(self, now: float) -> SupervisedState:
        waiting = self.proc is None and self.state in ("restarting", "failed")
        return SupervisedState(
            state=self.state,
            restarts=max(0, self.spawns - 1),
            last_error=self.last_error,
            pid=self.proc.pid if self.proc is not None else None,
            retry_in_s=round(max(0.0, self.next_start - now), 3) if waiting else None,
            backlog=read_backlog(self.progress_file),
        )


class Supervisor:
    """Keeps every continuous source of ``pipeline`` ingesting, each in its own process.

    ``start()`` returns at once (a thread watches the children); ``status()`` lists a :class:`SourceStatus` per
    source; ``stop()`` ends them cleanly. Store location: ``store_url``/``artifacts``/``home``, else the
    environment (:class:`~loopline.core.settings.Settings`). ``home`` also holds the status file and each
    source's log (``sources/<pipeline>/<step>.log``). Thread-safe: status() may be called from any thread.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        store_url: str | None = None,
        artifacts: str | Path | None = None,
        home: str | Path | None = None,
        params: Mapping[str, Any] | None = None,
        restart: RestartPolicy = RestartPolicy(),
        stop_timeout_s: float = 30.0,
    ) -> None:
        self.pipeline = pipeline
        self.store_url = store_url
        self.artifacts = artifacts
        self.home = home
        self.params = params
        self.restart = restart
        self.stop_timeout_s = stop_timeout_s
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._children: dict[str, _Child] = {}
        self._store: Store | None = None
        self._rng = random.Random()

    # -- public ---------------------------------------------------------------------------------
    def start(self) -> Supervisor:
        """Find the continuous sources, open the store (migrating it once, before any child), start them all."""
        from loopline.store import Store

        if self._thread is not None:
            raise ConfigError("this supervisor was started already.", hint="Create a new Supervisor to start again.")
        sources = continuous_sources(self.pipeline, self.params)
        if not sources:
            raise ConfigError(
                f"pipeline {self.pipeline.name!r} has no continuous source.",
                hint="Give an ingest step 'follow: true', or ingest from a broker (mqtt, nats, redis).",
            )
        settings = Settings.from_env(self.home)
        self._home = settings.home
        self._store_url = self.store_url or settings.store_url
        self._artifacts = str(self.artifacts or settings.artifacts)
        folder = status_file(self._home, self.pipeline.name).with_suffix("")
        self._lock_file = hold_sources_lock(self._home, self.pipeline.name)
        try:
            self._store = Store.open(self._store_url, self._artifacts, local_dir=self._home)
        except BaseException:
            self._lock_file.close()
            raise
        self._children = {s.step: _Child(s, folder) for s in sources}
        self._thread = threading.Thread(target=self._watch, name="loopline-supervisor", daemon=True)
        self._thread.start()
        return self

    def status(self) -> list[SourceStatus]:
        """Per source: state, restarts, last error, rows, rate, lag (see :class:`SourceStatus`)."""
        if self._store is None:
            raise ConfigError("the supervisor is not started.", hint="Call start() first.")
        states = self._states()
        return [
            source_status(
                self._store, step=c.source.step, dataset=c.source.dataset, source_type=c.source.type, supervised=s
            )
            for c, s in zip(self._children.values(), states.values(), strict=True)
        ]

    def stop(self, timeout: float | None = None) -> bool:
        """SIGTERM every child, wait for each to commit its batch and exit (SIGKILL past ``timeout``).

        Returns whether every child stopped by itself. Idempotent.
        """
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        deadline = time.monotonic() + (self.stop_timeout_s if timeout is None else timeout)
        with self._lock:
            running = [c for c in self._children.values() if c.proc is not None]
            for child in running:
                _signal(child, signal.SIGTERM)
        clean = all([self._await_exit(child, deadline) for child in running])
        if self._store is not None:
            self._write()
            self._store.close()
            self._store = None
            self._lock_file.close()  # releases the lock
        return clean

    def __enter__(self) -> Supervisor:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- the watch thread -----------------------------------------------------------------------
    def _watch(self) -> None:
        written = 0.0
        while not self._stopping.is_set():
            now = time.monotonic()
            changed = False
            with self._lock:
                for child in self._children.values():
                    if self._stopping.is_set():
                        break
                    changed |= self._check(child, now)
            if changed or now - written >= _WRITE_EVERY_S:
                self._write()
                written = now
            self._stopping.wait(_TICK_S)

    def _check(self, child: _Child, now: float) -> bool:
        """Reap a child that ended, start one that is due; whether its state changed."""
        if child.proc is not None:
            if child.proc.poll() is None:
                return False
            self._ended(child, child.proc.returncode, now)
            return True
        if now >= child.next_start:
            self._spawn(child, now)
            return True
        return False

    def _ended(self, child: _Child, code: int, now: float) -> None:
        result = WorkerResult.read(child.result_file)
        child.proc = None
        if now - child.started >= self.restart.healthy_s:
            child.failures = 0
        child.failures += 1
        permanent = result is not None and result.permanent
        child.last_error = (result.error if result is not None else None) or _exit_reason(code)
        delay = self.restart.delay(child.failures, permanent=permanent, rng=self._rng)
        child.state = "failed" if permanent else "restarting"
        child.next_start = now + delay
        log.warning(
            "source %r %s: %s; %s in %.1f s",
            child.source.step,
            "failed" if permanent else "died",
            child.last_error,
            "retry" if permanent else "restart",
            delay,
        )

    def _spawn(self, child: _Child, now: float) -> None:
        job = SourceJob(
            store_url=self._store_url,
            artifacts=self._artifacts,
            home=str(self._home),
            step=child.source.step,
            dataset=child.source.dataset,
            source=child.source.source,
            policy=child.source.policy,
            batch_rows=child.source.batch_rows,
            batch_seconds=child.source.batch_seconds,
            result_file=str(child.result_file),
            progress_file=str(child.progress_file),
        )
        child.result_file.unlink(missing_ok=True)
        child.progress_file.unlink(missing_ok=True)
        child.spawns += 1
        child.started = now
        try:
            with _open_log(child.log_file) as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "loopline.run._source_worker"],
                    stdin=subprocess.PIPE,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=self._child_env(),
                    start_new_session=True,  # a terminal's Ctrl-C reaches the supervisor only
                )
        except OSError as exc:
            child.failures += 1
            child.last_error = f"could not start the process: {exc}"
            child.state = "restarting"
            child.next_start = now + self.restart.delay(child.failures, rng=self._rng)
            return
        _send_job(proc, job)
        child.proc = proc
        child.state = "running"
        log.info("source %r started (pid %d)", child.source.step, proc.pid)

    def _child_env(self) -> dict[str, str]:
        """The environment, with this store's home and the folder loopline was imported from."""
        import loopline

        env = dict(os.environ)
        env[HOME_ENV] = str(self._home)
        package_root = str(Path(loopline.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        return env

    def _states(self) -> dict[str, SupervisedState]:
        now = time.monotonic()
        with self._lock:
            states = {name: c.snapshot(now) for name, c in self._children.items()}
        if self._stopping.is_set() and self._thread is not None and not self._thread.is_alive():
            states = {
                name: SupervisedState("stopped", s.restarts, s.last_error, backlog=s.backlog)
                for name, s in states.items()
            }
        return states

    def _write(self) -> None:
        try:
            write_states(status_file(self._home, self.pipeline.name), self.pipeline.name, self._states())
        except OSError as exc:  # the status file is for other processes; supervising goes on without it
            log.warning("could not write the sources' status file: %s", exc)

    def _await_exit(self, child: _Child, deadline: float) -> bool:
        proc = child.proc
        if proc is None:
            return True
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
            clean = proc.returncode in (EXIT_STOPPED, -signal.SIGTERM)
        except subprocess.TimeoutExpired:
            log.error("source %r did not stop in time; killed", child.source.step)
            proc.kill()
            proc.wait()
            clean = False
        result = WorkerResult.read(child.result_file)
        if result is not None and result.error:
            child.last_error = result.error
        with self._lock:
            child.proc = None
            child.state = "stopped"
        return clean


def hold_sources_lock(home: Path, pipeline: str) -> IO[str]:
    """The lock of ``pipeline``'s sources under ``home`` (held while the returned file stays open): whoever runs
    them, a supervisor or one catch-up pass (``loopline loop --once``), runs them alone. LooplineError (naming
    the holder) when another process holds it."""
    folder = status_file(home, pipeline).with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    return _hold_lock(folder / "supervisor.lock", pipeline)


def _hold_lock(path: Path, pipeline: str) -> IO[str]:
    """An exclusive lock on ``path`` for as long as the returned file stays open (the OS drops it when the
    process dies, however it dies): two supervisors of one pipeline would run every source twice."""
    import fcntl

    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise LooplineError(
            f"the sources of pipeline {pipeline!r} are supervised already (by {owner}).",
            hint="Stop that supervisor first (SIGTERM), or use `loopline sources status` to see it.",
        ) from None
    handle.truncate(0)
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle


def _send_job(proc: subprocess.Popen[bytes], job: SourceJob) -> None:
    """Hand the child its job; one that died first is reaped and reported by the watch loop."""
    if proc.stdin is None:
        return
    try:
        proc.stdin.write(job.to_json().encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass


def _signal(child: _Child, signum: int) -> None:
    if child.proc is not None and child.proc.poll() is None:
        child.proc.send_signal(signum)


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    if code == EXIT_STOPPED:
        return "exited without being asked to stop"
    return f"exited with code {code}"


def _open_log(path: Path) -> IO[bytes]:
    """The child's log, appended to; rotated once (``.log.1``) past 16 MiB."""
    try:
        if path.stat().st_size > _LOG_ROTATE_BYTES:
            os.replace(path, path.with_suffix(".log.1"))
    except FileNotFoundError:
        pass
    return path.open("ab")
