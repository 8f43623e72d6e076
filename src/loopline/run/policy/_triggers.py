"""The loop service's triggers: what makes ``loopline loop`` retrain, and the cooldown."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from loopline.core.config import LoopConfig, MonitorConfig
from loopline.monitor import MIN_LABELS
from loopline.run.policy._rules import MIN_RETRAIN_ROWS, higher_is_better
from loopline.run.policy._significance import MetricSample, drop_test, standard_error

if TYPE_CHECKING:
    from loopline.monitor import DriftReport


# -- triggers (the loop service) ----------------------------------------------------------------
#
# What makes `loopline loop` retrain, one function per trigger, each returning a TriggerDecision with its reason
# (run/_service.py records every one as a loop event). A tick gathers LoopSignals (drift, feature importance,
# realised or estimated metrics, the last retrain, new rows), :func:`evaluate_triggers` decides, and
# :func:`cooldown` says whether a retrain may start now. Everything a signal lacks is left out, never guessed.
#
# When labels exist the performance trigger is decisive: while the production version's windows carry a realised
# metric (on at least MIN_LABELS labelled rows, within the label horizon) and the metric trigger is on, drift
# alone does not retrain; it is a *warning* (``monitor.loop.drift_when_labelled: warn``, the default). Input
# drift that does not hurt the model (a season, a sensor recalibrated the model is robust to) is then no reason
# to retrain; drift that hurts it shows as a realised drop. Without labels drift and the estimated metric decide.


TriggerName = Literal["drift", "metric", "schedule", "volume", "forced", "resume", "requested"]


@dataclass(frozen=True)
class LoopSignals:
    """What one tick of the loop knows; every field is optional (None: that signal is not available).

    ``drift``: the drift report of the production model's traffic; ``importance``: the model's feature importance
    by input feature (None: equal weights). ``metric``: the name of ``baseline`` (the production model's own score),
    ``realised`` (scored on ``realised_rows`` labelled predictions) and ``estimated`` (without labels).
    ``baseline_sample`` and ``realised_positives``: the counts the two scores were measured on (the version's
    test, else validation, split; the window's labelled rows, ``realised_positives`` of them positive), for
    their sampling error (None: not recorded). ``last_retrain``: when the last retrain started (None: never, by
    the loop); ``new_rows``: rows added to the pipeline's datasets since then. ``now``: the tick's time.
    """

    now: datetime
    drift: DriftReport | None = None
    importance: Mapping[str, float] | None = None
    metric: str | None = None
    baseline: float | None = None
    realised: float | None = None
    realised_rows: int = 0
    estimated: float | None = None
    last_retrain: datetime | None = None
    new_rows: int | None = None
    baseline_sample: MetricSample | None = None
    realised_positives: int | None = None


@dataclass(frozen=True)
class TriggerDecision:
    """One trigger's verdict: ``fire`` or not, ``reason`` in words, ``value`` against ``threshold`` where numeric.

    ``warning``: the trigger would have fired but the realised metric decides (drift while labelled);
    ``weights``: the drifted features and their share of the model's feature importance (drift only).
    """

    trigger: TriggerName
    fire: bool
    reason: str
    value: float | None = None
    threshold: float | None = None
    warning: bool = False
    weights: Mapping[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["weights"] = None if self.weights is None else dict(self.weights)
        return out


@dataclass(frozen=True)
class Cooldown:
    """Whether a retrain must wait (``active``) and why."""

    active: bool
    reason: str


def drift_importance(
    report: DriftReport, importance: Mapping[str, float] | None, drifted: Sequence[str] | None = None
) -> tuple[float, bool]:
    """The share of feature importance that drifted (the ``drifted`` features, default the report's), and
    whether the model's importance weighted it (False: equal weights, because there is none or it names none of
    the report's features). Negative importances (a permutation importance below chance) count as zero."""
    names = [feature.feature for feature in report.features]
    weights = {name: max(float((importance or {}).get(name, 0.0)), 0.0) for name in names}
    weighted = sum(weights.values()) > 0
    if not weighted:
        weights = dict.fromkeys(names, 1.0)
    total = sum(weights.values())
    chosen = report.drifted if drifted is None else drifted
    return (sum(weights[name] for name in chosen) / total if total else 0.0), weighted


def drifted_weights(
    report: DriftReport, importance: Mapping[str, float] | None, drifted: Sequence[str] | None = None
) -> dict[str, float]:
    """Each drifted feature's share of the feature importance (equal weights without one), largest first
    (the ``drifted`` features, default the report's)."""
    names = [feature.feature for feature in report.features]
    weights = {name: max(float((importance or {}).get(name, 0.0)), 0.0) for name in names}
    if sum(weights.values()) <= 0:
        weights = dict.fromkeys(names, 1.0)
    total = sum(weights.values()) or 1.0
    chosen = report.drifted if drifted is None else drifted
    shares = {name: round(weights[name] / total, 4) for name in chosen}
    return dict(sorted(shares.items(), key=lambda item: -item[1]))


def material_drift(report: DriftReport, min_psi: float | None) -> tuple[list[str], list[str]]:
    """The report's drifted features split by size: those whose PSI is at least ``min_psi`` (all of them when
    None), and those below it (a shift its test finds significant, but too small to matter)."""
    if min_psi is None:
        return list(report.drifted), []
    psi = {feature.feature: feature.psi for feature in report.features}
    small = [name for name in report.drifted if psi[name] < min_psi]  # a NaN PSI is not below: it counts
    return [name for name in report.drifted if name not in small], small


def labels_decide(signals: LoopSignals, config: MonitorConfig) -> bool:
    """Whether the realised metric decides and drift only warns: ``loop.drift_when_labelled`` is ``warn``, the
    metric trigger is on, and the signals carry a realised metric on at least ``MIN_LABELS`` labelled rows."""
    return (
        config.loop.drift_when_labelled == "warn"
        and config.loop.max_metric_drop is not None
        and signals.realised is not None
        and signals.realised_rows >= MIN_LABELS
    )


def drift_trigger(
    report: DriftReport | None,
    importance: Mapping[str, float] | None,
    config: MonitorConfig,
    *,
    min_rows: int = MIN_RETRAIN_ROWS,
    labelled_rows: int | None = None,
) -> TriggerDecision:
    """Fire when at least ``drift.min_drifted_features`` features drifted and they carry at least
    ``loop.min_drift_importance`` of the model's feature importance (equal weights without one), on at least
    ``min_rows`` current rows, with ``retrain.on_drift`` on. ``labelled_rows`` (the realised metric decides,
    :func:`labels_decide`): a drift that would fire is a warning instead.

    A feature counts only when its drift is both significant (its test flags it) and material: its PSI is at
    least ``loop.min_drift_psi`` (default 0.1, the usual "no real shift below" line; :func:`material_drift`). On
    a few thousand rows of autocorrelated traffic (days of weather, sessions of one user) a test that assumes
    independent rows flags shifts of a few hundredths of PSI that no model notices; the floor keeps them out."""
    threshold = config.loop.min_drift_importance
    if not config.retrain.on_drift:
        return TriggerDecision("drift", False, "retraining on drift is off (monitor.retrain.on_drift is false)")
    if report is None:
        return TriggerDecision("drift", False, "no drift report this tick")
    n_current = max((feature.n_current for feature in report.features), default=0)
    if n_current < min_rows:
        return TriggerDecision("drift", False, f"only {n_current} current rows; drift needs at least {min_rows}")
    drifted, small = material_drift(report, config.loop.min_drift_psi)
    share, weighted = drift_importance(report, importance, drifted)
    basis = "of the model's feature importance" if weighted else "of the features (no importance recorded)"
    count, needed = len(drifted), config.drift.min_drifted_features
    named = ", ".join(drifted) or "none"
    summary = f"{count} feature(s) drifted ({named}), {share:.0%} {basis}"
    if small:
        floor = f"{config.loop.min_drift_psi:g}"
        summary += f"; {len(small)} more below PSI {floor} not counted ({', '.join(small)}, monitor.loop.min_drift_psi)"
    weights = drifted_weights(report, importance, drifted) if drifted else None
    if count >= needed and share >= threshold:
        if labelled_rows is not None:
            why = (
                f"{summary} >= {threshold:.0%}, but {labelled_rows} labelled rows give a realised metric: a "
                "warning, the metric trigger decides (monitor.loop.drift_when_labelled: warn)"
            )
            return TriggerDecision("drift", False, why, share, threshold, warning=True, weights=weights)
        return TriggerDecision("drift", True, f"{summary} >= {threshold:.0%}", share, threshold, weights=weights)
    why = f"fewer than {needed} drifted" if count < needed else f"below {threshold:.0%}"
    return TriggerDecision("drift", False, f"{summary}: {why}", share, threshold, weights=weights)


def metric_trigger(signals: LoopSignals, config: MonitorConfig) -> TriggerDecision:
    """Fire when the realised metric (else the estimated one) fell more than ``loop.max_metric_drop`` below the
    production model's ``baseline``, in the metric's direction, and the drop is more than sampling error.

    The baseline is the version's own score on its held-out test split (else validation), fixed when it was
    trained: an unbiased estimate of what it should score on data like its training data. It is never a served
    window's score: the first window of a freshly retrained model may score above its test split by chance (or
    because its regime is easy), and a baseline taken from it (or the best window so far) would call the
    regression to the mean a drop. The realised and estimated figures are those of the production version's own
    windows only (:func:`loopline.run._loop_windows.window_signals`), so the windows the replaced version served
    never count against its successor.

    Both scores are estimates from finite samples (a baseline on a 200-row validation split is off by a few
    hundredths of AUC by chance alone), so with ``loop.metric_drop_significance`` set (default 0.00135) the drop
    must also be significant: ``se = sqrt(se_baseline^2 + se_window^2)``, each side's standard error from the
    counts it was measured on (:func:`loopline.run.policy._significance.standard_error`: Hanley-McNeil for a
    binary ROC AUC, binomial for accuracy-like metrics; the window's error for a realised metric only), and it
    fires when ``drop > max_metric_drop`` and ``drop / se >= z(1 - metric_drop_significance)`` (one-sided). A
    side without counts (a version trained before they were recorded) or a metric without a closed form
    (log_loss, rmse, ...) adds no error; with neither side known the margin alone decides, as it does with
    ``metric_drop_significance: null``. The default level is a control chart's (about three standard errors):
    the trigger is checked on every window a version serves against the same baseline, and a split of
    consecutive days is less varied than independent rows would be, so a per-check 0.01 fires spuriously.
    With splits and windows of a few thousand rows the standard error is small and the margin decides.
    """
    limit = config.loop.max_metric_drop
    if limit is None:
        return TriggerDecision("metric", False, "the metric trigger is off (monitor.loop.max_metric_drop is null)")
    source, value = ("realised", signals.realised) if signals.realised is not None else ("estimated", signals.estimated)
    metric = signals.metric or config.retrain.metric
    if value is None:
        return TriggerDecision("metric", False, f"no realised or estimated {metric} this tick")
    if signals.baseline is None:
        return TriggerDecision("metric", False, f"{source} {metric} {value:.4f}, but the model has no baseline")
    drop = signals.baseline - value if higher_is_better(metric) else value - signals.baseline
    rows = f" on {signals.realised_rows} labelled rows" if source == "realised" else ""
    summary = f"{source} {metric} {value:.4f}{rows} vs {signals.baseline:.4f} at training (drop {drop:+.4f}"
    if drop <= limit:
        return TriggerDecision("metric", False, f"{summary} <= {limit:g})", drop, limit)
    level = config.loop.metric_drop_significance
    test = None if level is None else drop_test(drop, _errors(signals, metric, signals.baseline, source, value), level)
    if test is None:
        return TriggerDecision("metric", True, f"{summary} > {limit:g})", drop, limit)
    z = f"z {test.z:.2f} on the sampling error of the {' and '.join(test.sides)} (se {test.se:.4f})"
    if test.significant:
        why = f"{summary} > {limit:g}, {z} >= {test.critical:.2f}: significant at {test.level:g})"
        return TriggerDecision("metric", True, why, drop, limit)
    why = (
        f"{summary} > {limit:g}, but {z} < {test.critical:.2f}: within sampling error at {test.level:g}, "
        "monitor.loop.metric_drop_significance)"
    )
    return TriggerDecision("metric", False, why, drop, limit)


def _errors(signals: LoopSignals, metric: str, baseline: float, source: str, value: float) -> dict[str, float | None]:
    """The standard errors of the ``baseline`` and (a realised metric's) window score, None where unknown."""
    window = None
    if source == "realised":
        sample = MetricSample(signals.realised_rows, signals.realised_positives)
        window = standard_error(metric, value, sample)
    return {"baseline": standard_error(metric, baseline, signals.baseline_sample), "window": window}


def schedule_trigger(last_retrain: datetime | None, now: datetime, config: MonitorConfig) -> TriggerDecision:
    """Fire when ``loop.retrain_every`` passed since the last retrain (or there was none)."""
    every = config.loop.retrain_every_td
    if every is None:
        return TriggerDecision("schedule", False, "no scheduled retrain (monitor.loop.retrain_every is not set)")
    if last_retrain is None:
        return TriggerDecision("schedule", True, f"retrain every {config.loop.retrain_every}; none recorded yet")
    age = now - last_retrain
    hours, threshold = age.total_seconds() / 3600, every.total_seconds() / 3600
    summary = f"last retrain {hours:.1f}h ago; retrain every {config.loop.retrain_every}"
    return TriggerDecision("schedule", age >= every, summary, hours, threshold)


def volume_trigger(new_rows: int | None, config: MonitorConfig) -> TriggerDecision:
    """Fire when at least ``loop.min_new_rows`` rows were added to the pipeline's datasets since the last retrain."""
    needed = config.loop.min_new_rows
    if needed is None:
        return TriggerDecision("volume", False, "no volume trigger (monitor.loop.min_new_rows is not set)")
    if new_rows is None:
        return TriggerDecision("volume", False, "the pipeline ingests no dataset to count new rows in")
    summary = f"{new_rows} new rows since the last retrain ({needed} needed)"
    return TriggerDecision("volume", new_rows >= needed, summary, float(new_rows), float(needed))


def evaluate_triggers(signals: LoopSignals, config: MonitorConfig) -> tuple[TriggerDecision, ...]:
    """Every trigger's decision for one tick, in a fixed order: drift, metric, schedule, volume. While the
    realised metric decides (:func:`labels_decide`) a drift that would fire is a ``warning`` decision."""
    labelled = signals.realised_rows if labels_decide(signals, config) else None
    return (
        drift_trigger(signals.drift, signals.importance, config, labelled_rows=labelled),
        metric_trigger(signals, config),
        schedule_trigger(signals.last_retrain, signals.now, config),
        volume_trigger(signals.new_rows, config),
    )


def cooldown(last_retrain: datetime | None, now: datetime, loop: LoopConfig, *, force: bool = False) -> Cooldown:
    """A retrain waits until ``loop.cooldown`` passed since the last one started, unless ``force``."""
    if last_retrain is None:
        return Cooldown(False, "no earlier retrain")
    age, limit = now - last_retrain, loop.cooldown_td
    summary = f"last retrain {age.total_seconds() / 3600:.2f}h ago, cooldown {loop.cooldown}"
    if age >= limit:
        return Cooldown(False, f"{summary}: passed")
    if force:
        return Cooldown(False, f"{summary}: forced")
    return Cooldown(True, f"{summary}: wait until {(last_retrain + limit).isoformat(timespec='seconds')}")
