"""Training one candidate model: preprocessing fitted on train, an estimator, metrics on train and valid."""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from loopline.core.errors import ConfigError, DataError, did_you_mean
from loopline.prep import Chain, Preprocessor
from loopline.train._bundle import ModelBundle, target_values
from loopline.train._estimators import ESTIMATORS
from loopline.train._metrics import TASKS, compute_metrics

MAX_INTEGER_CLASSES = 10
"""An integer target with at most this many distinct values is treated as classes by ``task="auto"``."""


@dataclass
class TrainResult:
    """A trained candidate: its bundle, metrics per split, timings in seconds and estimator params."""

    bundle: ModelBundle
    metrics: dict[str, dict[str, float]]
    timings: dict[str, float]
    params: dict[str, Any]


def train_candidate(
    train: pl.DataFrame,
    valid: pl.DataFrame,
    *,
    target: str,
    numeric: list[str],
    categorical: list[str],
    estimator: str,
    params: dict[str, Any] | None = None,
    task: str = "auto",
    prep: dict[str, Any] | None = None,
    transforms: list[dict[str, Any]] | None = None,
    seed: int = 0,
) -> TrainResult:
    """Fit preprocessing and ``estimator`` (a registry alias) on ``train``; score train and valid.

    ``task="auto"`` picks binary or multiclass for bool, string or few-valued integer
    targets, and regression otherwise. ``prep`` holds Preprocessor keyword arguments.
    ``transforms`` is a transform chain (``[{type: impute, ...}, ...]``) fitted on the
    training rows only, before the preprocessor: its numeric and boolean outputs become
    the preprocessor's numeric features, the others its categorical ones.
    Rows with a null target raise DataError (filter them first).
    """
    started = time.perf_counter()
    _check_columns(target, numeric, categorical)
    y_train, y_valid = target_values(train, target), target_values(valid, target)
    task = resolve_task(train.get_column(target), task)
    spec = ESTIMATORS.get(estimator)
    resolved = spec.resolve_params(task, params, seed)
    prep_start = time.perf_counter()
    chain = None
    if transforms:
        chain = Chain.from_config(transforms)
        train = chain.fit_transform(train.select([*numeric, *categorical, target]), target)
        y_train = target_values(train, target)  # sampling and augmentation may change the training rows
        valid = valid.with_columns(chain.transform(valid.select([*numeric, *categorical])))
        numeric, categorical = _split_by_type(train.drop(target))
    preprocessor = Preprocessor(numeric, categorical, **_prep_kwargs(prep))
    preprocessor.fit(train)
    x_train, x_valid = preprocessor.transform(train), preprocessor.transform(valid)
    prep_s = time.perf_counter() - prep_start

    fit_start = time.perf_counter()
    model = spec.load(task)(**resolved)
    model.fit(x_train, y_train if task != "regression" else y_train.astype(np.float64))
    fit_s = time.perf_counter() - fit_start

    classes = None if task == "regression" else np.asarray(model.classes_).tolist()
    metadata = {
        "algorithm": estimator,
        "params": resolved,
        "prep": preprocessor.get_params(),
        "feature_names": list(preprocessor.feature_names_),
        "n_train": train.height,
        "n_valid": valid.height,
        "seed": seed,
        "trained_at": datetime.now(UTC).isoformat(),
    }
    if chain is not None:
        metadata["transforms"] = transforms
        metadata["lineage"] = chain.lineage()
    bundle = ModelBundle(preprocessor, model, target=target, task=task, classes=classes, metadata=metadata, chain=chain)
    metrics = {"train": _score(bundle, x_train, y_train), "valid": _score(bundle, x_valid, y_valid)}
    timings = {"prep_s": prep_s, "fit_s": fit_s, "total_s": time.perf_counter() - started}
    return TrainResult(bundle=bundle, metrics=metrics, timings=timings, params=resolved)


def resolve_task(target: pl.Series, task: str = "auto") -> str:
    """The task for a target column: ``task`` itself, checked, or inferred when "auto"."""
    if task not in (*TASKS, "auto"):
        hint = did_you_mean(task, (*TASKS, "auto")) or f"Use one of: auto, {', '.join(TASKS)}."
        raise ConfigError(f"unknown task {task!r}.", key="task", hint=hint)
    n_classes = target.drop_nulls().n_unique()
    if task == "auto":
        task = _infer(target.dtype, n_classes)
    if task != "regression" and n_classes < 2:
        raise DataError(
            f"target column {target.name!r} has {n_classes} class in the training rows.",
            column=target.name,
            hint="Training a classifier needs at least two classes; check the split or the target.",
        )
    if task == "binary" and n_classes > 2:
        raise DataError(
            f"target column {target.name!r} has {n_classes} classes, too many for task 'binary'.",
            column=target.name,
            hint="Use task 'multiclass' (or 'auto').",
        )
    if task == "regression" and not (target.dtype.is_numeric() or target.dtype == pl.Boolean):
        raise DataError(
            f"target column {target.name!r} has type {target.dtype}; regression needs numbers.",
            column=target.name,
            hint="Use task 'multiclass' (or 'auto'), or cast the target to a number.",
        )
    return task


def _infer(dtype: pl.DataType, n_classes: int) -> str:
    if dtype == pl.Boolean:
        return "binary"
    few_integers = dtype.is_integer() and n_classes <= MAX_INTEGER_CLASSES
    if isinstance(dtype, pl.String | pl.Categorical | pl.Enum) or few_integers:
        return "binary" if n_classes <= 2 else "multiclass"
    return "regression"


def _split_by_type(frame: pl.DataFrame) -> tuple[list[str], list[str]]:
    """A chain's outputs as the preprocessor's numeric (numbers, booleans) and categorical columns."""
    numeric = [n for n, t in frame.schema.items() if t.is_numeric() or t in (pl.Boolean, pl.Null)]
    return numeric, [n for n in frame.columns if n not in numeric]


def _check_columns(target: str, numeric: list[str], categorical: list[str]) -> None:
    if target in numeric or target in categorical:
        raise ConfigError(
            f"the target {target!r} is also listed as a feature.",
            key="numeric" if target in numeric else "categorical",
            hint="Remove it from the feature lists; a model must not see its own label.",
        )


def _prep_kwargs(prep: dict[str, Any] | None) -> dict[str, Any]:
    allowed = [n for n in inspect.signature(Preprocessor).parameters if n not in ("numeric", "categorical")]
    for key in prep or {}:
        if key not in allowed:
            hint = did_you_mean(key, allowed) or f"Preprocessing options: {', '.join(allowed)}."
            raise ConfigError(f"unknown preprocessing option {key!r}.", key=key, hint=hint)
    return dict(prep or {})


def _score(bundle: ModelBundle, features: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    out = bundle.predict_matrix(features)
    return compute_metrics(bundle.task, truth, out["prediction"], out.get("probability"), classes=bundle.classes)
