"""Cross-validation of one candidate's configuration on the training split.

Each fold refits everything a candidate is (transform chain, preprocessing, estimator) with
:func:`train_candidate` on the fold's training rows only, then scores the fold's held-out rows with
the fitted bundle: nothing of the held-out rows reaches the fit. Early stopping, when configured,
watches the validation split in every fold, as it does for the final model, never the held-out rows.
"""

from __future__ import annotations

import time

import numpy as np
import polars as pl

from loopline.core.errors import ConfigError, DataError, LooplineError, did_you_mean
from loopline.core.records import CrossValidation
from loopline.train._folds import Fold, kfold_indices, time_series_folds
from loopline.train._spec import TrainSpec, check_spec
from loopline.train._trainer import resolve_task, train_candidate

CV_METHODS = ("auto", "kfold", "stratified", "group", "time")
"""``cv.method`` values: auto is stratified for classification and kfold for regression."""


def cross_validate(
    train: pl.DataFrame,
    valid: pl.DataFrame,
    spec: TrainSpec,
    *,
    folds: int,
    method: str = "auto",
    group_column: str | None = None,
    time_column: str | None = None,
    fold_seed: int = 0,
    where: str = "cv",
) -> CrossValidation:
    """Fit ``train_candidate(fold, valid, spec)`` on each fold of ``train`` and score the fold's held-out rows.

    ``method``: kfold (shuffled with ``fold_seed``), stratified (each fold keeps the
    class shares), group (all rows of a ``group_column`` value held out together), time (expanding
    window on ``time_column``: every fold trains strictly before the rows it scores; see
    :func:`time_series_folds`), or auto. ``where`` prefixes the keys that errors name.

    Returns ``{"method", "folds", "seed", "group_column", "time_column", "fold_rows": [{"train",
    "valid"}], "fold_metrics": [{metric: value}], "mean": {metric: value}, "std": {metric: value},
    "fit_s"}`` (``seed`` is ``fold_seed``). ``mean`` and ``std`` (population, ddof=0) cover the folds
    that report the metric (AUC is left out of a fold whose held-out rows hold one class). Bad options
    raise ConfigError, too few rows or groups for ``folds`` DataError, each naming the key and the fix.
    """
    spec = check_spec(spec)
    target = spec.target
    task = resolve_task(train.get_column(target), spec.task)
    fold_spec = spec.model_copy(update={"task": task, "importance": False})  # the step measures it once
    resolved = resolve_cv_method(method, task, group_column=group_column, time_column=time_column, where=where)
    fold_list = _folds(train, folds, resolved, target, group_column, time_column, fold_seed, where)
    started = time.perf_counter()
    fold_rows: list[dict[str, int]] = []
    fold_metrics: list[dict[str, float]] = []
    for i, (fit_rows, held_out_rows) in enumerate(fold_list):
        fit_part, held_out = train[fit_rows], train[held_out_rows]
        try:
            result = train_candidate(fit_part, valid, fold_spec)
            fold_metrics.append(result.bundle.evaluate(held_out))
        except (ConfigError, DataError) as exc:
            raise _in_fold(exc, f"{where}: fold {i + 1} of {len(fold_list)}: ") from exc
        fold_rows.append({"train": fit_part.height, "valid": held_out.height})
    mean, std = _summary(fold_metrics)
    return CrossValidation(
        method=resolved,
        folds=len(fold_list),
        seed=fold_seed,
        fold_rows=tuple(fold_rows),
        fold_metrics=tuple(fold_metrics),
        mean=mean,
        std=std,
        group_column=group_column,
        time_column=time_column,
        fit_s=time.perf_counter() - started,
    )


def resolve_cv_method(
    method: str, task: str, *, group_column: str | None, time_column: str | None, where: str = "cv"
) -> str:
    """The fold method ``method`` means for ``task``; ConfigError when its options are missing or wrong."""
    if method not in CV_METHODS:
        hint = did_you_mean(method, CV_METHODS) or f"Use one of: {', '.join(CV_METHODS)}."
        raise ConfigError(f"unknown {where}.method {method!r}.", key=f"{where}.method", hint=hint)
    if method == "auto":
        method = "kfold" if task == "regression" else "stratified"
    if method == "stratified" and task == "regression":
        raise ConfigError(
            f"{where}.method 'stratified' keeps class shares, but the target is a regression target.",
            key=f"{where}.method",
            hint="Use method: kfold (or auto) for regression.",
        )
    needed = {"group": ("group_column", group_column), "time": ("time_column", time_column)}
    if method in needed and needed[method][1] is None:
        key = needed[method][0]
        raise ConfigError(
            f"{where}.method {method!r} needs {where}.{key}.",
            key=f"{where}.{key}",
            hint=f"Set {key}: the column whose "
            + ("rows are held out together." if method == "group" else "times order the folds (past -> future)."),
        )
    return method


def _folds(
    train: pl.DataFrame,
    k: int,
    method: str,
    target: str,
    group_column: str | None,
    time_column: str | None,
    seed: int,
    where: str,
) -> list[Fold]:
    if k < 2:
        raise ConfigError(
            f"{where}.folds={k} cannot cross-validate.",
            key=f"{where}.folds",
            hint="Use folds >= 2 (5 is common), or remove cv.",
        )
    column = group_column if method == "group" else time_column if method == "time" else None
    if column is not None and column not in train.columns:
        raise DataError(
            f"{where}: column {column!r} is not in the training split.",
            column=column,
            hint=did_you_mean(column, train.columns) or f"Columns present: {', '.join(train.columns)}.",
        )
    _check_enough(train, k, method, column, where)
    try:
        if method == "time":
            return time_series_folds(train, str(time_column), k)
        stratify = target if method == "stratified" else None
        return kfold_indices(train, k, stratify=stratify, group=group_column if method == "group" else None, seed=seed)
    except (ConfigError, DataError) as exc:
        raise _in_fold(exc, f"{where}: ") from exc


def _check_enough(train: pl.DataFrame, k: int, method: str, column: str | None, where: str) -> None:
    """DataError naming ``folds`` when the training split has too few rows (or groups) for ``k`` folds."""
    rows = train.height
    if method == "group" and column is not None:
        groups = train.get_column(column).n_unique()
        if groups < k:
            raise DataError(
                f"{where}.folds={k} needs at least {k} groups; group column {column!r} has {groups} "
                "in the training split.",
                column=column,
                hint=f"Set {where}.folds to at most {groups}, or use a column with more groups.",
            )
    needed = k + 1 if method == "time" else k
    if rows < needed:
        what = "rows (a first block to train on, then one per fold)" if method == "time" else "rows"
        raise DataError(
            f"{where}.folds={k} needs at least {needed} {what}; the training split has {rows}.",
            hint=f"Set {where}.folds to at most {max(rows - (needed - k), 2)}, or train on more rows.",
        )


def _summary(fold_metrics: list[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    names = sorted({name for metrics in fold_metrics for name in metrics})
    mean, std = {}, {}
    for name in names:
        values = np.array([m[name] for m in fold_metrics if name in m and np.isfinite(m[name])], dtype=np.float64)
        if values.size:
            mean[name], std[name] = float(values.mean()), float(values.std())
    return mean, std


def _in_fold(exc: LooplineError, prefix: str) -> LooplineError:
    """The same error with ``prefix`` before its message (its key, column and hint kept)."""
    if isinstance(exc, ConfigError):
        return ConfigError(prefix + exc.message, key=exc.key, hint=exc.hint)
    if isinstance(exc, DataError):
        return DataError(prefix + exc.message, file=exc.file, column=exc.column, row=exc.row, hint=exc.hint)
    return exc
