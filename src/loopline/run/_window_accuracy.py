"""The accuracy of a monitored window: realised metrics on its labelled predictions, label coverage, and the
estimated metrics of a classifier, filled when the window closes and refreshed as late labels arrive.

Realised: :func:`loopline.monitor.realised_performance` over the window's predictions joined with their labels
(:meth:`loopline.store.FeedbackRepository.labelled`), overall and per value of the slice columns the production
version's train step declared (``slices``). Estimated: a :class:`loopline.monitor.PerformanceEstimator` fitted on
the version's performance reference (validation probabilities and labels stored at training, named by
``config["performance_reference"]``), applied to the window's served probabilities, with its band (binary and
multi-class classifiers).

Target drift: the labels that arrived for the window's predictions against the training labels
(:func:`loopline.monitor.target_drift`, by the version's reference profile), with the realised figures.

Labels come late: :func:`refresh_window_labels` recomputes the realised figures, target drift and coverage of
closed windows that ended within the label horizon and whose labels changed since (two cheap counts per window
decide), never their feature drift nor their estimate, and stores the realised/coverage alerts they now fire.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl

from loopline.bundle import ModelBundle
from loopline.core.config import DriftConfig
from loopline.core.errors import LooplineError
from loopline.core.records import PERFORMANCE_REFERENCE_KEY
from loopline.monitor import (
    DriftReport,
    PerformanceEstimator,
    ReferenceProfile,
    WindowResult,
    WindowSpec,
    estimated_performance,
    fired_alerts,
    fit_estimator,
    realised_performance,
    target_drift,
)
from loopline.run._webhook import deliver_alerts

if TYPE_CHECKING:
    from loopline.core.config import MonitorConfig
    from loopline.store import AlertEvent, ModelVersion, Store

LABEL_FIGURES = ("realised.", "label_coverage")
"""Alert figures that change when labels arrive: checked again when a window's labels are refreshed."""

_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class AccuracyContext:
    """What every window's accuracy is computed with: the production model's task and classes, its slice
    columns, and its fitted estimator (None, with ``estimation_skipped`` saying why, when there is none)."""

    model: str
    task: str | None
    classes: tuple[Any, ...] | None
    slices: tuple[str, ...]
    estimator: PerformanceEstimator | None
    estimation_skipped: str | None
    profile: ReferenceProfile | None = None
    drift: DriftConfig = field(default_factory=DriftConfig)


def accuracy_context(store: Store, production: ModelVersion, drift: DriftConfig | None = None) -> AccuracyContext:
    """The accuracy context of ``production`` (its bundle loaded once; its estimator fitted once; its profile's
    label distribution, for target drift by ``drift``). A bundle that cannot be loaded gives a context of task
    None: its windows get no accuracy, and say why."""
    try:
        bundle = ModelBundle.from_bytes(store.artifacts.get_bytes(production.bundle_digest))
    except LooplineError as error:
        why = f"the bundle of v{production.version} cannot be loaded: {error}"
        return AccuracyContext(production.name, None, None, (), None, why)
    classes = None if bundle.classes is None else tuple(bundle.classes)
    slices = tuple(str(c) for c in production.typed_config.resolved.get("slices") or ())
    estimator, skipped = _estimator(store, production, bundle.task, classes)
    profile = None
    if production.profile_digest is not None:
        profile = ReferenceProfile.from_json(store.artifacts.get_bytes(production.profile_digest).decode())
    return AccuracyContext(
        production.name, bundle.task, classes, slices, estimator, skipped, profile, drift or DriftConfig()
    )


def with_accuracy(store: Store, context: AccuracyContext, window: WindowResult) -> WindowResult:
    """``window`` with its realised metrics, label coverage and estimated metrics (an empty window: none)."""
    if context.task is None:
        return replace(window, estimation_skipped=context.estimation_skipped)
    start, end = label_range(window)
    changed = store.feedback.changed_at(context.model, start, end)
    frame = _frame(store, context, start, end)
    if frame is None:
        return window
    window = _realised(context, window, frame, changed)
    if context.estimator is None:
        return replace(window, estimation_skipped=context.estimation_skipped)
    if context.classes is None:  # pragma: no cover - an estimator is only fitted for a classifier
        return window
    try:
        estimate = estimated_performance(context.estimator, frame, context.classes)
    except LooplineError as error:  # no served probability in this window, say
        return replace(window, estimation_skipped=str(error))
    metrics = {name: e.value for name, e in estimate.metrics.items()}
    bands = {name: (e.lower, e.upper) for name, e in estimate.metrics.items()}
    return replace(window, estimated_metrics=metrics, estimated_bands=bands)


def refresh_window_labels(
    store: Store,
    config: MonitorConfig,
    spec: WindowSpec | str,
    *,
    horizon: timedelta,
    now: datetime | None = None,
) -> tuple[list[WindowResult], list[AlertEvent]]:
    """Recompute the realised figures of the closed ``spec`` windows of ``config.model`` that ended within
    ``horizon`` of ``now`` and whose labels changed since they were computed; store each with the label alerts
    (``realised.*``, ``label_coverage``) it now fires and had not fired before. Returns the refreshed windows
    and the new alerts (POSTed to ``monitor.alerts_webhook_env``'s URL when set). Drift and estimates stay as
    they were."""
    from loopline.run._windows import json_safe
    from loopline.store import AlertRow

    spec = WindowSpec.parse(spec) if isinstance(spec, str) else spec
    now = (now or datetime.now(UTC)).astimezone(UTC)
    production = store.models.production(config.model)
    if production is None:
        return [], []
    context: AccuracyContext | None = None
    rules = [rule for rule in config.alerts if rule.when.startswith(LABEL_FIGURES)]
    refreshed, events = [], []
    for stored in store.windows.list(config.model, spec.text, since=now - horizon):
        window = WindowResult.from_dict(stored.result)
        start, end = label_range(window)
        changed = store.feedback.changed_at(config.model, start, end)
        if changed is None or changed == window.labels_changed_at:
            continue
        context = context or accuracy_context(store, production, config.drift)
        if context.task is None:
            break
        frame = _frame(store, context, start, end)
        if frame is None:
            continue
        window = _realised(context, window, frame, changed)
        fired = [AlertRow(f.rule, f.when, f.op, f.threshold, f.value) for f in fired_alerts(window, rules)]
        delivery = "pending" if fired and config.alerts_webhook_env else "none"
        events += store.windows.refresh(stored.id, json_safe(window.to_dict()), fired, delivery=delivery)
        refreshed.append(window)
    if events and config.alerts_webhook_env:
        events = deliver_alerts(store, events, config.alerts_webhook_env)
    return refreshed, events


def label_range(window: WindowResult) -> tuple[datetime, datetime]:
    """The ``[start, end)`` of the predictions whose labels count for ``window`` (a count window's end is its
    last row's time, included)."""
    return window.start, window.end + _TICK if window.spec.isdigit() else window.end


def _estimator(
    store: Store, production: ModelVersion, task: str, classes: tuple[Any, ...] | None
) -> tuple[PerformanceEstimator | None, str | None]:
    if task not in ("binary", "multiclass") or classes is None:
        return None, f"performance is estimated for classifiers only; this model is {task}"
    reference = _reference(store, production)
    if reference is None:
        return None, f"v{production.version} has no performance reference (retrain it with loopline's train step)"
    if task == "multiclass":
        try:
            return fit_estimator(reference, classes), None
        except LooplineError as error:  # a reference stored before multi-class ones, too few rows, one class only
            return None, f"the performance reference of v{production.version} cannot be used: {error}"
    try:
        probability = reference.get_column("probability").cast(pl.Float64).to_numpy()
        return PerformanceEstimator().fit(probability, reference.get_column("label").to_numpy()), None
    except LooplineError as error:  # too few reference rows, one class only
        return None, f"the performance reference of v{production.version} cannot be used: {error}"


def _reference(store: Store, production: ModelVersion) -> pl.DataFrame | None:
    """The version's performance reference; a refit's is the one of the version it refits (same model, same
    rounds: the calibration it learnt on held-out rows is the closest there is)."""
    digest = production.config.get(PERFORMANCE_REFERENCE_KEY)
    if not isinstance(digest, str):
        refit = production.config.get("refit")
        of = refit.get("of") if isinstance(refit, Mapping) else None
        if of is None:
            return None
        digest = store.models.get(production.name, int(of)).config.get(PERFORMANCE_REFERENCE_KEY)
        if not isinstance(digest, str):
            return None
    return store.artifacts.get_table(digest)


def _frame(store: Store, context: AccuracyContext, start: datetime, end: datetime) -> pl.DataFrame | None:
    frames = list(store.feedback.labelled(context.model, start, end, inputs=bool(context.slices)))
    return pl.concat(frames, how="diagonal_relaxed") if frames else None


def _realised(
    context: AccuracyContext, window: WindowResult, frame: pl.DataFrame, changed: datetime | None
) -> WindowResult:
    if context.task is None:  # pragma: no cover - callers check first
        return window
    slices = [column for column in context.slices if column in frame.columns]
    classes = None if context.classes is None else list(context.classes)
    real = realised_performance(frame, context.task, classes, slice_by=slices)
    overall = real.overall
    by_slice: dict[str, dict[str, dict[str, float]]] = {}
    for part in real.slices:
        if part.figures.metrics:
            by_slice.setdefault(part.column, {})[str(part.value)] = dict(part.figures.metrics)
    return replace(
        window,
        target_drift=_target_drift(context, frame),
        realised_metrics=dict(overall.metrics) or None,
        realised_status=overall.status,
        realised_slices=by_slice or None,
        labelled_rows=overall.labelled,
        labelled_positives=overall.positives,
        label_coverage=overall.coverage,
        labels_changed_at=changed,
    )


def _target_drift(context: AccuracyContext, frame: pl.DataFrame) -> DriftReport | None:
    """The drift of the window's arrived labels against the training labels (None without a label or a profile;
    a "not available" report for a profile stored before label distributions)."""
    if context.profile is None or "label" not in frame.columns:
        return None
    labels = frame.get_column("label").drop_nulls()
    if labels.is_empty():
        return None
    try:
        return target_drift(context.profile, labels, config=context.drift)
    except LooplineError:  # labels of another type than the training ones: the realised figures still stand
        return None


def newest_accuracy(windows: Sequence[WindowResult], metric: str) -> tuple[WindowResult | None, WindowResult | None]:
    """The newest window with a realised ``metric`` and the newest with an estimated one (None: none)."""
    realised = next((w for w in reversed(windows) if (w.realised_metrics or {}).get(metric) is not None), None)
    estimated = next((w for w in reversed(windows) if (w.estimated_metrics or {}).get(metric) is not None), None)
    return realised, estimated
