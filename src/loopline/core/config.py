"""Typed config shared by the YAML file and the Python API (pydantic models)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_serializer, field_validator, model_validator

from loopline.core.errors import did_you_mean

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


class MultivariateConfig(_Strict):
    """The domain classifier (``monitor.drift.multivariate``): off unless ``enabled``; it compares at most
    ``rows`` rows of each side (a seeded sample) and drifts when its cross-validated ROC AUC is beyond chance
    at the drift config's ``p_value``."""

    enabled: bool = False
    rows: Annotated[int, Field(ge=100, le=1_000_000, description="Most rows of each side the classifier sees.")] = 5000


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
    multivariate: Annotated[
        MultivariateConfig, Field(description="Multivariate drift by a domain classifier (off by default).")
    ] = MultivariateConfig()

    @field_serializer("tests")
    def _compact_tests(self, tests: dict[str, ColumnTest]) -> dict[str, Any]:
        """A test without a threshold is written as its bare name, as a config file would say it."""
        return {name: spec.test if spec.threshold is None else spec.model_dump() for name, spec in tests.items()}


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
    window: Annotated[
        str,
        Field(
            description='How long a version the loop promoted stays on probation, e.g. "7d": the loop compares it '
            "with the previous version on the windows closed since the promotion until then."
        ),
    ] = "7d"

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def window_td(self) -> timedelta:
        return parse_duration(self.window)


class MetricMargin(_Strict):
    """One gate metric's margin, in the metric's own direction: ``min_improvement`` (the challenger must gain more
    than this; may be negative) or ``max_regression`` (it may lose at most this much: a guard metric). Neither:
    ``min_improvement: 0``."""

    min_improvement: Annotated[
        float | None, Field(description="The challenger must beat the champion by more than this.")
    ] = None
    max_regression: Annotated[
        float | None, Field(ge=0, description="The challenger may be worse than the champion by at most this.")
    ] = None

    @model_validator(mode="after")
    def _one_margin(self) -> MetricMargin:
        if self.min_improvement is not None and self.max_regression is not None:
            raise ValueError(
                "a gate metric takes min_improvement or max_regression, not both; keep the one that says how the "
                "challenger must compare"
            )
        return self


class GateBudgets(_Strict):
    """What a challenger may cost: its one-record p99 latency (in process, the serving path) and its bundle's size."""

    latency_p99_ms: Annotated[
        float | None, Field(gt=0, description="Most p99 milliseconds of a one-record prediction.")
    ] = None
    bundle_mb: Annotated[float | None, Field(gt=0, description="Most megabytes of the stored bundle.")] = None


class GateConfig(_Strict):
    """The deployment gate (see ``loopline.run.policy``): margins per metric against the champion on the same
    holdout, absolute ``floors`` (for a lower-is-better metric, a ceiling), ``budgets`` and the infrastructure
    validation (a fresh ``python -I`` process without network loads the bundle and reproduces its golden
    predictions bit for bit). Empty ``metrics``: the step's ``metric`` with its ``min_improvement``."""

    metrics: Annotated[
        dict[str, MetricMargin], Field(description="Metric name → {min_improvement: X} or {max_regression: X}.")
    ] = {}
    floors: Annotated[
        dict[str, float], Field(description="Metric name → the value the challenger must reach on the holdout.")
    ] = {}
    budgets: GateBudgets = GateBudgets()
    infra_validation: Annotated[
        bool,
        Field(description="Load the bundle in a fresh process with no network; compare its golden predictions."),
    ] = True
    latency_records: Annotated[
        int, Field(ge=20, le=100_000, description="Holdout records timed one at a time for the p99 latency.")
    ] = 300

    @field_validator("metrics", mode="before")
    @classmethod
    def _bare_margins(cls, value: Any) -> Any:
        """``{roc_auc: null}`` reads as ``{roc_auc: {}}`` (min_improvement 0)."""
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value

    def margins(self, metric: str, min_improvement: float) -> dict[str, MetricMargin]:
        """The declared margins, or ``{metric: min_improvement}`` (the keys from before the gate had its own)."""
        return dict(self.metrics) or {metric: MetricMargin(min_improvement=min_improvement)}


ENSEMBLE_MEMBERS = ("initial", "window", "expanding")
"""What an ensemble retrain may average: ``initial`` (the model's first production version), ``window`` (the
retrain's best candidate refitted on the retrain window), ``expanding`` (that candidate's recipe refitted on every
labelled period from the pipeline's own ``start`` param to the retrain's ``end``)."""
RETRAIN_STRATEGIES = ("best", "ensemble")


class EnsembleConfig(_Strict):
    """The members of the version ``monitor.retrain.strategy: ensemble`` serves: the mean of their predicted
    probabilities (a regressor: of their predictions)."""

    members: Annotated[
        tuple[str, ...],
        Field(
            min_length=1,
            description="What the ensemble averages, each once: initial (the model's first production version), "
            "window (the retrain's best candidate refitted on the retrain window), expanding (that candidate "
            "refitted on every labelled period from the pipeline's start param to the retrain's end).",
        ),
    ] = ENSEMBLE_MEMBERS
    gate: Annotated[
        bool,
        Field(
            description="false (the default): the ensemble is promoted without selection, the gate's verdict "
            "recorded beside it; true: promoted only when the gate promotes the retrain's best candidate."
        ),
    ] = False

    @field_validator("members", mode="before")
    @classmethod
    def _members(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            return value
        for member in value:
            if member not in ENSEMBLE_MEMBERS:
                guess = did_you_mean(str(member), ENSEMBLE_MEMBERS)
                raise ValueError(
                    f"{member!r} is not an ensemble member (use {', '.join(ENSEMBLE_MEMBERS)})"
                    + (f". {guess}" if guess else "")
                )
        if len(set(value)) != len(value):
            raise ValueError("each ensemble member may be named once")
        return tuple(value)


class RetrainConfig(_Strict):
    """Retrain when drift is found; the whole model repository competes on the newest labelled window.

    ``metric`` and ``min_improvement`` drive the retrain's gate: the select step of the retrain run
    registers and ranks the candidates (by its own ``metric`` on valid); then the production model, the best
    new candidate and up to ``keep_versions`` earlier versions are scored on the select step's holdout, and
    the best of them replaces the production model only if it beats it by more than ``min_improvement``.
    A new winner is refitted on its whole window (``refit``, ``refit_holdout``) before it is promoted.
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
            description="Refit a new winner on its whole window (the rounds and parameters it was gated with) "
            "before promoting it."
        ),
    ] = True
    refit_holdout: Annotated[
        bool,
        Field(
            description="The refit fits on the holdout too: all of the window, the newest period included "
            "(false: the holdout stays unseen and `refit_holdout` scores the refit on it)."
        ),
    ] = True
    keep_versions: Annotated[
        int, Field(ge=0, description="Earlier versions (newest first) that compete with the champion.")
    ] = 5
    gate: Annotated[
        GateConfig,
        Field(
            description="The deployment gate: metrics with margins, floors, budgets, infrastructure validation "
            "(metrics empty: metric and min_improvement above)."
        ),
    ] = GateConfig()
    strategy: Annotated[
        str,
        Field(
            description="best: the gate's winner (refitted) serves; ensemble: a new version serving the mean "
            "of monitor.retrain.ensemble.members' probabilities (see its gate)."
        ),
    ] = "best"
    ensemble: EnsembleConfig = EnsembleConfig()
    probation: ProbationConfig = ProbationConfig()

    @field_validator("strategy", mode="before")
    @classmethod
    def _strategy(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in RETRAIN_STRATEGIES:
            guess = did_you_mean(value, RETRAIN_STRATEGIES)
            raise ValueError(
                f"{value!r} is not a retrain strategy (use {', '.join(RETRAIN_STRATEGIES)})"
                + (f". {guess}" if guess else "")
            )
        return value

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> Any:
        parse_window(value)
        return value.strip().lower() if isinstance(value, str) else value

    def window_span(self) -> tuple[int, str]:
        """The window as ``(count, unit)`` (see :func:`parse_window`)."""
        return parse_window(self.window)


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


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_UNIT_SECONDS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str) -> timedelta:
    """A positive duration written as number-unit pairs (units w, d, h, m for minutes, s): "15m", "6h", "1d12h".

    ValueError (pydantic turns it into the config key's error) when ``text`` is not one."""
    compact = text.strip().lower().replace(" ", "")
    pieces = _DURATION.findall(compact)
    if not pieces or "".join(number + unit for number, unit in pieces) != compact:
        raise ValueError(f'{text!r} is not a duration; write it like "15m", "6h" or "1d12h" (units w, d, h, m, s)')
    seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in pieces)
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return timedelta(seconds=seconds)


def _duration(text: str) -> str:
    parse_duration(text)
    return text


def _cron(text: str) -> str:
    from croniter import croniter

    if not croniter.is_valid(text):
        raise ValueError(f'{text!r} is not a cron schedule; write five fields like "0 * * * *" (hourly)')
    return text


Duration = Annotated[str, AfterValidator(_duration)]
Cron = Annotated[str, AfterValidator(_cron)]


class LoopConfig(_Strict):
    """The loop service (``loopline loop``): when it ticks, what makes it retrain, and how often at most.

    A tick runs every ``interval`` (a duration) or on the cron ``schedule`` (not both; neither: every 15m).
    Triggers: drift weighted by feature importance (``min_drift_importance``, the share of importance that
    drifted, counting the features whose PSI is at least ``min_drift_psi``), a drop of the realised or
    estimated metric below the production model's (``max_metric_drop``, and significant against the scores'
    sampling error at ``metric_drop_significance``), a schedule (``retrain_every``) and new data
    (``min_new_rows`` added to ``datasets``, default: the datasets the pipeline ingests). While labels give a
    realised metric, drift only warns (``drift_when_labelled``). No retrain within ``cooldown`` of the last one
    unless forced; the lease a loop holds while it retrains expires ``lease_ttl`` after its last renewal.
    """

    interval: Annotated[Duration | None, Field(description='Time between ticks, e.g. "15m".')] = None
    schedule: Annotated[Cron | None, Field(description='Cron schedule of the ticks, e.g. "0 * * * *".')] = None
    cooldown: Annotated[Duration, Field(description="No second retrain within this of the last one.")] = "6h"
    min_drift_importance: Annotated[
        float, Field(gt=0, le=1, description="Share of feature importance that must drift to retrain.")
    ] = 0.2
    min_drift_psi: Annotated[
        float | None,
        Field(
            ge=0,
            description="A drifted feature counts for the drift trigger only when its PSI (the size of the shift) "
            "is at least this; null: every feature its drift test flags counts.",
        ),
    ] = 0.1
    max_metric_drop: Annotated[
        float | None, Field(ge=0, description="Retrain when the metric falls more than this below the model's.")
    ] = 0.05
    metric_drop_significance: Annotated[
        float | None,
        Field(
            gt=0,
            lt=1,
            description="The metric trigger fires only when the drop is also significant at this one-sided level "
            "(its z against the sampling error of the baseline and the window; 0.00135: 3 standard errors, a control "
            "chart's limit, as the check repeats every window against one baseline); null: the margin alone decides.",
        ),
    ] = 0.00135
    retrain_every: Annotated[Duration | None, Field(description='Retrain this often regardless, e.g. "7d".')] = None
    min_new_rows: Annotated[int | None, Field(ge=1, description="Retrain once this many rows were added.")] = None
    datasets: Annotated[list[str], Field(description="Datasets counted by min_new_rows (default: ingested).")] = []
    lease_ttl: Annotated[Duration, Field(description="A retrain's lease expires this long after renewal.")] = "10m"
    window: Annotated[
        str | None,
        Field(
            description='The monitoring windows each tick closes, e.g. "1d" or "1h" (as `loopline monitor '
            "--window`): their realised and estimated metrics feed the metric trigger and the probation; "
            "null: no window."
        ),
    ] = "1d"
    label_horizon: Annotated[
        Duration,
        Field(description="Labels that arrive late refresh the closed windows that ended within this, e.g. 7d."),
    ] = "7d"
    drift_when_labelled: Annotated[
        Literal["warn", "retrain"],
        Field(
            description="What drift does while the model's windows carry a realised metric (enough labels): "
            '"warn" records a warning and lets the metric trigger decide; "retrain" retrains on drift as without '
            "labels."
        ),
    ] = "warn"

    @model_validator(mode="after")
    def _one_clock(self) -> LoopConfig:
        if self.interval is not None and self.schedule is not None:
            raise ValueError("set monitor.loop.interval or monitor.loop.schedule, not both")
        return self

    @property
    def cooldown_td(self) -> timedelta:
        return parse_duration(self.cooldown)

    @property
    def lease_ttl_td(self) -> timedelta:
        return parse_duration(self.lease_ttl)

    @property
    def label_horizon_td(self) -> timedelta:
        return parse_duration(self.label_horizon)

    @property
    def retrain_every_td(self) -> timedelta | None:
        return None if self.retrain_every is None else parse_duration(self.retrain_every)


ALERT_METRICS = (
    "drifted_features",
    "error_rate",
    "label_coverage",
    "latency_p50_ms",
    "latency_p99_ms",
    "rows",
    "throughput_rps",
)
"""The window figures an alert rule may watch as they are."""

ALERT_FEATURE_METRICS = ("drift", "missing_share", "unseen_share")
"""The per-feature figures an alert rule watches as ``<figure>.<feature>`` (``drift.<feature>`` is its PSI)."""

ALERT_PERFORMANCE_FIGURES = ("estimated", "realised")
"""The per-metric figures an alert rule watches as ``<figure>.<metric>``: ``realised.roc_auc`` (on the window's
labelled predictions), ``estimated.roc_auc`` (without labels; classifiers)."""


class AlertRule(_Strict):
    """Fire when a closed window's figure ``when`` is above ``above`` or below ``below`` (exactly one of them).

    ``when`` is one of :data:`ALERT_METRICS`, ``<figure>.<feature>`` with a figure of
    :data:`ALERT_FEATURE_METRICS`, or ``<figure>.<metric>`` with a figure of :data:`ALERT_PERFORMANCE_FIGURES`;
    the feature and the metric are checked against the model's when windows close.
    """

    when: Annotated[str, Field(description="The window figure, e.g. latency_p99_ms or missing_share.age.")]
    above: float | None = None
    below: float | None = None

    @field_validator("when")
    @classmethod
    def _known_figure(cls, value: str) -> str:
        figure, dot, feature = value.partition(".")
        if dot and figure in (*ALERT_FEATURE_METRICS, *ALERT_PERFORMANCE_FIGURES) and feature:
            return value
        if not dot and value in ALERT_METRICS:
            return value
        choices = [
            *ALERT_METRICS,
            *(f"{name}.<feature>" for name in ALERT_FEATURE_METRICS),
            *(f"{name}.<metric>" for name in ALERT_PERFORMANCE_FIGURES),
        ]
        known = [*ALERT_METRICS, *ALERT_FEATURE_METRICS, *ALERT_PERFORMANCE_FIGURES]
        guess = did_you_mean(figure if dot else value, known)
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
    """How the production model of ``model`` is watched and renewed: ``labels``, where its true outcomes are;
    ``loop``, how the loop service runs.

    ``alerts`` are checked on every window a windowed check closes (``loopline monitor --window``);
    ``alerts_webhook_env`` names the environment variable holding the URL each fired alert is POSTed to (the
    URL itself, which may hold a credential, is never in the YAML nor the store).
    """

    model: Annotated[str, Field(pattern=MODEL_NAME_PATTERN)]
    drift: DriftConfig = DriftConfig()
    retrain: RetrainConfig = RetrainConfig()
    labels: LabelSourceConfig | None = None
    loop: LoopConfig = LoopConfig()
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
