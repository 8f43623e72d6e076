"""Search spaces over the whole model bundle: estimator parameters, preprocessing options, transform options.

A space is a mapping read from YAML, validated against the base :class:`~loopline.train.TrainSpec`::

    model.learning_rate: {float: [0.01, 0.3], log: true}
    model.num_leaves: {int: [15, 255], log: true}
    prep.scale: {choice: [standard, null]}          # a Preprocessor option
    prep.impute.strategy: {choice: [mean, median]}  # option `strategy` of the `impute` transform in `transforms`
    estimator:                                       # the estimator itself a choice, each with its own space
      lightgbm: {model.learning_rate: {float: [0.01, 0.3], log: true}}
      random_forest: {model.max_depth: {int: [3, 20]}}

Every name, value and bound is checked when the space is parsed (ConfigError naming the key, with a did-you-mean).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from loopline.core.errors import ConfigError, did_you_mean
from loopline.train import TrainSpec, resolve_estimator

KINDS = ("float", "int", "choice")
_OPTIONS = ("log", "step")
_PREFIXES = ("model.", "prep.")
ESTIMATOR_KEY = "estimator"


@dataclass(frozen=True)
class Dimension:
    """One searched value: ``key`` (``model.NAME``, ``prep.OPTION`` or ``prep.TRANSFORM.OPTION``) and its
    distribution; ``estimator`` names the estimator it belongs to when the estimator itself is searched."""

    key: str
    kind: Literal["float", "int", "choice"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    estimator: str | None = None

    @property
    def name(self) -> str:
        """The Optuna parameter name: the key, prefixed by its estimator in a conditional space."""
        return self.key if self.estimator is None else f"{self.estimator}/{self.key}"

    def suggest(self, trial: Any) -> Any:
        """The value ``trial`` (an ``optuna.Trial``) suggests for this dimension."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            step = int(self.step or 1)
            return trial.suggest_int(self.name, int(self.low or 0), int(self.high or 0), step=step, log=self.log)
        return trial.suggest_float(self.name, float(self.low or 0), float(self.high or 0), step=self.step, log=self.log)

    def grid(self) -> list[Any] | None:
        """Every value of a discrete dimension (choices, or ints / stepped floats); None for a continuous one."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int" and not self.log:
            return list(range(int(self.low or 0), int(self.high or 0) + 1, int(self.step or 1)))
        if self.kind == "float" and self.step is not None and not self.log:
            count = math.floor((float(self.high or 0) - float(self.low or 0)) / self.step + 1e-9) + 1
            return [round(float(self.low or 0) + i * self.step, 12) for i in range(count)]
        return None

    def bounds(self) -> list[Any]:
        """The values checked at load: both bounds, or every choice."""
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]


@dataclass(frozen=True)
class SearchSpace:
    """A parsed space: ``dimensions`` searched for every trial, ``estimators`` (the estimator as a choice,
    empty: the base spec's) and ``conditional`` (the dimensions searched only with that estimator)."""

    dimensions: tuple[Dimension, ...] = ()
    estimators: tuple[str, ...] = ()
    conditional: Mapping[str, tuple[Dimension, ...]] = field(default_factory=dict)

    def suggest(self, trial: Any) -> dict[str, Any]:
        """``{key: value}`` for one trial (``estimator`` included when it is searched)."""
        values: dict[str, Any] = {d.key: d.suggest(trial) for d in self.dimensions}
        if self.estimators:
            chosen = trial.suggest_categorical(ESTIMATOR_KEY, list(self.estimators))
            values[ESTIMATOR_KEY] = chosen
            values.update({d.key: d.suggest(trial) for d in self.conditional.get(chosen, ())})
        return values

    def values_of(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``{key: value}`` from a finished trial's Optuna params (conditional names back to their keys)."""
        return {name.split("/", 1)[-1]: value for name, value in params.items()}

    def grid(self) -> dict[str, list[Any]]:
        """The grid sampler's search space; ConfigError when the space is not a flat, discrete one."""
        if self.estimators:
            raise ConfigError(
                "the grid sampler cannot search a conditional space (the estimator is a choice).",
                key="sampler",
                hint="Use sampler: tpe or random, or search one estimator at a time.",
            )
        grid: dict[str, list[Any]] = {}
        for dimension in self.dimensions:
            values = dimension.grid()
            if values is None:
                raise ConfigError(
                    f"the grid sampler needs discrete values, and {dimension.key} is continuous.",
                    key=f"space.{dimension.key}",
                    hint="Give it a step ({float: [0.1, 0.3], step: 0.1}) or a choice, or use sampler: tpe.",
                )
            grid[dimension.name] = values
        return grid

    def fingerprint(self) -> str:
        """A hash of the space: a study resumes only with the space it was started with."""
        dims = [*self.dimensions, *(d for ds in self.conditional.values() for d in ds)]
        payload = {"estimators": list(self.estimators), "dims": [_plain(d) for d in dims]}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def apply(self, values: Mapping[str, Any], base: TrainSpec) -> TrainSpec:
        """``base`` as a plain TrainSpec with ``values`` set: estimator, ``params``, ``prep`` and transform options.

        The base spec's ``params`` are kept when the estimator is the base one; another estimator starts from
        its defaults."""
        estimator = str(values.get(ESTIMATOR_KEY, base.estimator))
        params = dict(base.params) if estimator == base.estimator else {}
        prep = dict(base.prep)
        transforms = [dict(t) for t in base.transforms]
        for key, value in values.items():
            if key.startswith("model."):
                params[key[len("model.") :]] = value
            elif key.startswith("prep."):
                parts = key.split(".")
                if len(parts) == 2:
                    prep[parts[1]] = value
                else:
                    for spec in transforms:
                        if spec.get("type") == parts[1]:
                            spec[parts[2]] = value
        fields = {name: getattr(base, name) for name in TrainSpec.model_fields}
        update = {"estimator": estimator, "params": params, "prep": prep, "transforms": transforms}
        return TrainSpec.model_validate({**fields, **update})


def parse_space(space: Mapping[str, Any], base: TrainSpec, *, where: str = "space") -> SearchSpace:
    """The :class:`SearchSpace` for ``space`` over ``base``; ConfigError naming the key under ``where``."""
    if not isinstance(space, Mapping) or not space:
        raise ConfigError(
            "the search space is empty.",
            key=where,
            hint="Name what to search, e.g. space: {model.learning_rate: {float: [0.01, 0.3], log: true}}.",
        )
    dimensions = tuple(
        _dimension(str(key), spec, base, base.estimator, None, where)
        for key, spec in space.items()
        if key != ESTIMATOR_KEY
    )
    estimators: tuple[str, ...] = ()
    conditional: dict[str, tuple[Dimension, ...]] = {}
    if ESTIMATOR_KEY in space:
        choice = space[ESTIMATOR_KEY]
        if isinstance(choice, list | tuple):
            choice = {str(name): {} for name in choice}
        if not isinstance(choice, Mapping) or len(choice) < 1:
            raise ConfigError(
                "estimator in a space maps each estimator to its own space.",
                key=f"{where}.{ESTIMATOR_KEY}",
                hint="Write estimator: {lightgbm: {model.learning_rate: {float: [0.01, 0.3]}}, random_forest: {}}.",
            )
        for name, subspace in choice.items():
            key = f"{where}.{ESTIMATOR_KEY}.{name}"
            try:
                resolve_estimator(str(name))
            except ConfigError as exc:
                raise ConfigError(exc.detail, key=key, hint=exc.hint) from None
            if not isinstance(subspace, Mapping | None):
                raise ConfigError(f"{key} is not a mapping.", key=key, hint="Map parameter keys to distributions.")
            for sub in subspace or {}:
                if not str(sub).startswith("model."):
                    raise ConfigError(
                        f"{key}.{sub}: an estimator's own space holds its parameters only (model.NAME).",
                        key=f"{key}.{sub}",
                        hint="Move preprocessing options to the top of the space.",
                    )
            conditional[str(name)] = tuple(
                _dimension(str(k), v, base, str(name), str(name), key) for k, v in (subspace or {}).items()
            )
        estimators = tuple(conditional)
    else:
        model_keys = [d for d in dimensions if d.key.startswith("model.")]
        _check_model_params(base.estimator, model_keys, base.task, where)
    return SearchSpace(dimensions, estimators, conditional)


def _dimension(key: str, spec: Any, base: TrainSpec, estimator: str, condition: str | None, where: str) -> Dimension:
    full = f"{where}.{key}"
    if not key.startswith(_PREFIXES) or key.count(".") not in (1, 2) or key.endswith("."):
        forms = "Keys are model.PARAM, prep.OPTION or prep.TRANSFORM.OPTION (or estimator for a conditional space)."
        raise ConfigError(f"unknown search key {key!r}.", key=full, hint=f"{_prefixed(key)}{forms}")
    dimension = _distribution(key, spec, full, condition)
    if key.startswith("model."):
        if key.count(".") != 1:
            raise ConfigError(f"{key!r}: a model key is model.PARAM.", key=full, hint="Write model.learning_rate.")
        if condition is not None:
            _check_model_params(estimator, [dimension], base.task, where)
    elif key.count(".") == 1:
        _check_prep(key.split(".")[1], dimension, full)
    else:
        _check_transform(key.split(".")[1], key.split(".")[2], dimension, base, full)
    return dimension


def _prefixed(key: str) -> str:
    """ "Did you mean 'prep.KEY'? " for a preprocessing option written bare, else the model parameter form."""
    from loopline.train._spec import check_prep_options

    bare = key.split(".")[-1]
    try:
        check_prep_options({bare: None})
    except ConfigError:
        return f"Did you mean 'model.{bare}'? "
    return f"Did you mean 'prep.{bare}'? "


def _distribution(key: str, spec: Any, full: str, condition: str | None) -> Dimension:
    example = "{float: [0.01, 0.3], log: true}, {int: [2, 10]} or {choice: [a, b]}"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{full} is not a distribution.", key=full, hint=f"Write one like {example}.")
    kinds = [k for k in spec if k in KINDS]
    for name in spec:
        if name not in KINDS and name not in _OPTIONS:
            hint = did_you_mean(str(name), [*KINDS, *_OPTIONS]) or f"Write one like {example}."
            raise ConfigError(f"{full} has an unknown key {name!r}.", key=f"{full}.{name}", hint=hint)
    if len(kinds) != 1:
        raise ConfigError(f"{full} needs exactly one of float, int, choice.", key=full, hint=f"Write {example}.")
    kind = kinds[0]
    values = spec[kind]
    if kind == "choice":
        if not isinstance(values, list | tuple) or not values or set(spec) - {"choice"}:
            raise ConfigError(
                f"{full}.choice is a non-empty list (and takes no log or step).",
                key=f"{full}.choice",
                hint="Write {choice: [mean, median]}.",
            )
        return Dimension(key, "choice", choices=tuple(values), estimator=condition)
    if not isinstance(values, list | tuple) or len(values) != 2 or not all(_number(v) for v in values):
        raise ConfigError(f"{full}.{kind} is [low, high].", key=f"{full}.{kind}", hint=f"Write {{{kind}: [1, 10]}}.")
    low, high = values
    if kind == "int" and not all(isinstance(v, int) for v in values):
        raise ConfigError(f"{full}.int bounds are integers.", key=f"{full}.int", hint="Use float for real values.")
    if low >= high:
        raise ConfigError(f"{full}: low {low} is not below high {high}.", key=f"{full}.{kind}", hint="Swap them.")
    log, step = bool(spec.get("log", False)), spec.get("step")
    if log and low <= 0:
        raise ConfigError(f"{full}: a log scale needs low > 0.", key=f"{full}.log", hint="Raise low, or drop log.")
    if step is not None and (not _number(step) or step <= 0 or log):
        raise ConfigError(
            f"{full}.step must be a positive number (and cannot go with log).",
            key=f"{full}.step",
            hint="Drop step, or log.",
        )
    return Dimension(key, kind, float(low), float(high), log, None if step is None else float(step), (), condition)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_model_params(estimator: str, dimensions: list[Dimension], task: str, where: str) -> None:
    names = [d.key[len("model.") :] for d in dimensions]
    try:
        resolve_estimator(estimator).check_params(names, task)
    except ConfigError as exc:
        name = (exc.key or "").removeprefix("params.")
        raise ConfigError(
            f"estimator {estimator!r} has no parameter {name!r}.", key=f"{where}.model.{name}", hint=exc.hint
        ) from None


def _check_prep(option: str, dimension: Dimension, full: str) -> None:
    from loopline.prep import Preprocessor
    from loopline.train._spec import check_prep_options

    try:
        check_prep_options({option: None})
    except ConfigError as exc:
        raise ConfigError(f"unknown preprocessing option {option!r}.", key=full, hint=exc.hint) from None
    for value in dimension.bounds():
        try:
            Preprocessor([], [], **{option: value})._check_params()
        except ConfigError as exc:
            raise ConfigError(f"{full}: {exc.detail}", key=full, hint=exc.hint) from None


def _check_transform(kind: str, option: str, dimension: Dimension, base: TrainSpec, full: str) -> None:
    from loopline.prep import build_transform

    present = [str(t.get("type")) for t in base.transforms]
    if kind not in present:
        hint = did_you_mean(kind, present) or (
            f"Add a {{type: {kind}}} transform under transforms: (present: {', '.join(present) or 'none'})."
        )
        raise ConfigError(f"the search key names transform {kind!r}, which transforms: lacks.", key=full, hint=hint)
    spec = next(dict(t) for t in base.transforms if t.get("type") == kind)
    for value in dimension.bounds():
        try:
            build_transform({**spec, option: value})
        except ConfigError as exc:
            raise ConfigError(f"{full}: {exc.detail}", key=full, hint=exc.hint) from None


def _plain(dimension: Dimension) -> dict[str, Any]:
    return {
        "key": dimension.key,
        "kind": dimension.kind,
        "low": dimension.low,
        "high": dimension.high,
        "log": dimension.log,
        "step": dimension.step,
        "choices": list(dimension.choices),
        "estimator": dimension.estimator,
    }
