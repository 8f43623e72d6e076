"""Typed config shared by the YAML file and the Python API (pydantic models)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loopline.core.errors import did_you_mean

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
MODEL_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$"

Scalar = str | int | float | bool | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


TestName = Annotated[str, Field(pattern=NAME_PATTERN)]


class DriftConfig(_Strict):
    """When a feature counts as drifted: PSI above ``psi_threshold`` or a test's p-value below ``p_value``.

    Each feature is compared by a registered drift test (``loopline.monitor.DRIFT_TESTS``): ``numeric_test``
    for numeric features, ``categorical_test`` for categorical ones, or the one ``tests`` names for a
    feature. The names are checked against the registry when a report is computed.
    """

    psi_threshold: Annotated[float, Field(gt=0)] = 0.25
    p_value: Annotated[float, Field(gt=0, lt=1)] = 0.01
    bins: Annotated[int, Field(ge=2, le=100)] = 10
    min_drifted_features: Annotated[int, Field(ge=1)] = 1
    numeric_test: Annotated[TestName, Field(description="Drift test of numeric features.")] = "ks"
    categorical_test: Annotated[TestName, Field(description="Drift test of categorical features.")] = "chi2"
    tests: Annotated[dict[str, TestName], Field(description="Per-feature drift test: {feature: test}.")] = {}


class RetrainConfig(_Strict):
    """Retrain when drift is found; promote the challenger only if it wins on the same holdout.

    ``metric`` and ``min_improvement`` drive the retrain's gate: the select step of the retrain run
    registers and ranks the candidates (by its own ``metric`` on valid), then its best one replaces the
    production model only if it beats it on the select step's holdout by more than ``min_improvement``.
    """

    on_drift: bool = True
    metric: Annotated[
        str, Field(description="The retrain gate's metric on the holdout (its direction: the metric's own).")
    ] = "roc_auc"
    min_improvement: Annotated[
        float, Field(description="The retrain gate's margin: the challenger must gain more than this.")
    ] = 0.0
    window: Annotated[int, Field(ge=1, description="Months of the most recent data to retrain on.")] = 3


ALERT_METRICS = (
    "drifted_features",
    "error_rate",
    "latency_p50_ms",
    "latency_p99_ms",
    "rows",
    "throughput_rps",
)
"""The window figures an alert rule may watch as they are."""

ALERT_FEATURE_METRICS = ("drift", "missing_share", "unseen_share")
"""The per-feature figures an alert rule watches as ``<figure>.<feature>`` (``drift.<feature>`` is its PSI)."""


class AlertRule(_Strict):
    """Fire when a closed window's figure ``when`` is above ``above`` or below ``below`` (exactly one of them).

    ``when`` is one of :data:`ALERT_METRICS` or ``<figure>.<feature>`` with a figure of
    :data:`ALERT_FEATURE_METRICS`; the feature is checked against the model's features when windows close.
    """

    when: Annotated[str, Field(description="The window figure, e.g. latency_p99_ms or missing_share.age.")]
    above: float | None = None
    below: float | None = None

    @field_validator("when")
    @classmethod
    def _known_figure(cls, value: str) -> str:
        figure, dot, feature = value.partition(".")
        if dot and figure in ALERT_FEATURE_METRICS and feature:
            return value
        if not dot and value in ALERT_METRICS:
            return value
        choices = [*ALERT_METRICS, *(f"{name}.<feature>" for name in ALERT_FEATURE_METRICS)]
        guess = did_you_mean(figure if dot else value, [*ALERT_METRICS, *ALERT_FEATURE_METRICS])
        raise ValueError(f"unknown alert figure {value!r}. {guess or ''} Use one of: {', '.join(choices)}")

    @model_validator(mode="after")
    def _one_threshold(self) -> AlertRule:
        if (self.above is None) == (self.below is None):
            raise ValueError(f"alert on {self.when!r} needs exactly one of 'above' or 'below'")
        return self

    @property
    def label(self) -> str:
        """The rule in words: ``latency_p99_ms above 250``."""
        side, threshold = ("above", self.above) if self.above is not None else ("below", self.below)
        return f"{self.when} {side} {threshold:g}"


class MonitorConfig(_Strict):
    """How the production model of ``model`` is watched and renewed.

    ``alerts`` are checked on every window a windowed check closes (``loopline monitor --window``);
    ``alerts_webhook_env`` names the environment variable holding the URL each fired alert is POSTed to (the
    URL itself, which may hold a credential, is never in the YAML nor the store).
    """

    model: Annotated[str, Field(pattern=MODEL_NAME_PATTERN)]
    drift: DriftConfig = DriftConfig()
    retrain: RetrainConfig = RetrainConfig()
    alerts: list[AlertRule] = []
    alerts_webhook_env: Annotated[str | None, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = None


class StepEntry(BaseModel):
    """One step in a pipeline file: its ``type``, ``inputs``, and the type's own keys."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str
    inputs: list[str] = []


class PipelineFile(_Strict):
    """The top level of a pipeline YAML file."""

    name: Annotated[str, Field(pattern=MODEL_NAME_PATTERN, description="Pipeline name.")]
    description: str = ""
    params: dict[str, Scalar] = {}
    steps: Annotated[dict[str, StepEntry], Field(min_length=1)]
    monitor: MonitorConfig | None = None

    def step_configs(self) -> dict[str, dict[str, Any]]:
        """Each step's own keys (without ``type`` and ``inputs``)."""
        return {name: dict(entry.model_extra or {}) for name, entry in self.steps.items()}
