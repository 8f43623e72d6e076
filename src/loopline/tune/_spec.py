"""What a tuning is configured by: :class:`TuneSpec`, a :class:`~loopline.train.TrainSpec` (the base
configuration every trial starts from) plus the search: space, objective, evaluation sets, sampler, pruner,
budgets and parallelism. A ``tune`` step's config is a TuneSpec plus the step's own keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from loopline.core.errors import ConfigError, did_you_mean
from loopline.core.pipeline import config_error_from_validation
from loopline.train import METRIC_DIRECTION, TrainSpec
from loopline.tune._space import SearchSpace, parse_space

SAMPLERS = ("tpe", "random", "grid", "cmaes", "nsga2")
PRUNERS = ("none", "median", "successive_halving", "hyperband")
TRADEOFFS = ("latency_ms", "bundle_kb")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ValidSet(_Frozen):
    """The validation split, whole."""

    type: Literal["valid"] = "valid"


class FoldSets(_Frozen):
    """Cross-validation folds of the training split: one fit per fold, each scored on its held-out rows
    (the pruner sees the running score after every fold)."""

    type: Literal["folds"]
    folds: Annotated[int, Field(ge=2, description="Folds (>= 2).")] = 5
    method: Literal["auto", "kfold", "stratified", "group", "time"] = "auto"
    group_column: str | None = None
    time_column: str | None = None


class WindowSets(_Frozen):
    """The last ``last`` time windows of the validation split (``every``: a polars duration, 1mo, 7d)."""

    type: Literal["windows"]
    column: Annotated[str, Field(description="A datetime or date column of the validation split.")]
    last: Annotated[int, Field(ge=1, description="The most recent windows scored.")] = 3
    every: Annotated[str, Field(description="Window length: 1mo, 2w, 7d, 12h.")] = "1mo"


class SliceSets(_Frozen):
    """The validation rows of each of the ``top`` most frequent values of a column (``min_rows`` or more)."""

    type: Literal["slices"]
    column: str
    top: Annotated[int, Field(ge=1)] = 5
    min_rows: Annotated[int, Field(ge=1)] = 30


class DatasetSet(_Frozen):
    """A separate labelled table (a tune step's next input, in order; the API's ``datasets[name]``)."""

    type: Literal["dataset"]
    name: Annotated[str, Field(min_length=1)]


EvalSet = Annotated[ValidSet | FoldSets | WindowSets | SliceSets | DatasetSet, Field(discriminator="type")]


class TuneSpec(TrainSpec):
    """A TrainSpec to start from, and how to search around it (see the README's Tuning section)."""

    space: Annotated[
        dict[str, Any],
        Field(
            description="What to search: model.PARAM, prep.OPTION, prep.TRANSFORM.OPTION -> {float: [lo, hi], "
            "log: true} | {int: [lo, hi]} | {choice: [...]}; estimator: {NAME: {model.PARAM: ...}} searches the "
            "estimator too, each with its own parameters."
        ),
    ]
    metric: Annotated[str, Field(description="The metric optimised (its direction is the metric's own).")] = "roc_auc"
    sets: Annotated[
        list[EvalSet],
        Field(description="Where each trial is scored: valid, folds, windows, slices, dataset (default: valid)."),
    ] = [ValidSet()]
    aggregate: Annotated[
        Literal["mean", "worst", "quantile"],
        Field(description="How the per-set scores make the objective: their mean, the worst, or a quantile."),
    ] = "mean"
    quantile: Annotated[
        float, Field(gt=0, lt=1, description="aggregate quantile: the share of sets allowed to score worse.")
    ] = 0.25
    tradeoff: Annotated[
        Literal["latency_ms", "bundle_kb"] | None,
        Field(description="Also minimise one-record latency or the bundle's size (multi-objective: NSGA-II)."),
    ] = None
    sampler: Annotated[
        Literal["tpe", "random", "grid", "cmaes", "nsga2"] | None,
        Field(description="Optuna sampler; default tpe (nsga2 with a tradeoff)."),
    ] = None
    pruner: Annotated[
        Literal["none", "median", "successive_halving", "hyperband"],
        Field(description="Stop poor trials early on boosting rounds (lightgbm, xgboost) or CV folds."),
    ] = "none"
    report_every: Annotated[int, Field(ge=1, description="Boosting rounds between two reports to the pruner.")] = 10
    n_trials: Annotated[int | None, Field(ge=1, description="Finished trials the study holds at the end.")] = 20
    timeout_s: Annotated[float | None, Field(gt=0, description="Wall-clock budget of this tuning, seconds.")] = None
    n_jobs: Annotated[
        int, Field(ge=1, description="Trials in parallel, one process each, pinned to its share of the CPU threads.")
    ] = 1
    study: Annotated[
        str | None, Field(min_length=1, max_length=200, description="Study name (default: the step's name).")
    ] = None

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in METRIC_DIRECTION:
            hint = did_you_mean(value, METRIC_DIRECTION) or f"Metrics: {', '.join(sorted(METRIC_DIRECTION))}."
            raise ConfigError(f"unknown metric {value!r}.", key="metric", hint=hint)
        return value

    @model_validator(mode="after")
    def _valid_search(self) -> TuneSpec:
        self.search_space()
        if self.n_trials is None and self.timeout_s is None:
            raise ConfigError("a tuning needs a budget.", key="n_trials", hint="Set n_trials, timeout_s, or both.")
        if self.tradeoff is not None and self.sampler in ("grid", "cmaes"):
            raise ConfigError(
                f"sampler {self.sampler!r} optimises one objective; tradeoff makes two.",
                key="sampler",
                hint="Use sampler: nsga2 (the default with a tradeoff), tpe or random.",
            )
        if self.tradeoff is not None and self.pruner != "none":
            raise ConfigError(
                "Optuna prunes single-objective studies only.", key="pruner", hint="Set pruner: none, or drop tradeoff."
            )
        if self.sampler == "grid":
            self.search_space().grid()
        names = [s.name for s in self.sets if isinstance(s, DatasetSet)]
        if len(set(names)) != len(names):
            raise ConfigError("two dataset sets share a name.", key="sets", hint="Name each dataset set once.")
        return self

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """TrainSpec's schema with ``space`` spelled out: its keys and each distribution's shape."""
        schema = super().json_schema()
        schema["properties"]["space"] = {**schema["properties"]["space"], **space_schema()}
        schema["properties"]["space"].pop("additionalProperties", None)
        schema["properties"]["space"]["additionalProperties"] = _distribution_schema()
        return schema

    def search_space(self) -> SearchSpace:
        """The parsed space (validated against this spec's estimator, prep and transforms)."""
        return parse_space(self.space, self)

    def base_spec(self) -> TrainSpec:
        """The TrainSpec every trial starts from (this spec's training keys only)."""
        return TrainSpec.model_validate({name: getattr(self, name) for name in TrainSpec.model_fields})

    def maximize(self) -> bool:
        """True when a bigger ``metric`` is better."""
        return METRIC_DIRECTION[self.metric]

    def sampler_name(self) -> str:
        """The sampler used: the one named, else tpe (nsga2 with a tradeoff)."""
        return self.sampler or ("nsga2" if self.tradeoff else "tpe")

    @classmethod
    def parse(cls, options: Mapping[str, Any], *, where: str = "") -> TuneSpec:  # type: ignore[override]
        """The spec for ``options``; ConfigError naming the key (under ``where``) and the fix."""
        try:
            return cls.model_validate(dict(options))
        except ValidationError as exc:
            raise config_error_from_validation(exc, prefix=where, model=cls) from None
        except ConfigError as exc:
            raise (exc.under(where) if where else exc) from None


def _distribution_schema() -> dict[str, Any]:
    bounds = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
    scale = {"log": {"type": "boolean"}, "step": {"type": "number", "exclusiveMinimum": 0}}
    return {
        "oneOf": [
            {
                "type": "object",
                "properties": {"float": bounds, **scale},
                "required": ["float"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {"int": {**bounds, "items": {"type": "integer"}}, **scale},
                "required": ["int"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {"choice": {"type": "array", "minItems": 1}},
                "required": ["choice"],
                "additionalProperties": False,
            },
        ]
    }


_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


def space_schema() -> dict[str, Any]:
    """The JSON Schema of a ``space:`` mapping (editors complete its keys and distributions)."""
    from loopline.train import ESTIMATORS

    model_key = r"^model\.[A-Za-z_][A-Za-z0-9_]*$"
    return {
        "type": "object",
        "propertyNames": {"pattern": rf"^(estimator|model\.{_NAME}|prep\.{_NAME}(\.{_NAME})?)$"},
        "properties": {
            "estimator": {
                "type": "object",
                "description": "Search the estimator too: each registered name (or import path) with its own space.",
                "propertyNames": {
                    "anyOf": [{"enum": ESTIMATORS.names()}, {"pattern": "^(sklearn|lightgbm|xgboost)[.:]"}]
                },
                "additionalProperties": {
                    "type": ["object", "null"],
                    "propertyNames": {"pattern": model_key},
                    "additionalProperties": _distribution_schema(),
                },
            }
        },
    }
