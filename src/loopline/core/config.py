"""Typed config shared by the YAML file and the Python API (pydantic models)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


WINDOW_UNITS = {"mo": "months", "d": "days", "w": "weeks"}
"""The units of a retrain window (``monitor.retrain.window``): ``3mo``, ``90d``, ``2w``."""

_WINDOW = re.compile(r"^\s*([1-9][0-9]{0,3})\s*(mo|d|w)\s*$")


def parse_window(value: int | str) -> tuple[int, str]:
    """``(count, unit)`` of a retrain window: an int is months (``3``), a string a count and a unit of
    :data:`WINDOW_UNITS` (``"90d"``). ValueError saying how to write one otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= 1:
            return value, "mo"
    elif isinstance(value, str) and (match := _WINDOW.match(value.lower())):
        return int(match.group(1)), match.group(2)
    raise ValueError(
        f"window {value!r} is not a retrain window; write a number of months (3) or a count and a unit: "
        "3mo (months), 90d (days), 2w (weeks)."
    )


class ProbationConfig(_Strict):
    """When a newly promoted version is rolled back after its probation (see ``loopline.run.probation``).

    It is rolled back when the previous version beats it on the probation window by more than ``margin``
    (in the metric's direction), or when its error rate exceeds the previous one's by more than
    ``max_error_rate_increase``; never on fewer than ``min_rows`` rows of either.
    """

    margin: Annotated[
        float, Field(ge=0, description="Rollback when the previous version scores better by more than this.")
    ] = 0.02
    max_error_rate_increase: Annotated[
        float, Field(ge=0, le=1, description="Rollback when the error rate rises by more than this (0.05: 5 points).")
    ] = 0.05
    min_rows: Annotated[int, Field(ge=1, description="Rows of the probation window a decision needs.")] = 100


class RetrainConfig(_Strict):
    """Retrain when drift is found; the whole model repository competes on the newest labelled window.

    ``metric`` and ``min_improvement`` drive the retrain's gate: the select step of the retrain run
    registers and ranks the candidates (by its own ``metric`` on valid); then the production model, the best
    new candidate and up to ``keep_versions`` earlier versions are scored on the select step's holdout, and
    the best of them replaces the production model only if it beats it by more than ``min_improvement``.
    A new winner is refitted on train + valid (``refit``) before it is promoted.
    """

    on_drift: bool = True
    metric: Annotated[
        str, Field(description="The retrain gate's metric on the holdout (its direction: the metric's own).")
    ] = "roc_auc"
    min_improvement: Annotated[
        float, Field(description="The retrain gate's margin: the challenger must gain more than this.")
    ] = 0.0
    window: Annotated[
        int | str,
        Field(
            description="The most recent data to retrain on: months (3) or a duration: 3mo, 90d, 2w "
            "(pipelines that declare params start, valid_from, test_from, end)."
        ),
    ] = 3
    refit: Annotated[
        bool,
        Field(
            description="Refit a new winner on train + valid (the rounds and parameters it was gated with) "
            "before promoting it."
        ),
    ] = True
    keep_versions: Annotated[
        int, Field(ge=0, description="Earlier versions (newest first) that compete with the champion.")
    ] = 5
    probation: ProbationConfig = ProbationConfig()

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> Any:
        parse_window(value)
        return value.strip().lower() if isinstance(value, str) else value

    def window_span(self) -> tuple[int, str]:
        """The window as ``(count, unit)`` (see :func:`parse_window`)."""
        return parse_window(self.window)


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
