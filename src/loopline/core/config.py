"""Typed config shared by the YAML file and the Python API (pydantic models)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, model_validator

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
MODEL_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$"

Scalar = str | int | float | bool | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


TestName = Annotated[str, Field(pattern=NAME_PATTERN)]


AUTO = "auto"
"""The drift-test name that lets the report choose per column (see ``loopline.monitor``)."""


class ColumnTest(_Strict):
    """One feature's drift test and, optionally, its own threshold: the distance above which it drifts, or
    for a p-value test the significance level (``p_value`` otherwise). A bare name reads as ``{test: name}``."""

    test: TestName
    threshold: Annotated[float | None, Field(gt=0, description="Distance threshold, or alpha of a p-value test.")] = (
        None
    )

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        return {"test": data} if isinstance(data, str) else data


class DriftConfig(_Strict):
    """How each feature is compared and when it counts as drifted.

    Each feature is compared by one registered drift test (``loopline.monitor.DRIFT_TESTS``): ``numeric_test``
    for numeric features, ``categorical_test`` for categorical ones, or the one ``tests`` names for a feature
    (a name, or ``{test: NAME, threshold: T}``). ``auto`` chooses by the column and the sample sizes. A test
    with a p-value drifts when its p-value, corrected for the number of tests in the report (``correction``),
    is below ``p_value``; a distance drifts above its own threshold (``psi_threshold`` for ``psi``). PSI is
    reported for every feature but decides only where it is the chosen test. Test names are checked against
    the registry when a report is computed.
    """

    psi_threshold: Annotated[float, Field(gt=0, description="Threshold of the psi test.")] = 0.1
    p_value: Annotated[float, Field(gt=0, lt=1, description="Significance level of the p-value tests.")] = 0.01
    bins: Annotated[int, Field(ge=2, le=100)] = 10
    min_drifted_features: Annotated[int, Field(ge=1)] = 1
    numeric_test: Annotated[TestName, Field(description="Drift test of numeric features.")] = AUTO
    categorical_test: Annotated[TestName, Field(description="Drift test of categorical features.")] = AUTO
    tests: Annotated[
        dict[str, ColumnTest],
        Field(description="Per-feature drift test: {feature: test} or {feature: {test: T, threshold: X}}."),
    ] = {}
    correction: Annotated[
        Literal["holm", "bonferroni", "none"],
        Field(description="Multiple-testing correction of the p-values across the features of one report."),
    ] = "holm"

    @field_serializer("tests")
    def _compact_tests(self, tests: dict[str, ColumnTest]) -> dict[str, Any]:
        """A test without a threshold is written as its bare name, as a config file would say it."""
        return {name: spec.test if spec.threshold is None else spec.model_dump() for name, spec in tests.items()}


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


class MonitorConfig(_Strict):
    """How the production model of ``model`` is watched and renewed."""

    model: Annotated[str, Field(pattern=MODEL_NAME_PATTERN)]
    drift: DriftConfig = DriftConfig()
    retrain: RetrainConfig = RetrainConfig()


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
