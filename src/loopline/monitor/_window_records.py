"""The records of a monitored window: its service health, its drift, the alerts it fired.

What the orchestrator stores per closed window (``WindowResult.to_dict()``) and what the CLI, the loop service
and the dashboard read back (``WindowResult.from_dict``). ``from_dict`` tolerates missing optional keys, so
windows stored by earlier versions still load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from loopline.monitor._drift import DriftReport

WindowStatus = Literal["closed", "open"]


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _bound(value: Any) -> float:
    """A band's bound as stored: NaN (an estimate with no value, e.g. precision with no positive prediction) is
    written as JSON null and read back as NaN."""
    return float("nan") if value is None else float(value)


@dataclass(frozen=True)
class FeatureHealth:
    """One input feature in a window: the share of rows where it is missing (null, absent or NaN) and, for a
    categorical feature, the share of rows whose value the training reference never held (None for numeric)."""

    feature: str
    missing_share: float
    unseen_share: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "missing_share": self.missing_share, "unseen_share": self.unseen_share}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureHealth:
        return cls(str(data["feature"]), float(data["missing_share"]), _float(data.get("unseen_share")))


@dataclass(frozen=True)
class PredictionSummary:
    """The distribution of the model's outputs in a window.

    ``kind`` is ``categorical`` (``shares``: each class's share of the non-null predictions, the 20 most
    frequent), ``numeric`` (``mean``, ``std``, ``min``, ``p50``, ``max``) or ``none`` (no prediction logged).
    """

    kind: Literal["categorical", "numeric", "none"] = "none"
    shares: dict[str, float] = field(default_factory=dict)
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    p50: float | None = None
    max: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "shares": dict(self.shares),
            **{name: getattr(self, name) for name in ("mean", "std", "min", "p50", "max")},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> PredictionSummary:
        data = data or {}
        numbers = {name: _float(data.get(name)) for name in ("mean", "std", "min", "p50", "max")}
        shares = {str(k): float(v) for k, v in (data.get("shares") or {}).items()}
        return cls(kind=data.get("kind", "none"), shares=shares, **numbers)


@dataclass(frozen=True)
class WindowHealth:
    """Service health of a window.

    ``versions`` counts the rows each model version answered. Latencies are the log's ``latency_ms`` (server-side
    model time per prediction). ``throughput_rps`` is rows per second over the window's span (a time window's
    whole span, a count window's first to last row). ``errors`` counts the requests the service failed in the
    window, by kind (``input``: failed validation, 4xx; ``model``: the model raised, 5xx); ``error_rate`` is
    ``errors / (errors + rows)``, None for a window with neither (or stored before the store counted failures).
    """

    rows: int
    versions: dict[int, int]
    first_at: datetime | None
    last_at: datetime | None
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    latency_mean_ms: float | None
    latency_max_ms: float | None
    throughput_rps: float | None
    features: tuple[FeatureHealth, ...] = ()
    prediction: PredictionSummary = PredictionSummary()
    error_rate: float | None = None
    errors: dict[str, int] = field(default_factory=dict)

    def feature(self, name: str) -> FeatureHealth | None:
        """The health of feature ``name`` (None when it is not monitored)."""
        return next((f for f in self.features if f.feature == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "versions": {str(k): v for k, v in self.versions.items()},
            "first_at": _iso(self.first_at),
            "last_at": _iso(self.last_at),
            **{name: getattr(self, name) for name in _FIGURES},
            "features": [f.to_dict() for f in self.features],
            "prediction": self.prediction.to_dict(),
            "error_rate": self.error_rate,
            "errors": dict(self.errors),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowHealth:
        return cls(
            rows=int(data["rows"]),
            versions={int(k): int(v) for k, v in (data.get("versions") or {}).items()},
            first_at=_time(data.get("first_at")),
            last_at=_time(data.get("last_at")),
            **{name: _float(data.get(name)) for name in _FIGURES},
            features=tuple(FeatureHealth.from_dict(f) for f in data.get("features") or ()),
            prediction=PredictionSummary.from_dict(data.get("prediction")),
            error_rate=_float(data.get("error_rate")),
            errors={str(k): int(v) for k, v in (data.get("errors") or {}).items()},
        )


_FIGURES = ("latency_p50_ms", "latency_p99_ms", "latency_mean_ms", "latency_max_ms", "throughput_rps")


@dataclass(frozen=True)
class WindowResult:
    """One window of a model's prediction log: where it lies, its health, its drift against the training reference.

    ``start``/``end``: a time window's ``[start, end)``; a count window's first and last row's ``created_at``
    (``last_id`` is the last row's prediction id: the next window starts after it). ``drift`` is None when the
    window has no row (``drift_skipped`` says why otherwise); ``output_drift`` is the drift of its predictions
    against the model's own on its validation split (the predicted class and a classifier's probabilities);
    ``target_drift`` the drift of the labels that arrived against the training labels (None before any label).
    ``realised_metrics`` (from labels),
    ``estimated_metrics`` (without labels) and ``label_coverage`` (share of rows with a label) are filled when
    the window closes and refreshed while late labels arrive (:mod:`loopline.run._window_accuracy`):
    ``labelled_rows`` rows had a label (``labelled_positives`` of them a binary model's positive class: with
    ``labelled_rows``, what the sampling error of a realised score is computed from), ``realised_status`` is
    ``ok`` or ``not_enough_labels`` (no metric then), ``realised_slices`` the metrics per value of the model's
    slice columns (``{column: {value: metrics}}``), ``estimated_bands`` each estimate's ``[lower, upper]`` band,
    ``estimation_skipped`` why nothing was estimated, ``labels_changed_at`` the newest label arrival the
    realised figures include.
    """

    model: str
    spec: str
    seq: int
    start: datetime
    end: datetime
    status: WindowStatus
    health: WindowHealth
    drift: DriftReport | None = None
    drift_skipped: str | None = None
    output_drift: DriftReport | None = None
    target_drift: DriftReport | None = None
    last_id: str | None = None
    reference_version: int | None = None
    realised_metrics: dict[str, float] | None = None
    estimated_metrics: dict[str, float] | None = None
    label_coverage: float | None = None
    labelled_rows: int | None = None
    realised_status: str | None = None
    realised_slices: dict[str, dict[str, dict[str, float]]] | None = None
    estimated_bands: dict[str, tuple[float, float]] | None = None
    estimation_skipped: str | None = None
    labels_changed_at: datetime | None = None
    labelled_positives: int | None = None

    @property
    def drifted_features(self) -> int | None:
        """How many features drifted (None without a drift report)."""
        return None if self.drift is None else len(self.drift.drifted)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` reads it back."""
        return {
            "model": self.model,
            "spec": self.spec,
            "seq": self.seq,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "status": self.status,
            "health": self.health.to_dict(),
            "drift": None if self.drift is None else self.drift.to_dict(),
            "drifted_features": self.drifted_features,
            "drift_skipped": self.drift_skipped,
            "output_drift": None if self.output_drift is None else self.output_drift.to_dict(),
            "target_drift": None if self.target_drift is None else self.target_drift.to_dict(),
            "last_id": self.last_id,
            "reference_version": self.reference_version,
            "realised_metrics": self.realised_metrics,
            "estimated_metrics": self.estimated_metrics,
            "label_coverage": self.label_coverage,
            "labelled_rows": self.labelled_rows,
            "realised_status": self.realised_status,
            "realised_slices": self.realised_slices,
            "estimated_bands": None
            if self.estimated_bands is None
            else {name: list(band) for name, band in self.estimated_bands.items()},
            "estimation_skipped": self.estimation_skipped,
            "labels_changed_at": _iso(self.labels_changed_at),
            "labelled_positives": self.labelled_positives,
        }

    def estimate_error(self, metric: str) -> float | None:
        """The estimated ``metric`` less the realised one (None unless the window has both)."""
        realised = (self.realised_metrics or {}).get(metric)
        estimated = (self.estimated_metrics or {}).get(metric)
        return None if realised is None or estimated is None else estimated - realised

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowResult:
        """Rebuild a window written by :meth:`to_dict`."""
        drift, outputs, target = data.get("drift"), data.get("output_drift"), data.get("target_drift")
        version = data.get("reference_version")
        bands = data.get("estimated_bands")
        return cls(
            model=str(data["model"]),
            spec=str(data["spec"]),
            seq=int(data["seq"]),
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
            status=data.get("status", "closed"),
            health=WindowHealth.from_dict(data["health"]),
            drift=None if drift is None else DriftReport.from_dict(drift),
            drift_skipped=data.get("drift_skipped"),
            output_drift=None if outputs is None else DriftReport.from_dict(outputs),
            target_drift=None if target is None else DriftReport.from_dict(target),
            last_id=data.get("last_id"),
            reference_version=None if version is None else int(version),
            realised_metrics=data.get("realised_metrics"),
            estimated_metrics=data.get("estimated_metrics"),
            label_coverage=_float(data.get("label_coverage")),
            labelled_rows=None if data.get("labelled_rows") is None else int(data["labelled_rows"]),
            realised_status=data.get("realised_status"),
            realised_slices=data.get("realised_slices"),
            estimated_bands=None if bands is None else {k: (_bound(v[0]), _bound(v[1])) for k, v in bands.items()},
            estimation_skipped=data.get("estimation_skipped"),
            labels_changed_at=_time(data.get("labels_changed_at")),
            labelled_positives=None if data.get("labelled_positives") is None else int(data["labelled_positives"]),
        )


@dataclass(frozen=True)
class AlertFiring:
    """An alert rule that fired on a window: the rule in words, the figure, its value and the threshold."""

    rule: str
    when: str
    op: Literal["above", "below"]
    threshold: float
    value: float

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "when": self.when, "op": self.op, "threshold": self.threshold, "value": self.value}
