"""Running a study: Optuna's samplers and pruners, budgets, worker processes, resuming (the stored side, records
and storage, is :mod:`loopline.tune._studies`)."""

from __future__ import annotations

import functools
import multiprocessing
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from loopline.core.cpu import usable_cores
from loopline.core.errors import ConfigError, DataError, LooplineError
from loopline.core.hashing import fingerprint
from loopline.train import TrainSpec
from loopline.tune._objective import ERROR_ATTR, Objective
from loopline.tune._optuna import optuna
from loopline.tune._spec import TuneSpec
from loopline.tune._studies import SETTINGS_ATTR, StudyRecord, TrialRecord, load_study, storage_at, trial_record

SPACE_ATTR = "loopline.space"
"""Study user attribute: the fingerprint of the space (a study resumes only with its own space)."""
CAUGHT = (LooplineError, ValueError)
"""A trial failing with these is recorded as failed and the study goes on (a library refusing a combination of
parameters raises ValueError); anything else stops the tuning."""
Launch = Callable[[list[Callable[[], None]]], None]
"""Runs the worker jobs of a parallel tuning somewhere and returns when all have finished (default: one local
process each; the orchestrator passes a Dask launcher when the tune step runs on a Dask cluster)."""


@dataclass(frozen=True)
class TuneResult:
    """What a tuning returns: the study as stored, its best trial, the TrainSpec that trial trained, and how
    many trials this call ran (a resumed study ran only the ones missing)."""

    study: StudyRecord
    best: TrialRecord
    best_spec: TrainSpec
    ran: int
    elapsed_s: float = 0.0
    lineage: dict[str, Any] = field(default_factory=dict)


def make_sampler(spec: TuneSpec, seed: int) -> Any:
    """The sampler ``spec`` names, seeded."""
    samplers = optuna().samplers
    name = spec.sampler_name()
    if name == "random":
        return samplers.RandomSampler(seed=seed)
    if name == "grid":
        return samplers.GridSampler(spec.search_space().grid(), seed=seed)
    if name == "cmaes":
        _require("cmaes", "the cmaes sampler")
        return samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "nsga2":
        return samplers.NSGAIISampler(seed=seed)
    return samplers.TPESampler(seed=seed)


def make_pruner(spec: TuneSpec) -> Any:
    """The pruner ``spec`` names (NopPruner for none)."""
    pruners = optuna().pruners
    return {
        "none": pruners.NopPruner,
        "median": lambda: pruners.MedianPruner(n_startup_trials=3),
        "successive_halving": pruners.SuccessiveHalvingPruner,
        "hyperband": pruners.HyperbandPruner,
    }[spec.pruner]()


def tune(
    train: pl.DataFrame,
    valid: pl.DataFrame,
    spec: TuneSpec,
    *,
    storage: str | None = None,
    study: str | None = None,
    datasets: Mapping[str, pl.DataFrame] | None = None,
    on_trial: Callable[[TrialRecord], None] | None = None,
    launch: Launch | None = None,
) -> TuneResult:
    """Search ``spec.space`` around ``spec`` with Optuna; each trial trains with loopline's trainer on ``train``
    and is scored on ``spec.sets``. The study is ``study`` (else ``spec.study``, else "loopline") in ``storage``
    (an SQLAlchemy URL; None: in memory, or a temporary SQLite file for ``n_jobs`` > 1).

    Resumable: a study already in ``storage`` continues where it stopped; ``n_trials`` counts its finished
    trials (complete or pruned), so only the missing ones run; a trial left running by a killed process is
    marked failed and not counted. ``on_trial`` is called after each trial of this process. ``launch`` runs the
    ``n_jobs`` worker jobs (default: a local process each, with its share of the cores; the storage must then be
    a database every worker reaches)."""
    name = study or spec.study or "loopline"
    started = time.perf_counter()
    objective = Objective(train, valid, spec, dict(datasets or {}))
    if spec.n_jobs > 1 and storage is None:
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory(prefix="loopline-tune-") as folder:
            url = f"sqlite:///{Path(folder) / 'study.db'}"
            result = _run(objective, spec, url, name, on_trial, launch)
            return _result(result, spec, started)
    return _result(_run(objective, spec, storage, name, on_trial, launch), spec, started)


def _run(
    objective: Objective,
    spec: TuneSpec,
    url: str | None,
    name: str,
    on_trial: Callable[[TrialRecord], None] | None,
    launch: Launch | None,
) -> tuple[StudyRecord, int]:
    with storage_at(url) as storage:
        return _run_in(storage, objective, spec, url, name, on_trial, launch)


def _run_in(
    storage: Any,
    objective: Objective,
    spec: TuneSpec,
    url: str | None,
    name: str,
    on_trial: Callable[[TrialRecord], None] | None,
    launch: Launch | None,
) -> tuple[StudyRecord, int]:
    module = optuna()
    directions = ["maximize" if spec.maximize() else "minimize"] + (["minimize"] if spec.tradeoff else [])
    settings = _settings(spec)
    study = module.create_study(
        study_name=name, storage=storage, directions=directions, load_if_exists=True, pruner=make_pruner(spec)
    )
    _check_same_study(study, spec, settings, directions)
    _fail_stale(study)
    finished = _finished(study)
    remaining = None if spec.n_trials is None else max(spec.n_trials - finished, 0)
    if remaining == 0:
        return load_study(storage, name), 0
    before = len(study.trials)
    if spec.n_jobs == 1:
        study.sampler = make_sampler(spec, spec.seed + before)
        callbacks = [_callback(on_trial, study)] if on_trial else []
        with objective.leased():
            study.optimize(objective, n_trials=remaining, timeout=spec.timeout_s, catch=CAUGHT, callbacks=callbacks)
    else:
        assert url is not None
        _run_workers(objective, spec, url, name, remaining, before, launch)
    record = load_study(storage, name)
    if not any(t.state == "complete" for t in record.trials):
        reason = next((t.error for t in reversed(record.trials) if t.error), "no trial finished within the budget")
        raise DataError(
            f"study {name!r} has no completed trial: {reason}",
            hint="Fix the cause above, or give the tuning more time (timeout_s) or trials.",
        )
    return record, len(record.trials) - before


def _run_workers(
    objective: Objective,
    spec: TuneSpec,
    url: str,
    name: str,
    remaining: int | None,
    before: int,
    launch: Launch | None,
) -> None:
    """``spec.n_jobs`` workers optimise the one study, each with its share of the trials (and, as local
    processes, of the cores; a launcher's workers lease the cores of wherever they run)."""
    jobs = spec.n_jobs
    objective.threads = None if launch is not None else max(1, usable_cores() // jobs)
    share = None if remaining is None else -(-remaining // jobs)
    work: list[Callable[[], None]] = [
        functools.partial(_worker, objective, spec, url, name, share, spec.n_trials, spec.seed + before + 1000 * i)
        for i in range(jobs)
    ]
    (launch or _processes)(work)


def _processes(work: list[Callable[[], None]]) -> None:
    """Each job in a process of its own (spawned: no thread pool or lock is inherited half-held)."""
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=job, name=f"loopline-tune-{i}") for i, job in enumerate(work)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    failed = [w.exitcode for w in workers if w.exitcode]
    if failed:
        raise DataError(
            f"{len(failed)} of {len(workers)} tuning worker processes failed (exit codes {failed}).",
            hint="Run with n_jobs: 1 to see the error, then fix its cause.",
        )


def _worker(
    objective: Objective, spec: TuneSpec, url: str, name: str, share: int | None, total: int | None, seed: int
) -> None:
    module = optuna()
    objective.worker = f"{socket.gethostname()}:{os.getpid()}"
    with storage_at(url) as storage, objective.leased():
        study = module.load_study(
            study_name=name, storage=storage, sampler=make_sampler(spec, seed), pruner=make_pruner(spec)
        )
        states = (module.trial.TrialState.COMPLETE, module.trial.TrialState.PRUNED)
        callbacks = [] if total is None else [module.study.MaxTrialsCallback(total, states=states)]
        study.optimize(objective, n_trials=share, timeout=spec.timeout_s, catch=CAUGHT, callbacks=callbacks)


def _callback(on_trial: Callable[[TrialRecord], None], study: Any) -> Callable[[Any, Any], None]:
    def call(_study: Any, trial: Any) -> None:
        on_trial(trial_record(trial))

    return call


def _settings(spec: TuneSpec) -> dict[str, Any]:
    return {
        "metric": spec.metric,
        "aggregate": spec.aggregate,
        "quantile": spec.quantile if spec.aggregate == "quantile" else None,
        "sets": [s.model_dump(mode="json") for s in spec.sets],
        "sampler": spec.sampler_name(),
        "pruner": spec.pruner,
        "tradeoff": spec.tradeoff,
        "estimator": spec.estimator,
        "target": spec.target,
        # the configuration every trial starts from: a resume with other base params would mix two searches
        "base": fingerprint(spec.base_spec().model_dump(mode="json"))[:16],
    }


def _check_same_study(study: Any, spec: TuneSpec, settings: dict[str, Any], directions: list[str]) -> None:
    """Stamp a new study with its space and settings; refuse to resume one started with others."""
    stored = study.user_attrs
    space_hash = spec.search_space().fingerprint()
    if SPACE_ATTR not in stored:
        study.set_user_attr(SPACE_ATTR, space_hash)
        study.set_user_attr(SETTINGS_ATTR, settings)
        return
    same_directions = [d.name.lower() for d in study.directions] == directions
    if stored[SPACE_ATTR] != space_hash or stored.get(SETTINGS_ATTR) != settings or not same_directions:
        raise ConfigError(
            f"study {study.study_name!r} was started with another search space or objective (or base configuration); "
            "it cannot resume with this one.",
            key="study",
            hint="Name a new study (study: NAME), or delete the old one with `loopline studies delete NAME`.",
        )


def _fail_stale(study: Any) -> None:
    """Mark the trials a killed process left running as failed (one tuning of a study runs at a time)."""
    module = optuna()
    running = study.get_trials(deepcopy=False, states=(module.trial.TrialState.RUNNING,))
    for trial in running:
        study._storage.set_trial_user_attr(trial._trial_id, ERROR_ATTR, "left running by a stopped process")
        study._storage.set_trial_state_values(trial._trial_id, state=module.trial.TrialState.FAIL)


def _finished(study: Any) -> int:
    states = optuna().trial.TrialState
    return len(study.get_trials(deepcopy=False, states=(states.COMPLETE, states.PRUNED)))


def _result(run: tuple[StudyRecord, int], spec: TuneSpec, started: float) -> TuneResult:
    record, ran = run
    best = record.best
    if best is None:
        raise DataError(f"study {record.name!r} has no completed trial.", hint="Run it with a larger budget.")
    space = spec.search_space()
    best_spec = space.apply(best.params, spec.base_spec())
    lineage = {
        "study": record.name,
        "trials": len(record.trials),
        "counts": record.counts(),
        "best_trial": best.number,
        "best_values": list(best.values or ()),
        "best_params": best.params,
        "scores": best.scores,
        **{k: record.settings.get(k) for k in ("metric", "aggregate", "sampler", "pruner", "tradeoff")},
    }
    return TuneResult(record, best, best_spec, ran, time.perf_counter() - started, lineage)


def _require(module: str, what: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"{what} needs the {module!r} package.", key="sampler", hint="pip install 'loopline[tune]'")
