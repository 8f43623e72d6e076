"""The trainer contract, as checks (see :class:`loopline.bundle.EstimatorSpec`).

A trainer is a registered :class:`EstimatorSpec`. :func:`check_trainer` builds it, fits it
directly and through :func:`loopline.train.train_candidate` on small generated data, and
stores and loads its bundle; the first broken rule raises AssertionError saying what broke
and how to fix it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from loopline.bundle import ESTIMATORS, EstimatorSpec, ModelBundle
from loopline.core.errors import ConfigError, LooplineError, UnsafeArtifactError
from loopline.train import TrainResult, TrainSpec, train_candidate

METRICS: dict[str, frozenset[str]] = {
    "binary": frozenset({"accuracy", "ece", "f1", "log_loss", "pr_auc", "roc_auc"}),
    "multiclass": frozenset({"accuracy", "ece", "f1_macro", "log_loss", "roc_auc"}),
    "regression": frozenset({"mae", "mape", "r2", "rmse"}),
}
"""Metrics every candidate of a task must report, on each split."""

LABELS: dict[str, list[Any]] = {"binary": ["yes", "no"], "multiclass": ["c", "a", "b"]}
"""Class labels of the generated data, in an order that is not sorted (a model must not assume it)."""

UNKNOWN_PARAM = "loopline_no_such_parameter"
_FEATURES = {"numeric": ["x1", "x2"], "categorical": ["g"]}
_TOLERANCE = 1e-6


def check_trainer(
    spec_or_alias: EstimatorSpec | str,
    task: str,
    *,
    params: dict[str, Any] | None = None,
    seed: int = 7,
    rows: int = 300,
) -> None:
    """Raise AssertionError naming the first broken rule of the trainer contract for ``task``.

    ``spec_or_alias`` must be registered in :data:`loopline.bundle.ESTIMATORS` (by
    ``ESTIMATORS.register`` or the ``loopline.estimators`` entry point). ``params``
    override the spec's defaults (e.g. fewer trees, for speed); ``rows`` is the size of
    the generated training table (the validation table has half as many).

    The rules: it builds with its defaults and the seed, its parameters round-trip through
    ``get_params()`` and unknown ones raise ConfigError; fitted, its probabilities have one
    column per class in the order of its classes and each row sums to 1; through
    ``train_candidate`` every metric of the task is present and finite, the same seed gives
    identical metrics and predictions, and the bundle loads back from ``to_bytes()`` and
    predicts identically on the table and the record paths.
    """
    spec = _registered(spec_or_alias)
    _require(
        task in spec.tasks,
        f"{spec.name}: does not support task {task!r} (its tasks: {', '.join(spec.tasks)}); "
        "check only the tasks listed in EstimatorSpec.classes",
    )
    _check_params(spec, task, params, seed)
    train, valid = _tables(task, rows)
    _check_fitted_estimator(spec, task, params, seed, train)
    first = _train(spec, task, params, seed, train, valid)
    _check_metrics(spec, task, first)
    _check_predictions(spec, task, first.bundle, valid)
    _check_reproducible(spec, first, _train(spec, task, params, seed, train, valid), valid)
    _check_round_trip(spec, first.bundle, valid)


def _registered(spec_or_alias: EstimatorSpec | str) -> EstimatorSpec:
    name = spec_or_alias if isinstance(spec_or_alias, str) else spec_or_alias.name
    how = "register it with ESTIMATORS.register(spec.name, spec) or the 'loopline.estimators' entry point"
    _require(name in ESTIMATORS, f"{name}: no estimator of that name is registered; {how}")
    spec = ESTIMATORS.get(name)
    _require(
        isinstance(spec_or_alias, str) or spec == spec_or_alias,
        f"{name}: another spec is registered under this name; {how} (replace=True to override)",
    )
    return spec


# -- parameters ---------------------------------------------------------------------------------


def _check_params(spec: EstimatorSpec, task: str, params: dict[str, Any] | None, seed: int) -> None:
    name = spec.name
    try:
        default = spec.build(task, seed=seed)
        built = spec.build(task, params, seed)
    except LooplineError as exc:
        raise AssertionError(f"{name}: building it failed: {exc}") from exc
    except Exception as exc:
        raise AssertionError(
            f"{name}: building it failed ({type(exc).__name__}: {exc}); its class must be constructible "
            "from the spec's defaults and seed_param"
        ) from exc
    stored = _params_of(name, default)
    for key, value in spec.defaults.items():
        _require(
            _same(stored.get(key), value),
            f"{name}: default {key}={value!r} reads back as {stored.get(key)!r} from get_params(); the constructor "
            "must store each argument unchanged (validate in fit)",
        )
    if spec.seed_param is not None:
        _require(
            _same(stored.get(spec.seed_param), seed),
            f"{name}: the seed does not reach the estimator (get_params()[{spec.seed_param!r}] is "
            f"{stored.get(spec.seed_param)!r}, expected {seed}); set EstimatorSpec.seed_param to the parameter "
            "that takes the random seed, or None if it has none",
        )
    _check_rebuild(name, built, spec.resolve_params(task, params, seed))
    try:
        spec.resolve_params(task, {UNKNOWN_PARAM: 1}, seed)
    except ConfigError:
        return
    raise AssertionError(
        f"{name}: the unknown parameter {UNKNOWN_PARAM!r} was accepted; it must raise ConfigError. A class taking "
        "**kwargs must list its parameters in get_params() (or the spec in native_params)"
    )


def _check_rebuild(name: str, built: Any, resolved: dict[str, Any]) -> None:
    stored = _params_of(name, built)
    for key, value in resolved.items():
        _require(
            _same(stored.get(key), value),
            f"{name}: parameter {key}={value!r} reads back as {stored.get(key)!r} from get_params(); "
            "the constructor must store each argument unchanged under its own name",
        )
    try:
        again = _params_of(name, type(built)(**stored))
    except Exception as exc:
        raise AssertionError(
            f"{name}: rebuilding it from its get_params() failed ({type(exc).__name__}: {exc}); get_params() must "
            "return constructor arguments"
        ) from exc
    _require(
        all(_same(again.get(k), v) for k, v in stored.items()),
        f"{name}: rebuilt from get_params() it reports other parameters; the constructor must store its "
        "arguments as given",
    )


def _params_of(name: str, estimator: Any) -> dict[str, Any]:
    try:
        return dict(estimator.get_params(deep=False))
    except Exception as exc:
        raise AssertionError(
            f"{name}: get_params(deep=False) failed ({type(exc).__name__}: {exc}); derive the class from "
            "sklearn.base.BaseEstimator and name every parameter in __init__"
        ) from exc


# -- the fitted estimator -----------------------------------------------------------------------


def _check_fitted_estimator(
    spec: EstimatorSpec, task: str, params: dict[str, Any] | None, seed: int, train: pl.DataFrame
) -> None:
    """Fit the estimator alone on the numeric features: its probabilities, before any metric reads them."""
    name = spec.name
    x = np.ascontiguousarray(train.select(_FEATURES["numeric"]).to_numpy(), dtype=np.float64)
    y = train.get_column("y").to_numpy()
    labels = np.unique(y)
    estimator = spec.build(task, params, seed)
    try:
        estimator.fit(x, np.searchsorted(labels, y) if spec.encode_labels and task != "regression" else y)
    except Exception as exc:
        raise AssertionError(f"{name}: fit(X, y) failed ({type(exc).__name__}: {exc})") from exc
    if task == "regression":
        _check_regression_output(name, np.asarray(estimator.predict(x)), len(x))
        return
    classes = labels if spec.encode_labels else np.asarray(getattr(estimator, "classes_", []))
    _require(
        sorted(map(str, classes.tolist())) == sorted(map(str, labels.tolist())),
        f"{name}: classes_ is {classes.tolist()!r}, expected the training labels {labels.tolist()!r}; "
        "set classes_ in fit to the labels in predict_proba's column order (or set encode_labels=True)",
    )
    probability = np.asarray(estimator.predict_proba(x), dtype=np.float64)
    _check_probabilities(name, probability, len(x), len(classes))
    _check_class_order(name, probability, classes.tolist(), y)


def _check_regression_output(name: str, prediction: np.ndarray, n: int) -> None:
    _require(prediction.shape == (n,), f"{name}: predict gives shape {prediction.shape}, expected ({n},)")
    _require(bool(np.isfinite(prediction).all()), f"{name}: predict gives NaN or infinite values")


def _check_probabilities(name: str, probability: np.ndarray, n: int, k: int) -> None:
    _require(
        probability.shape == (n, k),
        f"{name}: predict_proba gives shape {probability.shape}, expected ({n}, {k}): one column per class, "
        "two for binary",
    )
    _require(bool(np.isfinite(probability).all()), f"{name}: predict_proba gives NaN or infinite values")
    _require(
        bool(((probability >= -_TOLERANCE) & (probability <= 1 + _TOLERANCE)).all()),
        f"{name}: predict_proba gives values outside [0, 1]",
    )
    sums = probability.sum(axis=1)
    worst = int(np.abs(sums - 1).argmax())
    _require(
        abs(float(sums[worst]) - 1) <= _TOLERANCE,
        f"{name}: predict_proba rows must sum to 1 (row {worst} sums to {float(sums[worst]):.6g}); "
        "normalise the probabilities",
    )


def _check_class_order(name: str, probability: np.ndarray, classes: list[Any], truth: np.ndarray) -> None:
    """On well-separated classes, each class's rows give their highest mean probability to its own column."""
    for label in classes:
        rows = truth == label
        column = int(probability[rows].mean(axis=0).argmax())
        _require(
            classes[column] == label,
            f"{name}: the rows of class {label!r} get their highest probability in the column of "
            f"{classes[column]!r}; classes_ must list the labels in predict_proba's column order "
            f"(classes_ is {classes!r})",
        )


# -- through train_candidate --------------------------------------------------------------------


def _train(
    spec: EstimatorSpec,
    task: str,
    params: dict[str, Any] | None,
    seed: int,
    train: pl.DataFrame,
    valid: pl.DataFrame,
) -> TrainResult:
    try:
        options = {"target": "y", **_FEATURES, "estimator": spec.name, "params": params or {}, "task": task}
        return train_candidate(train, valid, TrainSpec.parse({**options, "seed": seed}))
    except Exception as exc:
        raise AssertionError(
            f"{spec.name}: train_candidate failed for task {task!r} ({type(exc).__name__}: {exc})"
        ) from exc


def _check_metrics(spec: EstimatorSpec, task: str, result: TrainResult) -> None:
    for split in ("train", "valid"):
        got = result.metrics.get(split, {})
        missing = sorted(METRICS[task] - set(got))
        _require(not missing, f"{spec.name}: {split} metrics lack {', '.join(missing)} for task {task!r}")
        bad = sorted(k for k, v in got.items() if not (isinstance(v, float) and math.isfinite(v)))
        _require(
            not bad,
            f"{spec.name}: {split} metrics {', '.join(f'{k}={got[k]!r}' for k in bad)} are not finite numbers; "
            "the predictions or probabilities hold NaN or infinite values",
        )


def _check_predictions(spec: EstimatorSpec, task: str, bundle: ModelBundle, valid: pl.DataFrame) -> None:
    name = spec.name
    _require(bundle.task == task, f"{name}: the bundle's task is {bundle.task!r}, expected {task!r}")
    out = bundle.predict_table(valid)
    n = valid.height
    if task == "regression":
        _require(bundle.classes is None, f"{name}: a regression bundle has no classes")
        _check_regression_output(name, out["prediction"], n)
        return
    labels = LABELS[task]
    classes = bundle.classes or []
    _require(
        sorted(map(str, classes)) == sorted(map(str, labels)),
        f"{name}: the bundle's classes are {classes!r}, expected the target's labels {labels!r}",
    )
    _require(out["prediction"].shape == (n,), f"{name}: predict_table gives {out['prediction'].shape} predictions")
    _check_probabilities(name, out["probability"], n, len(classes))
    _check_class_order(name, out["probability"], classes, valid.get_column("y").to_numpy())


def _check_reproducible(spec: EstimatorSpec, first: TrainResult, second: TrainResult, valid: pl.DataFrame) -> None:
    fix = (
        f"the estimator must draw all its randomness from its seed parameter ({spec.seed_param!r})"
        if spec.seed_param
        else "the estimator must be deterministic, or set EstimatorSpec.seed_param to its seed parameter"
    )
    for split, metrics in first.metrics.items():
        for key, value in metrics.items():
            again = second.metrics.get(split, {}).get(key)
            _require(
                _same(value, again),
                f"{spec.name}: the same seed gave different results ({split} {key} {value!r}, then {again!r}); {fix}",
            )
    a, b = first.bundle.predict_table(valid), second.bundle.predict_table(valid)
    _require(
        all(np.array_equal(a[k], b[k]) for k in a),
        f"{spec.name}: the same seed gave different predictions; {fix}",
    )


def _check_round_trip(spec: EstimatorSpec, bundle: ModelBundle, valid: pl.DataFrame) -> None:
    name = spec.name
    try:
        loaded = ModelBundle.from_bytes(bundle.to_bytes())
    except UnsafeArtifactError as exc:
        raise AssertionError(
            f"{name}: the bundle does not load back: {exc}; declare every type the fitted estimator holds in "
            "EstimatorSpec.trusted_types ('module:Class')"
        ) from exc
    except Exception as exc:
        raise AssertionError(
            f"{name}: the bundle does not round-trip through to_bytes()/from_bytes() ({type(exc).__name__}: {exc}); "
            "the fitted estimator must be storable by skops"
        ) from exc
    _require(loaded.classes == bundle.classes, f"{name}: the classes changed when the bundle was loaded")
    before, after = bundle.predict_table(valid), loaded.predict_table(valid)
    _require(
        before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before),
        f"{name}: predict_table changed after the bundle was stored and loaded; everything predict uses "
        "must be fitted state the estimator keeps (attributes ending in _)",
    )
    records = valid.to_dicts()
    from_records = loaded.predict_records(records)
    _require(
        from_records == bundle.predict_records(records),
        f"{name}: predict_records changed after the bundle was stored and loaded",
    )
    _check_records_match_table(name, loaded, from_records, after)


def _check_records_match_table(
    name: str, bundle: ModelBundle, records: list[dict[str, Any]], table: dict[str, np.ndarray]
) -> None:
    _require(
        [r["prediction"] for r in records] == table["prediction"].tolist(),
        f"{name}: predict_records and predict_table give different predictions",
    )
    if bundle.classes is None:
        return
    keys = [str(c) for c in bundle.classes]
    probability = np.array([[r["probabilities"][k] for k in keys] for r in records])
    _require(
        bool(np.allclose(probability, table["probability"], rtol=1e-9, atol=1e-12)),
        f"{name}: predict_records and predict_table give different probabilities",
    )


# -- data and helpers ---------------------------------------------------------------------------


def _tables(task: str, rows: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Well-separated generated data: ``x1`` decides the target, ``x2`` and ``g`` are noise."""
    total = rows + rows // 2
    rng = np.random.default_rng(20240611)
    if task == "regression":
        x1 = rng.normal(size=total)
        target: Any = 3.0 * x1 + 10.0 + rng.normal(scale=0.3, size=total)
    else:
        labels = LABELS[task]
        index = np.arange(total) % len(labels)
        rng.shuffle(index)
        x1 = 4.0 * index + rng.normal(scale=0.4, size=total)
        target = [labels[i] for i in index]
    frame = pl.DataFrame(
        {"x1": x1, "x2": rng.normal(size=total), "g": rng.choice(["p", "q"], total).tolist(), "y": target}
    )
    return frame[:rows], frame[rows:]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        return bool(a == b) and type(a) is type(b) if isinstance(a, bool) or isinstance(b, bool) else bool(a == b)
    except (TypeError, ValueError):  # arrays and other values without a plain ==
        return repr(a) == repr(b)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)
