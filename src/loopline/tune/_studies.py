"""Stored studies: Optuna's RDB storage on a URL, and the typed records a study reads back as.

Studies live in an Optuna RDB storage: the same SQLite or PostgreSQL database as loopline's store when a URL is
given (Optuna's tables beside loopline's; loopline's own migrations keep their version in
``loopline_alembic_version``, Optuna's in ``alembic_version``, so neither touches the other's), else in memory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from loopline.core.errors import ConfigError, did_you_mean
from loopline.tune._objective import ERROR_ATTR, SCORES_ATTR, WORKER_ATTR
from loopline.tune._optuna import optuna

SETTINGS_ATTR = "loopline.settings"
"""Study user attribute: metric, aggregate, sets, sampler, pruner and tradeoff, for ``loopline studies show``."""
SQLITE_TIMEOUT_S = 60
"""How long a SQLite writer waits for the database lock (worker processes write trials at once)."""


@dataclass(frozen=True)
class TrialRecord:
    """One trial: its number, state (complete, pruned, fail, running), objective values, the searched values
    (keys as in the space), the score per evaluation set, how long it ran, and where."""

    number: int
    state: str
    values: tuple[float, ...] | None
    params: dict[str, Any]
    scores: dict[str, float]
    duration_s: float | None
    worker: str | None = None
    """``HOST:PID`` of the worker process that ran it (parallel tunings only)."""
    error: str | None = None
    """Why a failed trial failed."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {
            "number": self.number,
            "state": self.state,
            "values": None if self.values is None else list(self.values),
            "params": self.params,
            "scores": self.scores,
            "duration_s": self.duration_s,
            "worker": self.worker,
            "error": self.error,
        }


@dataclass(frozen=True)
class StudyRecord:
    """A stored study: its name, directions, settings and every trial."""

    name: str
    directions: tuple[str, ...]
    settings: dict[str, Any]
    trials: tuple[TrialRecord, ...]
    best: TrialRecord | None = None

    def counts(self) -> dict[str, int]:
        """Trials per state."""
        out: dict[str, int] = {}
        for trial in self.trials:
            out[trial.state] = out.get(trial.state, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {
            "name": self.name,
            "directions": list(self.directions),
            "settings": self.settings,
            "counts": self.counts(),
            "best": None if self.best is None else self.best.to_dict(),
            "trials": [t.to_dict() for t in self.trials],
        }


def open_storage(url: str | None) -> Any:
    """Optuna's RDB storage on ``url`` (None: in memory)."""
    module = optuna()
    if url is None:
        return module.storages.InMemoryStorage()
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_S}
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)  # a new store's folder, as Store.open does
    return module.storages.RDBStorage(url, engine_kwargs=kwargs)


@contextlib.contextmanager
def storage_at(url: str | None) -> Iterator[Any]:
    """:func:`open_storage`, its database connections closed on exit."""
    storage = open_storage(url)
    try:
        yield storage
    finally:
        engine = getattr(storage, "engine", None)
        if engine is not None:
            storage.remove_session()
            engine.dispose()


def trial_record(trial: Any) -> TrialRecord:
    duration = trial.duration.total_seconds() if trial.duration is not None else None
    values = None if trial.values is None else tuple(float(v) for v in trial.values)
    params = {name.split("/", 1)[-1]: value for name, value in trial.params.items()}
    scores = {str(k): float(v) for k, v in (trial.user_attrs.get(SCORES_ATTR) or {}).items()}
    worker, error = trial.user_attrs.get(WORKER_ATTR), trial.user_attrs.get(ERROR_ATTR)
    return TrialRecord(trial.number, trial.state.name.lower(), values, params, scores, duration, worker, error)


def load_study(storage: Any, name: str) -> StudyRecord:
    """The stored study ``name`` (``storage``: a URL or an Optuna storage); ConfigError naming the known ones."""
    if storage is None or isinstance(storage, str):
        with storage_at(storage) as opened:
            return load_study(opened, name)
    module = optuna()
    try:
        study = module.load_study(study_name=name, storage=storage)
    except KeyError:
        known = [s.study_name for s in module.get_all_study_summaries(storage, include_best_trial=False)]
        hint = did_you_mean(name, known) or f"Studies: {', '.join(known) or 'none yet'}."
        raise ConfigError(f"no study {name!r}.", key="study", hint=hint) from None
    trials = tuple(trial_record(t) for t in study.get_trials(deepcopy=False))
    return StudyRecord(
        name=name,
        directions=tuple(d.name.lower() for d in study.directions),
        settings=dict(study.user_attrs.get(SETTINGS_ATTR) or {}),
        trials=trials,
        best=_best(trials, [d.name.lower() for d in study.directions]),
    )


def list_studies(url: str) -> list[dict[str, Any]]:
    """Every study stored at ``url``: name, directions, trial count, best value, started."""
    return study_page(url, 0, None)[1]


def study_page(url: str, offset: int = 0, limit: int | None = None) -> tuple[int, list[dict[str, Any]]]:
    """How many studies ``url`` holds, and the ``limit`` after the ``offset`` first (in creation order), each
    ``{"name", "directions", "metric", "trials", "counts", "best_value", "best_params", "best_trial",
    "started"}``: only those studies' trials are read."""
    module = optuna()
    with storage_at(url) as storage:
        summaries = module.get_all_study_summaries(storage, include_best_trial=False)
        end = None if limit is None else offset + limit
        records = [(summary, load_study(storage, summary.study_name)) for summary in summaries[offset:end]]
    return len(summaries), [_summary(summary, record) for summary, record in records]


def _summary(summary: Any, record: StudyRecord) -> dict[str, Any]:
    started = None if summary.datetime_start is None else summary.datetime_start.isoformat()
    return summarise(record, started)


def summarise(record: StudyRecord, started: str | None) -> dict[str, Any]:
    """What a list of studies shows of ``record`` (see :func:`study_page`)."""
    best = record.best
    return {
        "name": record.name,
        "directions": list(record.directions),
        "metric": record.settings.get("metric"),
        "trials": len(record.trials),
        "counts": record.counts(),
        "best_value": None if best is None or best.values is None else best.values[0],
        "best_params": None if best is None else best.params,
        "best_trial": None if best is None else best.number,
        "started": started,
    }


@dataclass(frozen=True)
class StudyStamp:
    """A stored study's name, when its first trial started, and ``stamp``: a value that changes whenever a trial
    is added or finishes (``running``: trials still running, whose values may change without it)."""

    name: str
    started: str | None
    running: int
    stamp: tuple[Any, ...]


def study_stamps(storage: Any) -> list[StudyStamp] | None:
    """Every study of an RDB ``storage``, in creation order, with its :class:`StudyStamp`: one aggregate query
    over Optuna's ``studies`` and ``trials`` tables, so a reader can tell whether a study it loaded before
    changed without loading its trials again. None when the storage is not a database Optuna's schema reads."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    engine = getattr(storage, "engine", None)
    if engine is None:
        return None
    query = text(
        "SELECT s.study_id, s.study_name, COUNT(t.trial_id), MAX(t.trial_id), MAX(t.datetime_complete), "
        "SUM(CASE WHEN t.state = 'RUNNING' THEN 1 ELSE 0 END), MIN(t.datetime_start) "
        "FROM studies s LEFT JOIN trials t ON t.study_id = s.study_id "
        "GROUP BY s.study_id, s.study_name ORDER BY s.study_id"
    )
    try:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    except SQLAlchemyError:
        return None
    return [
        StudyStamp(
            name=str(name),
            started=None if started is None else _iso(started),
            running=int(running or 0),
            stamp=(study_id, int(count), last, str(finished)),
        )
        for study_id, name, count, last, finished, running, started in rows
    ]


def _iso(value: Any) -> str:
    """A datetime column as ISO text (SQLite hands back text already)."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value).replace(" ", "T")


def param_importances(storage: Any, name: str, *, newest: int | None = None, quick: bool = False) -> dict[str, float]:
    """Optuna's parameter importances (fANOVA) of study ``name``'s first objective (``storage``: a URL or an
    Optuna storage); empty with fewer than two complete trials or nothing that varies.

    ``newest``: computed on that many newest complete trials at most (the time grows with the trials);
    ``quick``: a smaller forest (16 trees of depth 8, seeded), for a page that must answer in a fraction of a
    second."""
    if storage is None or isinstance(storage, str):
        with storage_at(storage) as opened:
            return param_importances(opened, name, newest=newest, quick=quick)
    module = optuna()
    study = module.load_study(study_name=name, storage=storage)
    complete = study.get_trials(deepcopy=False, states=(module.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}
    if newest is not None and len(complete) > newest:
        study = module.create_study(directions=study.directions)
        study.add_trials(complete[-newest:])
    evaluator = module.importance.FanovaImportanceEvaluator(n_trees=16, max_depth=8, seed=0) if quick else None
    try:
        found = module.importance.get_param_importances(study, evaluator=evaluator, target=lambda t: t.values[0])
    except (RuntimeError, ValueError):
        return {}
    return {str(key): float(value) for key, value in found.items()}


def delete_study(url: str, name: str) -> None:
    """Remove the study ``name`` and its trials from ``url``."""
    with storage_at(url) as storage:
        load_study(storage, name)  # ConfigError with a did-you-mean when it does not exist
        optuna().delete_study(study_name=name, storage=storage)


def _best(trials: tuple[TrialRecord, ...], directions: list[str]) -> TrialRecord | None:
    """The complete trial with the best first objective (on a Pareto front too: the metric decides)."""
    done = [t for t in trials if t.state == "complete" and t.values]
    if not done:
        return None
    maximize = directions[0] == "maximize"
    return sorted(done, key=lambda t: (-(t.values or (0,))[0] if maximize else (t.values or (0,))[0], t.number))[0]
