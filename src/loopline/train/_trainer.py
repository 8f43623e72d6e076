"""Training one candidate model: preprocessing fitted on train, an estimator, metrics on train and valid."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from loopline.bundle import (
    TASKS,
    EstimatorSpec,
    ModelBundle,
    compute_metrics,
    resolve_estimator,
    target_values,
    with_training_types,
)
from loopline.bundle._native import native_format, to_native  # the bundle's own storage form, built at training
from loopline.core.errors import ConfigError, DataError, did_you_mean
from loopline.core.records import (
    Candidate,
    FeatureImportance,
    Features,
    Finding,
    Timings,
    TrainReport,
    input_fields,
)
from loopline.prep import Chain, Preprocessor
from loopline.train._class_weight import ClassWeight, class_weights
from loopline.train._diagnostics import perfect_score, training_findings
from loopline.train._importance import feature_importance
from loopline.train._iterative import FitData, RoundHook, check_fit_options, fit_model
from loopline.train._provenance import code_version, peak_rss_mb
from loopline.train._spec import TrainSpec, check_prep_options, check_spec

MAX_INTEGER_CLASSES = 10
"""An integer target with at most this many distinct values is treated as classes by ``task="auto"``."""


@dataclass
class TrainResult:
    """A trained candidate: its bundle, metrics per split, timings in seconds and estimator params.

    ``training`` tells how the fit went: ``stopped`` (converged, max_iterations,
    time_budget; None for estimators that do not train in rounds), ``iterations``,
    ``best_iteration`` (the rounds the model predicts with), ``max_iterations``,
    ``metric`` and ``learning_curve`` (``{"train": [...], "valid": [...]}``, one value per
    round), and ``peak_rss_increase_mb`` (how far the fit raised the process's peak
    resident memory; see :func:`loopline.train._provenance.peak_rss_mb`).
    ``findings`` is what the training diagnostics noticed (see :mod:`loopline.train._diagnostics`).
    ``importance`` is each input feature's weight, measured on the validation split (None when
    ``spec.importance`` is off; see :mod:`loopline.train._importance`).
    """

    bundle: ModelBundle
    metrics: dict[str, dict[str, float]]
    timings: dict[str, float]
    params: dict[str, Any]
    training: dict[str, Any] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    importance: FeatureImportance | None = None

    def report(self, spec: TrainSpec, *, data_fingerprint: str = "") -> TrainReport:
        """The candidate's :class:`TrainReport` for ``spec`` (the spec it was trained from, or the step config
        that holds it): metrics, params, timings with ``training``, schema, features, rows and lineage."""
        metadata = self.bundle.metadata
        return TrainReport(
            algorithm=spec.estimator,
            metrics=dict(self.metrics),
            params=self.params,
            timings=Timings.from_dict({**self.timings, "training": self.training}),
            input_schema=input_fields(self.bundle.input_schema),
            features=Features(tuple(spec.numeric), tuple(spec.categorical)),
            target=spec.target,
            task=self.bundle.task,
            data_fingerprint=data_fingerprint,
            rows={"train": int(metadata.get("n_train", 0)), "valid": int(metadata.get("n_valid", 0))},
            step_config=spec.model_dump(mode="json"),
            lineage=metadata.get("lineage"),
            findings=self.findings,
            importance=self.importance,
        )

    def candidate(
        self, spec: TrainSpec, *, reference: pl.DataFrame | None = None, data_fingerprint: str = ""
    ) -> Candidate:
        """The :class:`Candidate` to register: the bundle's bytes, ``reference`` and :meth:`report`."""
        return Candidate(self.bundle.to_bytes(), reference, self.report(spec, data_fingerprint=data_fingerprint))


def train_candidate(
    train: pl.DataFrame, valid: pl.DataFrame, spec: TrainSpec, *, on_round: RoundHook | None = None
) -> TrainResult:
    """Fit preprocessing and ``spec.estimator`` on ``train``; score train and valid.

    ``spec`` (:class:`TrainSpec`) says what to train: ``estimator`` is a registry alias or a
    scikit-learn estimator's import path (``sklearn.ensemble:ExtraTreesClassifier``; see
    :func:`resolve_estimator`).

    ``task="auto"`` picks binary or multiclass for bool, string or few-valued integer
    targets, and regression otherwise. ``prep`` holds Preprocessor keyword arguments.
    ``transforms`` is a transform chain (``[{type: impute, ...}, ...]``) fitted on the
    training rows only, before the preprocessor: its numeric and boolean outputs become
    the preprocessor's numeric features, the others its categorical ones.
    Rows with a null target raise DataError (filter them first).

    ``early_stopping`` (``{patience: 20, metric: auto}``) and ``time_budget_s`` apply to
    estimators trained in rounds (LightGBM, XGBoost; hist_gradient_boosting takes early
    stopping only), watched on ``valid``; see :mod:`loopline.train._iterative`.
    ``class_weight`` is "balanced" or ``{label: weight}`` (see :mod:`loopline.train._class_weight`).
    ``learning_curve`` records LightGBM's / XGBoost's curve without early stopping or a time
    budget too (each round then also scores valid; they always record it).
    ``train_metrics_rows`` caps the training rows scored for the ``train`` metrics and the
    curve's train values (a sample seeded by ``seed``; None: every row).
    ``diagnostics`` checks the preprocessor's input columns on the training rows (all null, constant,
    target leakage) and the validation score (near perfect); see :mod:`loopline.train._diagnostics`.
    All-null and constant features are left out of the fit by default (the bundle still accepts them as
    inputs); DataError when no feature is left.
    ``on_round`` is called after every boosting round of LightGBM / XGBoost with the validation metric
    (see :func:`~loopline.train._iterative.fit_model`): how a tuner prunes a poor trial mid-fit.
    ``importance`` (on by default) measures each input feature's permutation importance on at most
    ``importance_rows`` validation rows (see :func:`~loopline.train._importance.feature_importance`).
    """
    started = time.perf_counter()
    spec = check_spec(spec)
    target, numeric, categorical = spec.target, list(spec.numeric), list(spec.categorical)
    _check_columns(target, numeric, categorical)
    with_training_types([{"name": n} for n in [*numeric, *categorical]], {}, spec.max_lengths)  # names checked early
    raw_valid = valid  # the input columns as the bundle takes them, before the chain adds its outputs
    y_train, y_valid = target_values(train, target), target_values(valid, target)
    task = resolve_task(train.get_column(target), spec.task)
    estimator = resolve_estimator(spec.estimator)
    resolved = estimator.resolve_params(task, spec.params, spec.seed)
    stopping = spec.early_stopping
    check_fit_options(spec.estimator, estimator.fitter, task, stopping, spec.time_budget_s)
    prep_start = time.perf_counter()
    input_dtypes = {name: str(train.schema[name]) for name in [*numeric, *categorical] if name in train.columns}
    chain = None
    if spec.transforms:
        chain = Chain.from_config(spec.transforms)
        train = chain.fit_transform(train.select([*numeric, *categorical, target]), target)
        y_train = target_values(train, target)  # sampling and augmentation may change the training rows
        valid = valid.with_columns(chain.transform(valid.select([*numeric, *categorical])))
        numeric, categorical = _split_by_type(train.drop(target))
    prep_kwargs = _prep_kwargs(spec.prep)
    findings = training_findings(
        train, y_train, task, numeric, categorical, spec.diagnostics, prep=prep_kwargs, seed=spec.seed
    )
    input_schema = Preprocessor(numeric, categorical).input_schema() if chain is None else []
    numeric, categorical = _used_features(numeric, categorical, findings)
    preprocessor = Preprocessor(numeric, categorical, **prep_kwargs)
    preprocessor.fit(train)
    x_train, x_valid = preprocessor.transform(train), preprocessor.transform(valid)
    prep_s = time.perf_counter() - prep_start

    fit_start = time.perf_counter()
    weight_params, sample_weight = class_weights(
        spec.class_weight, spec.estimator, estimator.load(task), task, y_train, encoded=estimator.encode_labels
    )
    model = estimator.load(task)(**{**resolved, **weight_params})
    data = _fit_data(estimator, task, x_train, y_train, x_valid, y_valid, sample_weight)
    data.train_rows = _sample_rows(len(y_train), spec.train_metrics_rows, spec.seed)
    peak_before = peak_rss_mb()
    log = fit_model(
        model, estimator.fitter, task, data, stopping, spec.time_budget_s, curve=spec.learning_curve, on_round=on_round
    )
    peak_after = peak_rss_mb()
    fit_s = time.perf_counter() - fit_start

    classes = None if task == "regression" else _classes(estimator, model, y_train)
    if native_format(model) is not None:  # the bundle predicts as it will once stored and loaded
        model = to_native(model, len(classes or ()))
    training = {
        **log.as_dict(),
        "peak_rss_increase_mb": None if peak_after is None or peak_before is None else peak_after - peak_before,
        "train_metrics_rows": len(y_train) if data.train_rows is None else len(data.train_rows),
    }
    metadata = {
        "algorithm": spec.estimator,
        "params": resolved,
        "prep": preprocessor.get_params(),
        "feature_names": list(preprocessor.feature_names_),
        "n_train": train.height,
        "n_valid": valid.height,
        "seed": spec.seed,
        "fit_options": {
            "early_stopping": None if stopping is None else stopping.model_dump(),
            "time_budget_s": spec.time_budget_s,
            "class_weight": None if spec.class_weight is None else _plain(spec.class_weight),
            "learning_curve": spec.learning_curve,
            "train_metrics_rows": spec.train_metrics_rows,
        },
        "training": training,
        "code_version": code_version(),
        "trained_at": datetime.now(UTC).isoformat(),
    }
    if chain is not None:
        metadata["transforms"] = spec.transforms
        metadata["lineage"] = chain.lineage()
    dropped = [f.feature for f in findings if f.action == "dropped"]
    if dropped:
        metadata["dropped_features"] = dropped
    bundle = ModelBundle(
        preprocessor,
        model,
        target=target,
        task=task,
        classes=classes,
        input_schema=input_schema if dropped else [],  # a dropped feature is still an accepted input
        metadata=metadata,
        chain=chain,
    )
    bundle.input_schema = with_training_types(bundle.input_schema, input_dtypes, spec.max_lengths)
    rows = data.train_rows  # the metrics compare labels, not the fit's (maybe encoded) targets
    train_x, train_y = (x_train, y_train) if rows is None else (x_train[rows], y_train[rows])
    metrics = {"train": _score(bundle, train_x, train_y)}
    valid_start = time.perf_counter()
    metrics["valid"] = _score(bundle, x_valid, y_valid)
    valid_s = time.perf_counter() - valid_start
    threshold = spec.diagnostics.perfect_score
    score = None if threshold is None else perfect_score(task, metrics["valid"], y_valid, threshold)
    importance = _importance(bundle, raw_valid, spec)
    timings = {"prep_s": prep_s, "fit_s": fit_s, "valid_score_s": valid_s, "total_s": time.perf_counter() - started}
    return TrainResult(
        bundle=bundle,
        metrics=metrics,
        timings=timings,
        params=resolved,
        training=training,
        findings=(*findings, *([score] if score else [])),
        importance=importance,
    )


def _importance(bundle: ModelBundle, valid: pl.DataFrame, spec: TrainSpec) -> FeatureImportance | None:
    """The feature importance ``spec`` asks for, per input feature of the step (None when it is off)."""
    if not spec.importance:
        return None
    return feature_importance(
        bundle,
        valid.select([*spec.features(), spec.target]),
        spec.features(),
        metric=spec.importance_metric,
        rows=spec.importance_rows,
        repeats=spec.importance_repeats,
        seed=spec.seed,
    )


def _used_features(numeric: list[str], categorical: list[str], findings: list[Finding]) -> tuple[list[str], list[str]]:
    """The features left once the dropped ones are out; DataError naming each when none is left."""
    dropped = {f.feature for f in findings if f.action == "dropped"}
    kept = [n for n in numeric if n not in dropped], [n for n in categorical if n not in dropped]
    if dropped and not kept[0] and not kept[1]:
        reasons = "; ".join(f.detail for f in findings if f.action == "dropped")
        raise DataError(
            f"no feature is left to train on: {reasons}",
            hint="Check the source and the split (is the window empty?), or set diagnostics.empty_features: flag "
            "to train on these features anyway.",
        )
    return kept


def _sample_rows(rows: int, cap: int | None, seed: int) -> np.ndarray | None:
    """Sorted indices of ``cap`` rows drawn with ``seed`` (None: fewer rows than the cap, use them all)."""
    if cap is None or rows <= cap:
        return None
    return np.sort(np.random.default_rng(seed).choice(rows, size=cap, replace=False))


def _fit_data(
    spec: EstimatorSpec,
    task: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    sample_weight: np.ndarray | None,
) -> FitData:
    """The matrices to fit on: float targets for regression, class indices where the spec asks."""
    if task == "regression":
        return FitData(x_train, y_train.astype(np.float64), x_valid, y_valid.astype(np.float64), sample_weight)
    if spec.fitter is not None:  # the validation rows are watched while fitting: their labels must be known
        _check_known_labels(y_valid, y_train)
    if not spec.encode_labels:
        return FitData(x_train, y_train, x_valid, y_valid, sample_weight)
    labels = np.unique(y_train)
    return FitData(x_train, np.searchsorted(labels, y_train), x_valid, np.searchsorted(labels, y_valid), sample_weight)


def _classes(spec: EstimatorSpec, model: Any, y_train: np.ndarray) -> list[Any]:
    labels = np.unique(y_train) if spec.encode_labels else np.asarray(model.classes_)
    return list(labels.tolist())


def _check_known_labels(y_valid: np.ndarray, y_train: np.ndarray) -> None:
    labels = np.unique(y_train).tolist()
    unseen = sorted({str(v) for v in np.unique(y_valid).tolist()} - {str(c) for c in labels})
    if unseen:
        raise DataError(
            f"target values {unseen[:5]} were not seen when the model was trained (classes: {labels[:10]}).",
            hint="Train on data that contains every class, or drop these rows before scoring.",
        )


def _plain(class_weight: ClassWeight) -> Any:
    return class_weight if isinstance(class_weight, str) else {str(k): float(v) for k, v in class_weight.items()}


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
    check_prep_options(prep)
    return dict(prep or {})


def _score(bundle: ModelBundle, features: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    out = bundle.predict_matrix(features)
    return compute_metrics(bundle.task, truth, out["prediction"], out.get("probability"), classes=bundle.classes)
