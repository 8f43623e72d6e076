"""The records that flow between the stages of the loop: frozen dataclasses, never loose dicts.

    train step ──TrainReport + bundle + reference = Candidate──► select step ──Selection──► CLI, loop, dashboard
    store ──ModelVersions──► rank_candidates ──LeaderboardRows──► run_leaderboard ──Leaderboard──► CLI
    monitor ──RetrainDecision──► retrain ──GateDecision (Contenders)──► refit ──RefitDecision──► promotion
    probation window ──ProbationEvidence (promoted, previous)──► probation ──ProbationDecision──► rollback

Step outputs are stored as artifacts, so every record has ``to_dict()`` (JSON-ready) and ``from_dict()``.
A :class:`TrainReport` carries a ``record`` marker: the select step recognises a candidate by it, and a
malformed or foreign input is a ConfigError naming the input. ``from_dict`` tolerates missing optional keys,
so reports and selections stored by earlier versions of loopline still load.

These records live in the core because the store may import only the core (it registers a
:class:`Candidate`), and every stage and the orchestrator may.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from loopline.core.errors import ConfigError

if TYPE_CHECKING:
    import polars as pl

_T = TypeVar("_T")

RECORD_KEY = "record"
"""The key of the type marker in a record's ``to_dict()``."""

SplitSupport = dict[str, dict[str, int]]
"""The labelled rows a version's metrics were measured on, per split: ``{"test": {"rows": 2000, "positives":
612}}`` (``positives``: a binary model's positive class, its second; other tasks count ``rows`` only). What the
loop's metric trigger computes a baseline's sampling error from."""


def _malformed(what: str, where: str, problem: str) -> ConfigError:
    return ConfigError(
        f"{where} is not a {what}: {problem}.",
        key=where,
        hint=f"Feed it the output of a step that produces a {what} (a 'train' step's candidate for a select step).",
    )


def _require(data: Any, keys: tuple[str, ...], what: str, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise _malformed(what, where, f"got {type(data).__name__}, not a mapping")
    missing = [k for k in keys if k not in data]
    if missing:
        raise _malformed(what, where, f"it lacks {', '.join(missing)}")
    return data


@dataclass(frozen=True)
class Features:
    """A model's input columns: numeric and categorical, as the train step listed them."""

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, list[str]]:
        return {"numeric": list(self.numeric), "categorical": list(self.categorical)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Features:
        data = data or {}
        return cls(tuple(data.get("numeric") or ()), tuple(data.get("categorical") or ()))

    @property
    def names(self) -> list[str]:
        """Every input column: numeric, then categorical."""
        return [*self.numeric, *self.categorical]


FINDING_KINDS = ("all_null", "constant", "target_leakage", "perfect_score")
"""What the train stage's diagnostics report (see :mod:`loopline.train._diagnostics`)."""

SUSPICIOUS_KINDS = ("target_leakage", "perfect_score")
"""Findings that make a candidate suspicious: promotion refuses it unless the select step allows it."""

_LABELS = {"all_null": "all-null", "constant": "constant", "target_leakage": "leak", "perfect_score": "perfect score"}


@dataclass(frozen=True)
class Finding:
    """One thing the training diagnostics noticed about a candidate's data or scores.

    ``kind`` is one of :data:`FINDING_KINDS`; ``feature`` the column concerned (None for a score);
    ``detail`` the sentence a person reads; ``score`` the number behind it (the one-feature ROC AUC or
    R², the validation score); ``action`` what training did: ``dropped`` (the feature was not used) or
    ``flagged``.
    """

    kind: str
    feature: str | None
    detail: str
    score: float | None = None
    action: str = "flagged"

    @property
    def suspicious(self) -> bool:
        """Whether the finding makes the candidate suspicious (target leakage, a near-perfect score)."""
        return self.kind in SUSPICIOUS_KINDS

    @property
    def label(self) -> str:
        """A short tag for a leaderboard cell: ``leak dep_delay``, ``all-null x``, ``perfect score``."""
        tag = _LABELS.get(self.kind, self.kind)
        return f"{tag} {self.feature}" if self.feature else tag

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        score = data.get("score")
        return cls(
            kind=str(data.get("kind", "")),
            feature=data.get("feature"),
            detail=str(data.get("detail", "")),
            score=None if score is None else float(score),
            action=str(data.get("action") or "flagged"),
        )


def findings_from(data: Any) -> tuple[Finding, ...]:
    """The findings stored as ``data`` (a list of mappings; None or absent in older records: none)."""
    return tuple(item if isinstance(item, Finding) else Finding.from_dict(item) for item in data or ())


def _findings_out(findings: tuple[Finding, ...]) -> list[dict[str, Any]]:
    return [finding.to_dict() for finding in findings]


@dataclass(frozen=True)
class CrossValidation:
    """A candidate's cross-validation on its training split: per-fold rows and metrics, their mean and std.

    ``method`` is the folding used (kfold, stratified, group, time); ``group_column`` / ``time_column`` the
    column it folded by; ``fit_s`` the seconds all folds took. The means are also the version's metrics on the
    split ``cv``.
    """

    method: str
    folds: int
    seed: int
    fold_rows: tuple[dict[str, int], ...]
    fold_metrics: tuple[dict[str, float], ...]
    mean: dict[str, float]
    std: dict[str, float]
    group_column: str | None = None
    time_column: str | None = None
    fit_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["fold_rows"], out["fold_metrics"] = list(self.fold_rows), list(self.fold_metrics)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> CrossValidation | None:
        """The summary stored as ``data`` (None for none); tolerant of keys an older or hand-made summary lacks."""
        if not data:
            return None
        return cls(
            method=str(data.get("method") or ""),
            folds=int(data.get("folds") or len(data.get("fold_rows") or ())),
            seed=int(data.get("seed") or 0),
            fold_rows=tuple(dict(rows) for rows in data.get("fold_rows") or ()),
            fold_metrics=tuple(dict(metrics) for metrics in data.get("fold_metrics") or ()),
            mean=dict(data.get("mean") or {}),
            std=dict(data.get("std") or {}),
            group_column=data.get("group_column"),
            time_column=data.get("time_column"),
            fit_s=float(data.get("fit_s") or 0.0),
        )


@dataclass(frozen=True)
class InputField:
    """One field a model accepts: ``dtype`` the schema type (number, string, boolean, datetime), ``nullable``,
    ``train_dtype`` the column's type in the training table and ``max_length`` the longest string accepted
    (both None where not recorded; ``to_dict`` then leaves the key out, as the bundle's schema does)."""

    name: str
    dtype: str
    nullable: bool = True
    train_dtype: str | None = None
    max_length: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "dtype": self.dtype, "nullable": self.nullable}
        if self.train_dtype is not None:
            out["train_dtype"] = self.train_dtype
        if self.max_length is not None:
            out["max_length"] = self.max_length
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputField:
        length = data.get("max_length")
        trained = data.get("train_dtype")
        return cls(
            name=str(data["name"]),
            dtype=str(data.get("dtype", "")),
            nullable=bool(data.get("nullable", True)),
            train_dtype=None if trained is None else str(trained),
            max_length=None if length is None else int(length),
        )


def input_fields(schema: Any) -> tuple[InputField, ...]:
    """The fields stored as ``schema`` (a list of mappings, as a bundle's ``input_schema``; None: none)."""
    return tuple(item if isinstance(item, InputField) else InputField.from_dict(item) for item in schema or ())


@dataclass(frozen=True)
class Training:
    """How a fit went (see ``loopline.train._iterative.FitLog``): ``stopped`` (converged, max_iterations,
    time_budget; None for estimators that do not train in rounds), ``iterations`` run, ``best_iteration``
    (the rounds the model predicts with), ``max_iterations``, the early-stopping ``metric``,
    ``learning_curve`` (``{"train": [...], "valid": [...]}``, one value per round), ``watched`` (where the
    curve's valid values come from), ``peak_rss_increase_mb`` (how far the fit raised the process's peak
    memory) and ``train_metrics_rows`` (the training rows the train metrics were measured on). Every key is
    written, None where unknown; reports from before a key existed read it as None."""

    stopped: str | None = None
    iterations: int | None = None
    best_iteration: int | None = None
    max_iterations: int | None = None
    metric: str | None = None
    learning_curve: dict[str, list[float]] | None = None
    watched: str | None = None
    peak_rss_increase_mb: float | None = None
    train_metrics_rows: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Any) -> Training | None:
        """The record stored as ``data``; None for none (or anything that is not a mapping)."""
        if not isinstance(data, Mapping):
            return None
        curve = data.get("learning_curve")
        return cls(
            stopped=_opt(str, data.get("stopped")),
            iterations=_opt(int, data.get("iterations")),
            best_iteration=_opt(int, data.get("best_iteration")),
            max_iterations=_opt(int, data.get("max_iterations")),
            metric=_opt(str, data.get("metric")),
            learning_curve=None if curve is None else {str(k): list(v) for k, v in curve.items()},
            watched=_opt(str, data.get("watched")),
            peak_rss_increase_mb=_opt(float, data.get("peak_rss_increase_mb")),
            train_metrics_rows=_opt(int, data.get("train_metrics_rows")),
        )


@dataclass(frozen=True)
class Timings:
    """The seconds each phase of training took (``prep_s``, ``fit_s``, ``valid_score_s``, ``total_s``) and
    ``training``, how the fit went. A phase or ``training`` that is None was not recorded: ``to_dict``
    leaves its key out, so a report stored without it (an older release, a version registered by hand)
    reads back and writes out as it was."""

    prep_s: float | None = None
    fit_s: float | None = None
    valid_score_s: float | None = None
    total_s: float | None = None
    training: Training | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: value for name in _PHASES if (value := getattr(self, name)) is not None}
        if self.training is not None:
            out["training"] = self.training.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Timings:
        """Tolerant: a missing phase or ``training`` (or ``data`` None) is None."""
        data = data or {}
        phases = {name: _opt(float, data.get(name)) for name in _PHASES}
        return cls(**phases, training=Training.from_dict(data.get("training")))


_PHASES = ("prep_s", "fit_s", "valid_score_s", "total_s")


@dataclass(frozen=True)
class ThreadInfo:
    """The threads a fit ran with: ``requested`` (the step's ``threads``; None: the free cores), ``granted``
    (the cores leased from the process's budget), and the largest thread count of the loaded ``openmp`` and
    ``blas`` libraries (None when none was loaded). ``granted`` is None in reports from before the budget."""

    requested: int | None = None
    granted: int | None = None
    openmp: int | None = None
    blas: int | None = None

    def to_dict(self) -> dict[str, int | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ThreadInfo | None:
        if data is None:
            return None
        return cls(*(_opt(int, data.get(f.name)) for f in fields(cls)))


@dataclass(frozen=True)
class Slice:
    """The rows of one value of a column, and the model's metrics on them (none below the step's
    ``slice_min_rows``, and none that is undefined on the slice)."""

    rows: int
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, **self.metrics}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Slice:
        return cls(int(data.get("rows") or 0), {str(k): float(v) for k, v in data.items() if k != "rows"})


@dataclass(frozen=True)
class SliceMetrics:
    """Metrics per data slice: ``splits`` is ``{split: {column: {value: Slice}}}`` (values as strings, in the
    order the train stage listed them: biggest slice first). Stored as ``{split: {column: {value: {"rows": n,
    metric: value}}}}``."""

    splits: dict[str, dict[str, dict[str, Slice]]]

    def to_dict(self) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
        return {
            split: {
                column: {value: s.to_dict() for value, s in by_value.items()} for column, by_value in columns.items()
            }
            for split, columns in self.splits.items()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> SliceMetrics | None:
        if data is None:
            return None
        return cls(
            {
                str(split): {
                    str(column): {str(value): Slice.from_dict(stats) for value, stats in by_value.items()}
                    for column, by_value in columns.items()
                }
                for split, columns in data.items()
            }
        )

    def tables(self) -> list[tuple[str, str, dict[str, Slice]]]:
        """``(split, column, {value: Slice})`` for each split and column, in order."""
        return [
            (split, column, by_value) for split, columns in self.splits.items() for column, by_value in columns.items()
        ]


@dataclass(frozen=True)
class TrainReport:
    """What a train step reports about its candidate, and what the model version records.

    ``metrics`` is ``{split: {metric: value}}`` (``cv``: the fold means); ``timings`` the seconds per
    phase and how the fit went (:class:`Timings`); ``input_schema`` the fields the model accepts;
    ``lineage`` output feature -> input columns (None without a transform chain); ``slice_metrics`` the
    metrics per value of the step's ``slices`` columns; ``cv`` the cross-validation summary (folds, seed,
    fold metrics, mean, std); ``threads`` what the fit saw (:class:`ThreadInfo`); ``findings`` what the
    training diagnostics noticed (empty, constant or target-derived features, a near-perfect score);
    ``importance`` the weight of each input feature (:class:`FeatureImportance`; None: not measured);
    ``support`` the labelled rows each scored split's metrics were measured on (:data:`SplitSupport`).

    ``params`` (the estimator's resolved parameters) and ``step_config`` (the train step's resolved config)
    stay JSON mappings on purpose: their keys are whatever the estimator, or the step type and its plugins,
    take, so no record type can name them; they are stored and shown as given, never read field by field.
    """

    KIND: ClassVar[str] = "loopline.train_report"

    algorithm: str
    metrics: dict[str, dict[str, float]]
    params: dict[str, Any]
    timings: Timings
    input_schema: tuple[InputField, ...]
    features: Features
    target: str
    task: str
    data_fingerprint: str
    rows: dict[str, int]
    step_config: dict[str, Any]
    lineage: dict[str, list[str]] | None = None
    slice_metrics: SliceMetrics | None = None
    cv: CrossValidation | None = None
    threads: ThreadInfo | None = None
    findings: tuple[Finding, ...] = ()
    refit: RefitLineage | None = None
    importance: FeatureImportance | None = None
    ensemble: EnsembleLineage | None = None
    support: SplitSupport = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {RECORD_KEY: self.KIND}
        out.update({f.name: getattr(self, f.name) for f in fields(self)})
        out["timings"] = self.timings.to_dict()
        out["input_schema"] = [item.to_dict() for item in self.input_schema]
        out.update(_nested_out(self))
        if self.refit is None:  # records written before refits existed write back byte for byte
            out.pop("refit")
        if self.importance is None:  # so do those written before feature importance
            out.pop("importance")
        else:
            out["importance"] = self.importance.to_dict()
        if self.ensemble is None:
            out.pop("ensemble")
        if not self.support:  # so do those written before the support was counted
            out.pop("support")
        return out

    @classmethod
    def is_one(cls, data: Any) -> bool:
        """Whether ``data`` is a stored train report: a mapping with this record's marker."""
        return isinstance(data, Mapping) and data.get(RECORD_KEY) == cls.KIND

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "train report") -> TrainReport:
        """The report stored as ``data``; ConfigError naming ``where`` when it is not one. Reports stored
        before the marker existed (they have ``algorithm``, ``metrics`` and ``features``) load as well."""
        required = ("algorithm", "metrics", "features", "target", "task", "input_schema")
        data = _require(data, required, "train report", where)
        marker = data.get(RECORD_KEY)
        if marker is not None and marker != cls.KIND:
            raise _malformed("train report", where, f"it is a {marker!r} record")
        return cls(
            algorithm=str(data["algorithm"]),
            metrics=dict(data["metrics"]),
            params=dict(data.get("params") or {}),
            timings=Timings.from_dict(data.get("timings")),
            input_schema=input_fields(data["input_schema"]),
            features=Features.from_dict(data["features"]),
            target=str(data["target"]),
            task=str(data["task"]),
            data_fingerprint=str(data.get("data_fingerprint", "")),
            rows=dict(data.get("rows") or {}),
            step_config=dict(data.get("step_config") or {}),
            lineage=data.get("lineage"),
            slice_metrics=SliceMetrics.from_dict(data.get("slice_metrics")),
            cv=CrossValidation.from_dict(data.get("cv")),
            threads=ThreadInfo.from_dict(data.get("threads")),
            findings=findings_from(data.get("findings")),
            refit=RefitLineage.from_dict(data.get("refit")),
            importance=FeatureImportance.from_dict(data.get("importance")),
            ensemble=EnsembleLineage.from_dict(data.get("ensemble")),
            support=support_from(data.get("support")),
        )

    def version_config(self) -> dict[str, Any]:
        """The model version's ``config`` as the repository stores it (see :class:`VersionConfig`)."""
        return VersionConfig(
            features=self.features,
            target=self.target,
            task=self.task,
            rows=self.rows,
            resolved=self.step_config,
            lineage=self.lineage,
            slice_metrics=self.slice_metrics,
            cv=self.cv,
            threads=self.threads,
            findings=self.findings,
            refit=self.refit,
            importance=self.importance,
            ensemble=self.ensemble,
            support=self.support,
        ).to_dict()


@dataclass(frozen=True)
class VersionConfig:
    """The typed view of a model version's stored ``config``: what it was trained on and how.

    ``resolved`` is the train step's config (a JSON mapping, as :attr:`TrainReport.step_config`); per-slice
    metrics, the cross-validation summary and the training diagnostics' ``findings`` ride here, so the
    version's ``metrics`` stay ``{split: {metric: value}}``. ``importance`` is stored as the loop reads it:
    ``{feature: weight}`` under :data:`IMPORTANCE_KEY`, the rest of the record beside it. ``support``: the
    labelled rows each split's metrics were measured on (:data:`SplitSupport`; empty before it was counted).
    """

    features: Features = Features()
    target: str | None = None
    task: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    resolved: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, list[str]] | None = None
    slice_metrics: SliceMetrics | None = None
    cv: CrossValidation | None = None
    threads: ThreadInfo | None = None
    findings: tuple[Finding, ...] = ()
    refit: RefitLineage | None = None
    importance: FeatureImportance | None = None
    ensemble: EnsembleLineage | None = None
    support: SplitSupport = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out.update(_nested_out(self))
        if self.refit is None:  # records written before refits existed write back byte for byte
            out.pop("refit")
        if self.ensemble is None:  # so do those written before ensembles
            out.pop("ensemble")
        if not self.support:  # and those written before the support was counted
            out.pop("support")
        importance = out.pop("importance")  # the loop reads the weights as {feature: weight} under their own key
        if importance is not None:
            out[IMPORTANCE_KEY] = dict(importance.weights)
            out[f"{IMPORTANCE_KEY}_details"] = importance.details()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> VersionConfig:
        """Tolerant: versions registered by hand (``config={}``) or by older releases lack keys."""
        data = data or {}
        return cls(
            features=Features.from_dict(data.get("features")),
            target=data.get("target"),
            task=data.get("task"),
            rows=dict(data.get("rows") or {}),
            resolved=dict(data.get("resolved") or {}),
            lineage=data.get("lineage"),
            slice_metrics=SliceMetrics.from_dict(data.get("slice_metrics")),
            cv=CrossValidation.from_dict(data.get("cv")),
            threads=ThreadInfo.from_dict(data.get("threads")),
            findings=findings_from(data.get("findings")),
            refit=RefitLineage.from_dict(data.get("refit")),
            importance=_version_importance(data),
            ensemble=EnsembleLineage.from_dict(data.get("ensemble")),
            support=support_from(data.get("support")),
        )

    @property
    def suspicious(self) -> tuple[Finding, ...]:
        """The findings that make the version suspicious (see :data:`SUSPICIOUS_KINDS`)."""
        return tuple(finding for finding in self.findings if finding.suspicious)

    def cv_std(self, metric: str) -> float | None:
        """The standard deviation of ``metric`` over the cross-validation folds (None without cv)."""
        value = None if self.cv is None else self.cv.std.get(metric)
        return None if value is None else float(value)


@dataclass(frozen=True)
class Candidate:
    """A trained candidate on its way to the model repository: the bundle's bytes, the drift reference
    (training rows; None: no drift monitoring), its :class:`TrainReport`, the drift reference profile of
    the whole training split (``loopline.monitor.ReferenceProfile`` as JSON bytes; None: not profiled) and, for a
    binary classifier, its ``performance`` reference (validation rows' ``probability`` of the positive class and
    ``label``, True for the positive class: what performance estimation calibrates on; None otherwise)."""

    bundle: bytes
    reference: pl.DataFrame | None
    report: TrainReport
    profile: bytes | None = None
    performance: pl.DataFrame | None = None
    golden: pl.DataFrame | None = None
    """A few validation rows and the bundle's outputs on them (``loopline.bundle.golden_outputs``): what the
    deployment gate's infrastructure validation must reproduce bit for bit; None: not made."""

    def to_dict(self) -> dict[str, Any]:
        """The train step's outputs: ``bundle`` (bytes), ``reference`` (a frame), ``profile`` (bytes or None),
        ``performance`` and ``golden`` (frames or None) and ``report`` (JSON); the runner stores each as its own
        artifact."""
        return {
            "bundle": self.bundle,
            "reference": self.reference,
            "profile": self.profile,
            "performance": self.performance,
            "golden": self.golden,
            "report": self.report.to_dict(),
        }

    @classmethod
    def is_one(cls, data: Any) -> bool:
        """Whether ``data`` (a step's outputs) holds a candidate: its report carries the record marker."""
        return isinstance(data, Mapping) and TrainReport.is_one(data.get("report"))

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "candidate") -> Candidate:
        """The candidate in a train step's outputs; ConfigError naming ``where`` when malformed."""
        data = _require(data, ("bundle", "report"), "candidate", where)
        if not isinstance(data["bundle"], bytes | bytearray):
            raise _malformed("candidate", where, f"its bundle is {type(data['bundle']).__name__}, not bytes")
        report = TrainReport.from_dict(data["report"], where=f"{where}.report")
        profile = data.get("profile")
        if profile is not None and not isinstance(profile, bytes | bytearray):
            raise _malformed("candidate", where, f"its profile is {type(profile).__name__}, not bytes")
        profile = None if profile is None else bytes(profile)
        return cls(
            bytes(data["bundle"]), data.get("reference"), report, profile, data.get("performance"), data.get("golden")
        )


PERFORMANCE_REFERENCE_KEY = "performance_reference"
"""Where a model version's config names the artifact (a table digest) of its performance reference: the
validation rows' ``probability`` and ``label`` a performance estimator calibrates on (binary classifiers)."""

GOLDEN_PREDICTIONS_KEY = "golden_predictions"
"""Where a model version's config names the artifact (a table digest) of its golden predictions: a few
validation rows and the bundle's outputs on them, reproduced bit for bit by the gate's infrastructure validation."""

GATE_VERDICT_KEY = "gate"
"""Where a model version's config keeps the last deployment-gate verdict on it (:class:`GateVerdict`)."""

GATE_CHECK_KINDS = ("margin", "floor", "budget", "infra", "suspicion")
"""What a gate check is about: a margin against the champion, an absolute floor, a budget, the infrastructure
validation, the training diagnostics."""


@dataclass(frozen=True)
class GateCheck:
    """One check of the deployment gate: ``passed`` (None: skipped, ``detail`` says why), the challenger's
    ``value``, the ``threshold`` it was held to and, for a margin or a budget, the ``champion``'s value."""

    name: str
    kind: str
    passed: bool | None
    value: float | None = None
    threshold: float | None = None
    champion: float | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _json_float(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateCheck:
        passed = data.get("passed")
        return cls(
            name=str(data.get("name", "")),
            kind=str(data.get("kind", "")),
            passed=None if passed is None else bool(passed),
            value=_optional_float(data.get("value")),
            threshold=_optional_float(data.get("threshold")),
            champion=_optional_float(data.get("champion")),
            detail=str(data.get("detail", "")),
        )


@dataclass(frozen=True)
class GateVerdict:
    """Every check the deployment gate ran on ``challenger`` against ``champion`` (None: there was none) on
    ``evaluated_on`` (the holdout's evaluation key and rows); ``passed`` when no check failed."""

    challenger: int
    champion: int | None
    checks: tuple[GateCheck, ...]
    evaluated_on: str = ""
    run_id: str | None = None

    @property
    def passed(self) -> bool:
        return all(check.passed is not False for check in self.checks)

    @property
    def failed(self) -> tuple[GateCheck, ...]:
        return tuple(check for check in self.checks if check.passed is False)

    def reasons(self) -> str:
        """The failed checks in one sentence (empty when none failed)."""
        return "; ".join(f"{check.name}: {check.detail}" for check in self.failed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "challenger": self.challenger,
            "champion": self.champion,
            "passed": self.passed,
            "checks": [check.to_dict() for check in self.checks],
            "evaluated_on": self.evaluated_on,
            "run_id": self.run_id,
        }

    @classmethod
    def from_dict(cls, data: Any) -> GateVerdict | None:
        if not isinstance(data, Mapping) or "checks" not in data:
            return None
        return cls(
            challenger=int(data.get("challenger") or 0),
            champion=data.get("champion"),
            checks=tuple(GateCheck.from_dict(c) for c in data.get("checks") or ()),
            evaluated_on=str(data.get("evaluated_on", "")),
            run_id=data.get("run_id"),
        )


@dataclass(frozen=True)
class GateDecision:
    """Whether to promote the challenger; a score is NaN where that side had none (no champion).

    ``champion`` and ``challenger`` are the versions compared when the gate ran on registered versions.
    """

    promote: bool
    reason: str
    metric: str
    champion_score: float
    challenger_score: float
    min_improvement: float = 0.0
    champion: int | None = None
    challenger: int | None = None
    contenders: tuple[Contender, ...] = ()
    verdict: GateVerdict | None = None
    """Every check of the deployment gate (None: the gate's checks did not run, e.g. ``promote: always``)."""

    def to_dict(self) -> dict[str, Any]:
        """``contenders`` and ``verdict`` only when there are some (a gate between two versions writes as before)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["contenders"] = [c.to_dict() for c in self.contenders]
        if not self.contenders:
            out.pop("contenders")
        out["verdict"] = None if self.verdict is None else self.verdict.to_dict()
        if self.verdict is None:
            out.pop("verdict")
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateDecision:
        """Also reads the ``gate`` of selections stored before this record (no promote/reason in it)."""
        return cls(
            promote=bool(data.get("promote", False)),
            reason=str(data.get("reason", "")),
            metric=str(data.get("metric", "")),
            champion_score=_float(data.get("champion_score")),
            challenger_score=_float(data.get("challenger_score")),
            min_improvement=float(data.get("min_improvement") or 0.0),
            champion=data.get("champion"),
            challenger=data.get("challenger"),
            contenders=tuple(Contender.from_dict(c) for c in data.get("contenders") or ()),
            verdict=GateVerdict.from_dict(data.get("verdict")),
        )


CONTENDER_ROLES = ("champion", "challenger", "earlier")
"""Who competes at a retrain decision: the production version, the retrain's best new candidate and the
retained earlier versions (see ``loopline.run.retrain_and_gate``)."""


@dataclass(frozen=True)
class Contender:
    """One version scored at a retrain decision on the newest labelled window (the retrain's holdout).

    ``role`` is one of :data:`CONTENDER_ROLES`; ``score`` the gate's metric on the holdout (None when the
    version could not be scored: ``note`` says why, e.g. its bundle is no longer servable); ``rank`` its place
    among the scored ones (1: best)."""

    version: int
    role: str
    score: float | None
    rank: int | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Contender:
        score, rank = data.get("score"), data.get("rank")
        return cls(
            version=int(data["version"]),
            role=str(data.get("role", "")),
            score=None if score is None else float(score),
            rank=None if rank is None else int(rank),
            note=str(data.get("note") or ""),
        )


@dataclass(frozen=True)
class FeatureImportance:
    """How much each input feature matters to a trained model: ``weights`` by input column (the raw columns
    the model takes, as the prediction log and the drift report name them), non-negative and summing to 1.

    ``method`` says how they were measured (``permutation``: the mean drop of ``metric`` when the column's
    values are shuffled among ``rows`` validation rows, ``repeats`` times); ``drop`` and ``std`` are the raw
    drops per column (in the metric's direction: positive = the model got worse; a negative one is clipped
    to weight 0), ``baseline`` the unshuffled score, ``seconds`` what it cost. ``note`` says when the weights
    are equal because no shuffle hurt. ``skipped`` is why nothing was measured (``weights`` is then empty and
    the loop weighs every feature the same).
    """

    weights: dict[str, float] = field(default_factory=dict)
    method: str = "permutation"
    metric: str | None = None
    baseline: float | None = None
    rows: int = 0
    repeats: int = 0
    drop: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    note: str = ""
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def details(self) -> dict[str, Any]:
        """Everything but ``weights`` (a version's config keeps the weights on their own key)."""
        out = self.to_dict()
        out.pop("weights")
        return out

    def ranked(self) -> list[tuple[str, float]]:
        """``(feature, weight)`` pairs, the heaviest first (ties by name)."""
        return sorted(self.weights.items(), key=lambda item: (-item[1], item[0]))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> FeatureImportance | None:
        """Tolerant: missing keys take their defaults; None for None (no importance recorded)."""
        if data is None:
            return None
        baseline, metric, skipped = data.get("baseline"), data.get("metric"), data.get("skipped")
        return cls(
            weights=_floats(data.get("weights")),
            method=str(data.get("method") or "permutation"),
            metric=None if metric is None else str(metric),
            baseline=None if baseline is None else float(baseline),
            rows=int(data.get("rows") or 0),
            repeats=int(data.get("repeats") or 0),
            drop=_floats(data.get("drop")),
            std=_floats(data.get("std")),
            seconds=float(data.get("seconds") or 0.0),
            note=str(data.get("note") or ""),
            skipped=None if skipped is None else str(skipped),
        )


IMPORTANCE_KEY = "feature_importance"
"""Where a model version's config keeps its feature weights, ``{input feature: weight}`` (what the loop's drift
trigger reads); the rest of :class:`FeatureImportance` rides under ``feature_importance_details``."""


@dataclass(frozen=True)
class RefitLineage:
    """Where a refitted version comes from: version ``of`` (the one the gate chose), refitted on ``rows``
    (``train``, ``valid`` and, unless it was kept out, the gate's ``holdout``: every split named was fitted
    on), with ``rounds`` boosting rounds pinned from the gated fit's early stopping (None: the estimator does
    not train in rounds). The version's ``valid``, ``test`` and ``holdout_*`` metrics are those of version
    ``of`` (the gated evaluation); ``refit_train`` is measured on rows the refit was fitted on,
    ``refit_holdout`` (only when the holdout was kept out) on the holdout it never saw."""

    of: int
    rows: dict[str, int]
    rounds: int | None = None
    data_fingerprint: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RefitLineage | None:
        if not data:
            return None
        rounds = data.get("rounds")
        return cls(
            of=int(data["of"]),
            rows={str(k): int(v) for k, v in (data.get("rows") or {}).items()},
            rounds=None if rounds is None else int(rounds),
            data_fingerprint=str(data.get("data_fingerprint") or ""),
        )


@dataclass(frozen=True)
class EnsembleMember:
    """One member of an ensemble version: model version ``version``, in the ensemble as ``role`` (``initial``,
    ``window``, ``expanding``: see ``monitor.retrain.ensemble``)."""

    version: int
    role: str

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "role": self.role}


@dataclass(frozen=True)
class EnsembleLineage:
    """Which versions an ensemble version averages (``combine``: ``mean``, of the members' probabilities for a
    classifier, of their predictions for a regressor), in the order of its bundle's members."""

    members: tuple[EnsembleMember, ...]
    combine: str = "mean"

    def to_dict(self) -> dict[str, Any]:
        return {"members": [m.to_dict() for m in self.members], "combine": self.combine}

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(m.version for m in self.members)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> EnsembleLineage | None:
        if not data:
            return None
        members = tuple(EnsembleMember(int(m["version"]), str(m.get("role", ""))) for m in data.get("members") or ())
        return cls(members, str(data.get("combine", "mean")))


@dataclass(frozen=True)
class RefitDecision:
    """Whether the retrain's winner was refitted on its whole window before its promotion, and why (not).

    ``of`` is the gated version, ``version`` the refitted one (None when no refit ran)."""

    refitted: bool
    reason: str
    of: int | None = None
    version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RefitDecision | None:
        if not data:
            return None
        return cls(bool(data.get("refitted")), str(data.get("reason", "")), data.get("of"), data.get("version"))


@dataclass(frozen=True)
class ProbationEvidence:
    """How one version did on a probation window: ``score`` of ``metric`` (``estimated``: from the
    confidence of its predictions, not from labels), over ``rows`` rows, and its ``error_rate`` (the share
    of requests that failed)."""

    version: int
    metric: str
    score: float
    rows: int
    estimated: bool = False
    error_rate: float = 0.0


@dataclass(frozen=True)
class ProbationDecision:
    """Whether the promoted version is rolled back after its probation, and why.

    ``loss`` is how much better the previous version scored (in the metric's direction; NaN when not
    compared); ``rolled_back_to`` the version production went back to (None: no rollback happened)."""

    rollback: bool
    reason: str
    promoted: int
    previous: int
    metric: str
    loss: float
    margin: float
    rolled_back_to: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class RetrainDecision:
    """Whether to retrain, and why in words."""

    retrain: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"retrain": self.retrain, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetrainDecision:
        return cls(bool(data["retrain"]), str(data["reason"]))


@dataclass(frozen=True)
class LeaderboardRow:
    """One candidate on a leaderboard: ``score`` is the metric on the ranked split; ``rank`` None when the
    candidate lacks it; ``valid``/``test``/``cv`` the metric on each split; ``cv_std`` over the folds;
    ``fit_s``, ``stopped`` and ``iterations`` how the fit went; ``best`` rank 1; ``promoted`` it became
    production; ``findings`` what the training diagnostics flagged (``suspicious``: leakage or a near-perfect
    score among them)."""

    rank: int | None
    version: int
    algorithm: str
    score: float | None
    valid: float | None = None
    test: float | None = None
    cv: float | None = None
    cv_std: float | None = None
    fit_s: float | None = None
    stopped: str | None = None
    iterations: int | None = None
    best: bool = False
    promoted: bool = False
    findings: tuple[Finding, ...] = ()

    @property
    def suspicious(self) -> bool:
        """Whether a finding makes this candidate suspicious."""
        return any(finding.suspicious for finding in self.findings)

    @property
    def flags(self) -> list[str]:
        """The findings as short tags (``leak x``, ``all-null y``...), for a table cell."""
        return [finding.label for finding in self.findings]

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["findings"] = _findings_out(self.findings)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LeaderboardRow:
        names = {f.name for f in fields(cls)}
        row = {k: v for k, v in data.items() if k in names}
        row["findings"] = findings_from(data.get("findings"))
        return cls(**row)


@dataclass(frozen=True)
class Leaderboard:
    """The candidates of model ``model`` one run compared, ranked best first by ``metric`` on ``split``
    (see ``loopline.run.run_leaderboard``); ``run_id`` is the run."""

    model: str
    run_id: str
    metric: str
    split: str
    rows: tuple[LeaderboardRow, ...]

    def to_dict(self) -> dict[str, Any]:
        """``{"model", "run_id", "metric", "split", "rows"}``, the rows as :meth:`LeaderboardRow.to_dict`."""
        return {
            "model": self.model,
            "run_id": self.run_id,
            "metric": self.metric,
            "split": self.split,
            "rows": [row.to_dict() for row in self.rows],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Leaderboard:
        return cls(
            model=str(data["model"]),
            run_id=str(data["run_id"]),
            metric=str(data["metric"]),
            split=str(data.get("split") or "valid"),
            rows=tuple(LeaderboardRow.from_dict(row) for row in data.get("rows") or ()),
        )


@dataclass(frozen=True)
class CandidateSummary:
    """A registered candidate as a selection lists it: version, algorithm and metrics per split."""

    version: int
    algorithm: str
    metrics: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "algorithm": self.algorithm, "metrics": self.metrics}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CandidateSummary:
        return cls(int(data["version"]), str(data["algorithm"]), dict(data.get("metrics") or {}))


@dataclass(frozen=True)
class Selection:
    """What a select step decided: the candidates it registered under ``model``, the ``best`` version by
    ``metric`` on valid, whether it was promoted and why, the holdout ``gate`` (None when no comparison
    ran) and the ``leaderboard`` (best first)."""

    KIND: ClassVar[str] = "loopline.selection"

    model: str
    candidates: tuple[CandidateSummary, ...]
    best: int
    promote: bool
    reason: str
    gate: GateDecision | None
    metric: str
    leaderboard: tuple[LeaderboardRow, ...] = ()
    refit: RefitDecision | None = None
    ensemble: int | None = None
    """The ensemble version the retrain built (``monitor.retrain.strategy: ensemble``), or None."""

    @property
    def promoted(self) -> int | None:
        """The version this selection made production (the ensemble when one was built, else the refit of
        ``best`` when one ran), or None."""
        if not self.promote:
            return None
        if self.ensemble is not None:
            return self.ensemble
        return self.refit.version if self.refit is not None and self.refit.version is not None else self.best

    def to_dict(self) -> dict[str, Any]:
        return {
            RECORD_KEY: self.KIND,
            "model": self.model,
            "candidates": [c.to_dict() for c in self.candidates],
            "best": self.best,
            "promote": self.promote,
            "reason": self.reason,
            "gate": None if self.gate is None else self.gate.to_dict(),
            "metric": self.metric,
            "leaderboard": [row.to_dict() for row in self.leaderboard],
            **({} if self.refit is None else {"refit": self.refit.to_dict()}),
            **({} if self.ensemble is None else {"ensemble": self.ensemble}),
        }

    @classmethod
    def is_one(cls, data: Any) -> bool:
        """Whether ``data`` is a stored selection (marked, or shaped like one from before the marker)."""
        if not isinstance(data, Mapping):
            return False
        return data.get(RECORD_KEY) == cls.KIND or (RECORD_KEY not in data and {"model", "best"} <= set(data))

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "selection") -> Selection:
        data = _require(data, ("model", "candidates", "best", "promote"), "selection", where)
        gate = data.get("gate")
        return cls(
            model=str(data["model"]),
            candidates=tuple(CandidateSummary.from_dict(c) for c in data["candidates"]),
            best=int(data["best"]),
            promote=bool(data["promote"]),
            reason=str(data.get("reason", "")),
            gate=None if not gate else GateDecision.from_dict({**_decision(data), **gate}),
            metric=str(data.get("metric", "")),
            leaderboard=tuple(LeaderboardRow.from_dict(r) for r in data.get("leaderboard") or ()),
            refit=RefitDecision.from_dict(data.get("refit")),
            ensemble=None if data.get("ensemble") is None else int(data["ensemble"]),
        )


def support_from(data: Any) -> SplitSupport:
    """A stored :data:`SplitSupport` (tolerant: anything else, or a split without its ``rows``, is left out)."""
    if not isinstance(data, Mapping):
        return {}
    out: SplitSupport = {}
    for split, counts in data.items():
        if isinstance(counts, Mapping) and isinstance(counts.get("rows"), int):
            out[str(split)] = {str(k): int(v) for k, v in counts.items() if isinstance(v, int)}
    return out


def _nested_out(record: TrainReport | VersionConfig) -> dict[str, Any]:
    """The JSON of the nested records a train report and a version config share."""
    out = {
        "features": record.features.to_dict(),
        "slice_metrics": None if record.slice_metrics is None else record.slice_metrics.to_dict(),
        "cv": None if record.cv is None else record.cv.to_dict(),
        "threads": None if record.threads is None else record.threads.to_dict(),
        "findings": _findings_out(record.findings),
        "refit": None if record.refit is None else record.refit.to_dict(),
    }
    if record.ensemble is not None:  # records written before ensembles existed write back byte for byte
        out["ensemble"] = record.ensemble.to_dict()
    return out


def _version_importance(config: Mapping[str, Any]) -> FeatureImportance | None:
    """A version config's :class:`FeatureImportance`: its weights and their details (None when neither is
    there; weights written by hand, without details, read as given)."""
    weights, details = config.get(IMPORTANCE_KEY), config.get(f"{IMPORTANCE_KEY}_details")
    if weights is None and details is None:
        return None
    return FeatureImportance.from_dict({**(details or {}), "weights": weights})


def _floats(data: Mapping[str, Any] | None) -> dict[str, float]:
    return {str(k): float(v) for k, v in (data or {}).items()}


def _opt(kind: Callable[[Any], _T], value: Any) -> _T | None:
    """``kind(value)``, None for None."""
    return None if value is None else kind(value)


def _decision(selection: Mapping[str, Any]) -> dict[str, Any]:
    """What a stored gate from before :class:`GateDecision` left to its selection."""
    return {"promote": selection["promote"], "reason": selection.get("reason", ""), "metric": selection.get("metric")}


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _json_float(value: Any) -> Any:
    """NaN and infinities as None: a verdict is stored as JSON (PostgreSQL's JSON rejects NaN)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)
