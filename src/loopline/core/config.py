"""Typed config shared by the YAML file and the Python API (pydantic models)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

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


class LabelSourceConfig(_Strict):
    """Where the true outcomes of served predictions come from: a loopline dataset with a key, a label and an
    event-time column.

    A prediction gets the outcome of its key (a field of the model's logged inputs, compared as text) whose
    ``time`` is the first at or after the prediction was made (see :mod:`loopline.monitor`'s label sources).
    """

    dataset: Annotated[str, Field(pattern=NAME_PATTERN, description="The dataset holding the outcomes.")]
    key: Annotated[str, Field(min_length=1, description="Column shared by the dataset and the logged inputs.")]
    label: Annotated[str, Field(min_length=1, description="The dataset's column with the true outcome.")]
    time: Annotated[str, Field(min_length=1, description="The dataset's column with when the outcome happened.")]


class MonitorConfig(_Strict):
    """How the production model of ``model`` is watched and renewed; ``labels``: where its true outcomes are."""

    model: Annotated[str, Field(pattern=MODEL_NAME_PATTERN)]
    drift: DriftConfig = DriftConfig()
    retrain: RetrainConfig = RetrainConfig()
    labels: LabelSourceConfig | None = None


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
