"""One trial: the sampled configuration trained with loopline's trainer and scored on every evaluation set."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from loopline.core.errors import ConfigError, DataError, LooplineError, did_you_mean
from loopline.train import (
    TrainSpec,
    kfold_indices,
    limited_threads,
    resolve_cv_method,
    resolve_estimator,
    resolve_task,
    thread_params,
    time_series_folds,
    train_candidate,
)
from loopline.tune._optuna import optuna
from loopline.tune._spec import DatasetSet, FoldSets, SliceSets, TuneSpec, ValidSet, WindowSets

SCORES_ATTR = "scores"
"""The trial user attribute holding ``{set name: score}``."""
ERROR_ATTR = "error"
"""The trial user attribute holding why a failed trial failed (``Type: message``)."""
WORKER_ATTR = "worker"
"""The trial user attribute a worker process (``n_jobs`` > 1) sets: ``HOST:PID`` of the process that ran it."""
LATENCY_RECORDS = 20
"""One-record predictions timed for the latency tradeoff (the median is kept)."""


def aggregate(scores: Mapping[str, float], how: str, quantile: float, maximize: bool) -> float:
    """The objective from per-set scores: their mean, the worst, or the ``quantile`` from the worst side."""
    values = np.asarray([v for v in scores.values() if v == v], dtype=np.float64)
    if not values.size:
        raise DataError(
            "no evaluation set produced the metric.",
            hint="Check the sets: a slice or window with one class has no roc_auc; use larger ones or another metric.",
        )
    if how == "mean":
        return float(values.mean())
    if how == "worst":
        return float(values.min() if maximize else values.max())
    return float(np.quantile(values, quantile if maximize else 1 - quantile))


@dataclass
class Objective:
    """The callable Optuna optimises: picklable (it travels to the worker processes), data included."""

    train: pl.DataFrame
    valid: pl.DataFrame
    spec: TuneSpec
    datasets: Mapping[str, pl.DataFrame] = field(default_factory=dict)
    threads: int | None = None
    worker: str | None = None
    granted: int | None = None
    """The cores this process's study holds (set by :meth:`leased`); None: each trial leases its own."""

    def __post_init__(self) -> None:
        self.space = self.spec.search_space()
        self.base = self.spec.base_spec().model_copy(update={"importance": False})
        self.task = resolve_task(self.train.get_column(self.spec.target), self.spec.task)
        self.sets = _named_sets(self.spec, self.valid, self.datasets)

    def warm(self) -> None:
        """Import every searched estimator's library now (a worker process does before its first trial)."""
        for name in self.space.estimators or (self.base.estimator,):
            resolve_estimator(name).load(self.task)

    @contextmanager
    def leased(self) -> Iterator[int]:
        """Hold this process's cores for a whole study (its libraries imported first, so their thread pools are
        limited): one lease, not one per trial, whose load sampling and thread-pool scan cost ~20 ms each."""
        self.warm()
        with limited_threads(self.threads) as threads:
            granted = self.granted = int(threads["granted"] or 1)
            try:
                yield granted
            finally:
                self.granted = None

    def __call__(self, trial: Any) -> float | tuple[float, float]:
        try:
            return self._trial(trial)
        except (LooplineError, ValueError) as exc:  # the ones a study survives: say why on the trial
            trial.set_user_attr(ERROR_ATTR, f"{type(exc).__name__}: {exc}")
            raise

    def _trial(self, trial: Any) -> float | tuple[float, float]:
        if self.worker is not None:
            trial.set_user_attr(WORKER_ATTR, self.worker)
        values = self.space.suggest(trial)
        spec = self.space.apply(values, self.base).model_copy(update={"task": self.task})
        estimator = resolve_estimator(spec.estimator)
        # the study's cores (tune() runs every trial inside leased()), else a lease for this trial alone
        with nullcontext(self.granted) if self.granted is not None else self.leased() as granted:
            spec = spec.model_copy(update={"params": thread_params(estimator, spec.params, granted)})
            scores, bundle = self._scores(trial, spec, estimator.fitter)
        trial.set_user_attr(SCORES_ATTR, scores)
        value = aggregate(scores, self.spec.aggregate, self.spec.quantile, self.spec.maximize())
        if self.spec.tradeoff is None:
            return value
        return value, _tradeoff(self.spec.tradeoff, bundle, self.valid)

    def _scores(self, trial: Any, spec: TrainSpec, fitter: str | None) -> tuple[dict[str, float], Any]:
        scores: dict[str, float] = {}
        prune = self.spec.pruner != "none"
        folds = [s for s in self.spec.sets if isinstance(s, FoldSets)]
        bundle = None
        for fold_set in folds:
            for i, (fit_rows, held_out) in enumerate(self._folds(fold_set)):
                result = train_candidate(self.train[fit_rows], self.valid, spec)
                bundle = result.bundle
                scores[f"fold{i + 1}"] = self._metric(result.bundle.evaluate(self.train[held_out]))
                if prune:
                    self._report(trial, len(scores), scores)
        if len(folds) < len(self.spec.sets):
            hook = (
                _RoundReporter(trial, self.spec) if prune and not folds and fitter in ("lightgbm", "xgboost") else None
            )
            result = train_candidate(self.train, self.valid, spec, on_round=hook)
            bundle = result.bundle
            for name, frame in self.sets.items():  # the trainer scored the validation split already
                metrics = result.metrics["valid"] if frame is self.valid else result.bundle.evaluate(frame)
                scores[name] = self._metric(metrics)
        return scores, bundle

    def _report(self, trial: Any, step: int, scores: Mapping[str, float]) -> None:
        trial.report(aggregate(scores, self.spec.aggregate, self.spec.quantile, self.spec.maximize()), step)
        if trial.should_prune():
            trial.set_user_attr(SCORES_ATTR, dict(scores))
            raise optuna().TrialPruned()

    def _metric(self, metrics: Mapping[str, float]) -> float:
        value = metrics.get(self.spec.metric)
        if value is None:
            hint = did_you_mean(self.spec.metric, metrics) or f"Metrics of this task: {', '.join(sorted(metrics))}."
            if self.spec.metric in ("roc_auc", "pr_auc", "log_loss"):
                return float("nan")  # a set holding one class: left out of the aggregate
            raise ConfigError(f"the model has no metric {self.spec.metric!r}.", key="metric", hint=hint)
        return float(value)

    def _folds(self, fold_set: FoldSets) -> list[tuple[np.ndarray, np.ndarray]]:
        method = resolve_cv_method(
            fold_set.method,
            self.task,
            group_column=fold_set.group_column,
            time_column=fold_set.time_column,
            where="sets.folds",
        )
        if method == "time":
            return list(time_series_folds(self.train, str(fold_set.time_column), fold_set.folds))
        stratify = self.spec.target if method == "stratified" else None
        group = fold_set.group_column if method == "group" else None
        return list(kfold_indices(self.train, fold_set.folds, stratify=stratify, group=group, seed=self.spec.seed))


class _RoundReporter:
    """Reports a boosting fit's validation metric to the pruner every ``report_every`` rounds."""

    def __init__(self, trial: Any, spec: TuneSpec) -> None:
        self.trial, self.every, self.maximize = trial, spec.report_every, spec.maximize()

    def __call__(self, round_: int, value: float, higher_is_better: bool) -> None:
        if round_ % self.every:
            return
        self.trial.report(value if higher_is_better == self.maximize else -value, round_)
        if self.trial.should_prune():
            raise optuna().TrialPruned()


def _named_sets(spec: TuneSpec, valid: pl.DataFrame, datasets: Mapping[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Every evaluation set scored by the one fit on the training split, by name (folds aside)."""
    sets: dict[str, pl.DataFrame] = {}
    for each in spec.sets:
        if isinstance(each, ValidSet):
            sets["valid"] = valid
        elif isinstance(each, WindowSets):
            sets.update(_windows(valid, each))
        elif isinstance(each, SliceSets):
            sets.update(_slices(valid, each))
        elif isinstance(each, DatasetSet):
            if each.name not in datasets:
                hint = did_you_mean(each.name, datasets) or (
                    "Pass it: tune(..., datasets={name: frame}), or list it as the tune step's next input."
                )
                raise ConfigError(f"no dataset {each.name!r} was given to score on.", key="sets", hint=hint)
            sets[each.name] = datasets[each.name]
    return sets


def _column(frame: pl.DataFrame, column: str, where: str) -> pl.Series:
    if column not in frame.columns:
        hint = did_you_mean(column, frame.columns) or f"Columns: {', '.join(frame.columns)}."
        raise DataError(f"{where}: the validation split has no column {column!r}.", column=column, hint=hint)
    return frame.get_column(column)


def _windows(valid: pl.DataFrame, sets: WindowSets) -> dict[str, pl.DataFrame]:
    series = _column(valid, sets.column, "sets.windows")
    if not series.dtype.is_temporal():
        raise DataError(
            f"sets.windows: column {sets.column!r} holds {series.dtype}, not times.",
            column=sets.column,
            hint="Name a datetime or date column, or parse it first (a parse_dates transform upstream).",
        )
    try:
        starts = valid.select(pl.col(sets.column).dt.truncate(sets.every).alias("w")).get_column("w")
    except pl.exceptions.PolarsError as exc:
        raise ConfigError(
            f"sets.windows.every {sets.every!r} is not a duration: {exc}", key="sets", hint="Write 1mo, 7d or 12h."
        ) from None
    chosen = starts.drop_nulls().unique().sort()[-sets.last :]
    return {f"window:{start}": valid.filter(starts == start) for start in chosen.to_list()}


def _slices(valid: pl.DataFrame, sets: SliceSets) -> dict[str, pl.DataFrame]:
    _column(valid, sets.column, "sets.slices")
    counts = valid.get_column(sets.column).drop_nulls().value_counts(sort=True)
    top = counts.filter(pl.col("count") >= sets.min_rows).head(sets.top).get_column(sets.column).to_list()
    if not top:
        raise DataError(
            f"sets.slices: no value of {sets.column!r} has {sets.min_rows} validation rows.",
            column=sets.column,
            hint="Lower min_rows, or slice by a column with fewer values.",
        )
    return {f"{sets.column}={value}": valid.filter(pl.col(sets.column) == value) for value in top}


def _tradeoff(kind: str, bundle: Any, valid: pl.DataFrame) -> float:
    """The second objective: one-record latency (median ms) or the bundle's size (KiB)."""
    if kind == "bundle_kb":
        return len(bundle.to_bytes()) / 1024
    records = valid.head(1).to_dicts()
    timings = []
    for _ in range(LATENCY_RECORDS):
        started = time.perf_counter()
        bundle.predict_records(records)
        timings.append(time.perf_counter() - started)
    return float(np.median(timings) * 1000)
