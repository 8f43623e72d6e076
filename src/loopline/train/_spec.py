"""What one candidate is trained from: :class:`TrainSpec`, the train configuration, passed whole.

A train step's config *is* a TrainSpec plus the step's own keys (``reference_rows``, ``slices``, ``cv``,
``threads``...), so the YAML keys, their validation and their descriptions are defined here once.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from loopline.bundle import METRIC_DIRECTION, resolve_estimator
from loopline.core.errors import ConfigError, did_you_mean
from loopline.core.pipeline import config_error_from_validation
from loopline.train._importance import IMPORTANCE_REPEATS, IMPORTANCE_ROWS

TRAIN_METRICS_ROWS = 10_000
"""Training rows the ``train`` metrics and curve are measured on by default (a seeded sample; scikit-learn's
gradient boosting scores its training rows on 10,000 as well). Validation and test metrics use every row."""

ClassWeightSpec = Literal["balanced"] | dict[str | int | bool, Annotated[float, Field(gt=0)]]
"""``class_weight``: "balanced", or ``{label: weight}`` (other labels weigh 1)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EarlyStopping(_Frozen):
    """``early_stopping:`` of a train step: stop when the validation ``metric`` has not improved for
    ``patience`` rounds (see :mod:`loopline.train._iterative`)."""

    patience: Annotated[int, Field(ge=1, description="Rounds without improvement on valid before stopping.")] = 20
    metric: Annotated[
        Literal["auto", "logloss", "error", "auc", "rmse", "mae"],
        Field(description="Watched on the validation split; auto: log loss / RMSE (HGB: its own loss)."),
    ] = "auto"


class Diagnostics(_Frozen):
    """``diagnostics:`` of a train step: checks of the training data and scores (see
    :mod:`loopline.train._diagnostics`). Each finding is recorded in the report and shown on the leaderboard;
    a suspicious one (leakage, a near-perfect score) stops promotion unless the select step allows it."""

    empty_features: Annotated[
        Literal["drop", "flag"],
        Field(
            description="Features all null, or holding one value, in every training row: drop (train without "
            "them; the model still accepts them as inputs) or flag (train on them)."
        ),
    ] = "drop"
    leakage: Annotated[
        float | None,
        Field(
            gt=0.5,
            le=1,
            description="Flag a feature that alone predicts the target this well on held-out training rows "
            "(one-feature ROC AUC; regression: R^2); null: no leakage check.",
        ),
    ] = 0.99
    perfect_score: Annotated[
        float | None,
        Field(
            gt=0.5,
            le=1,
            description="Flag a validation score this high (roc_auc, else accuracy; regression: r2); null: off.",
        ),
    ] = 0.999
    sample_rows: Annotated[
        int, Field(ge=100, description="Training rows the leakage check reads (a sample seeded by seed).")
    ] = 10_000


class TrainSpec(_Frozen):
    """Train one candidate: fitted preprocessing + estimator, scored on every split given.

    Build it with keywords (``TrainSpec(target="y", numeric=["x"], estimator="lightgbm")``; pydantic's
    ValidationError on a bad value) or from a mapping read from a file with :meth:`parse` (ConfigError
    naming the key, with a did-you-mean for unknown keys).
    """

    target: str
    numeric: list[str] = []
    categorical: list[str] = []
    estimator: Annotated[
        str,
        Field(
            description="Registered estimator alias (hist_gradient_boosting) or a scikit-learn estimator's "
            "import path (sklearn.ensemble:ExtraTreesClassifier; only sklearn., lightgbm., xgboost.)."
        ),
    ]
    params: dict[str, Any] = {}
    prep: dict[str, Any] = {}
    transforms: Annotated[
        list[dict[str, Any]],
        Field(description="Transform chain fitted on the training split, carried in the bundle: [{type: ...}]."),
    ] = []
    task: Literal["auto", "binary", "multiclass", "regression"] = "auto"
    seed: int = 0
    early_stopping: Annotated[
        EarlyStopping | None,
        Field(description="lightgbm, xgboost, hist_gradient_boosting: stop when valid stops improving."),
    ] = None
    time_budget_s: Annotated[
        float | None, Field(gt=0, description="lightgbm, xgboost: stop adding rounds after this many seconds.")
    ] = None
    learning_curve: Annotated[
        bool,
        Field(
            description="lightgbm, xgboost: record the metric per round on valid without early_stopping or "
            "time_budget_s too (each round then also scores valid; with them it is always recorded)."
        ),
    ] = False
    train_metrics_rows: Annotated[
        int | None,
        Field(
            ge=1,
            description="Training rows the train metrics and curve are measured on: a sample seeded by seed "
            "(null: every row). Valid and test metrics always use every row.",
        ),
    ] = TRAIN_METRICS_ROWS
    class_weight: Annotated[
        ClassWeightSpec | None,
        Field(description="Classification: balanced, or {label: weight} (other labels weigh 1)."),
    ] = None
    max_lengths: Annotated[
        dict[str, Annotated[int, Field(ge=1)]],
        Field(
            description="Input field -> the most characters a text value may hold when the model is served or "
            "scores a batch (recorded in the input schema as max_length; other fields: the service's "
            "max_string_length, 1024 by default).",
        ),
    ] = {}
    diagnostics: Annotated[
        Diagnostics,
        Field(description="Checks for empty and constant features, target leakage and near-perfect scores."),
    ] = Diagnostics()
    importance: Annotated[
        bool,
        Field(
            description="Measure each input feature's importance on the validation split (permutation "
            "importance of the whole model, preprocessing included); stored with the model version as the "
            "weights the loop's drift trigger weighs drifted features by (false: every feature weighs the same).",
        ),
    ] = True
    importance_rows: Annotated[
        int,
        Field(ge=10, description="Validation rows the importance is measured on (a sample seeded by seed)."),
    ] = IMPORTANCE_ROWS
    importance_repeats: Annotated[
        int, Field(ge=1, le=50, description="Shuffles of each feature; each costs one prediction of the rows.")
    ] = IMPORTANCE_REPEATS
    importance_metric: Annotated[
        str,
        Field(
            description="The metric whose drop measures importance; auto: roc_auc (binary; log_loss when the "
            "rows hold one class), log_loss (multiclass), rmse (regression)."
        ),
    ] = "auto"

    @field_validator("prep")
    @classmethod
    def _known_prep_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        check_prep_options(value, key_prefix="prep.")
        return value

    @field_validator("transforms")
    @classmethod
    def _known_transforms(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from loopline.prep import build_transform

        for position, spec in enumerate(value):
            try:
                build_transform(dict(spec))
            except ConfigError as exc:
                raise exc.under(f"transforms.{position}") from None
        return value

    @field_validator("importance_metric")
    @classmethod
    def _known_importance_metric(cls, value: str) -> str:
        if value != "auto" and value not in METRIC_DIRECTION:
            names = ["auto", *sorted(METRIC_DIRECTION)]
            hint = did_you_mean(value, names) or f"Metrics: {', '.join(names)}."
            raise ConfigError(f"unknown metric {value!r}.", key="importance_metric", hint=hint)
        return value

    @model_validator(mode="after")
    def _known_estimator(self) -> TrainSpec:
        """The alias or import path, then the names in ``params``, checked when the pipeline loads.

        ConfigError (not pydantic's ValueError) so that the key path stays exact: ``estimator`` or
        ``params.NAME``, nested by the caller under the step (``steps.fit.params.n_estimator``).
        """
        resolve_estimator(self.estimator).check_params(self.params, self.task)
        return self

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The schema with ``estimator`` completing the registered aliases (an import path stays allowed)."""
        from loopline.bundle import ESTIMATORS
        from loopline.bundle._estimators import IMPORTABLE_ROOTS

        schema = cls.model_json_schema()
        estimator = schema["properties"]["estimator"]
        roots = "|".join(IMPORTABLE_ROOTS)
        estimator.pop("type", None)
        estimator["anyOf"] = [{"enum": ESTIMATORS.names()}, {"type": "string", "pattern": f"^({roots})[.:]"}]
        return schema

    @classmethod
    def parse(cls, options: Mapping[str, Any], *, where: str = "") -> TrainSpec:
        """The spec for ``options`` (a mapping read from YAML or JSON); ConfigError naming the key
        (prefixed by ``where``, e.g. ``steps.train``) and the fix when a key or value is wrong."""
        try:
            return cls.model_validate(dict(options))
        except ValidationError as exc:
            raise config_error_from_validation(exc, prefix=where, model=cls) from None
        except ConfigError as exc:
            raise (exc.under(where) if where else exc) from None

    def features(self) -> list[str]:
        """The input columns: numeric, then categorical."""
        return [*self.numeric, *self.categorical]


def check_prep_options(prep: Mapping[str, Any] | None, *, key_prefix: str = "") -> None:
    """ConfigError with a did-you-mean for a ``prep:`` key the preprocessor does not take."""
    from loopline.prep import Preprocessor

    allowed = [n for n in inspect.signature(Preprocessor).parameters if n not in ("numeric", "categorical")]
    for key in prep or {}:
        if key not in allowed:
            hint = did_you_mean(key, allowed) or f"Preprocessing options: {', '.join(allowed)}."
            raise ConfigError(f"unknown preprocessing option {key!r}.", key=f"{key_prefix}{key}", hint=hint)


def check_spec(spec: object) -> TrainSpec:
    """``spec`` itself when it is a TrainSpec; ConfigError saying how to build one otherwise."""
    if isinstance(spec, TrainSpec):
        return spec
    raise ConfigError(
        f"train_candidate takes a TrainSpec, not {type(spec).__name__}.",
        hint="Pass TrainSpec(target=..., numeric=[...], estimator=...), or TrainSpec.parse(mapping) for a dict.",
    )
