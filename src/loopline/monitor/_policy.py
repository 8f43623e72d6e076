"""Decisions that close the loop: retrain on drift, and promote a challenger only when it wins."""

from __future__ import annotations

import math
from dataclasses import dataclass

from loopline.core.config import DriftConfig, RetrainConfig
from loopline.core.errors import DataError, did_you_mean
from loopline.monitor._drift import DriftReport

MIN_RETRAIN_ROWS = 100
"""Current rows below which drift is too noisy to trigger a retrain."""


@dataclass(frozen=True)
class RetrainDecision:
    """Whether to retrain, and why in words."""

    retrain: bool
    reason: str


@dataclass(frozen=True)
class GateDecision:
    """Whether to promote the challenger; ``champion`` is NaN when there was none."""

    promote: bool
    reason: str
    champion: float
    challenger: float


def decide_retrain(
    report: DriftReport, config: RetrainConfig, drift: DriftConfig, *, min_rows: int = MIN_RETRAIN_ROWS
) -> RetrainDecision:
    """Retrain when ``config.on_drift`` is on and at least ``drift.min_drifted_features`` features drifted.

    Never retrains on fewer than ``min_rows`` current rows: drift on a handful of rows is noise.
    """
    if not config.on_drift:
        return RetrainDecision(False, "retraining on drift is off (retrain.on_drift is false)")
    n_current = max((feature.n_current for feature in report.features), default=0)
    if n_current < min_rows:
        return RetrainDecision(False, f"only {n_current} current rows; a retrain decision needs at least {min_rows}")
    count, total, needed = len(report.drifted), len(report.features), drift.min_drifted_features
    if count >= needed:
        named = ", ".join(_describe(report, name) for name in report.drifted)
        return RetrainDecision(True, f"{count} of {total} features drifted ({needed} needed): {named}")
    return RetrainDecision(False, f"{count} of {total} features drifted; {needed} needed to retrain")


def _describe(report: DriftReport, name: str) -> str:
    feature = next(feature for feature in report.features if feature.feature == name)
    return f"{name} (PSI {feature.psi:.3f})"


def gate(
    champion: dict[str, float] | None,
    challenger: dict[str, float],
    *,
    metric: str,
    min_improvement: float = 0.0,
    higher_is_better: bool = True,
) -> GateDecision:
    """Promote when the challenger beats the champion on ``metric`` by more than ``min_improvement``.

    The gain is ``challenger - champion`` (``champion - challenger`` when lower is better); a tie
    keeps the champion. With no champion (``None``) a challenger with a real number is promoted; a
    NaN challenger never is. Raises DataError naming the metric when either side lacks it.
    """
    new = _metric(challenger, metric, "challenger")
    if champion is None:
        return _no_champion(new, metric)
    old = _metric(champion, metric, "champion")
    if math.isnan(new):
        return GateDecision(False, f"challenger {metric} is NaN; keeping the champion", old, new)
    if math.isnan(old):
        return GateDecision(True, f"champion {metric} is NaN; promoting the challenger ({new:.4f})", old, new)
    gain = new - old if higher_is_better else old - new
    direction = "higher" if higher_is_better else "lower"
    summary = f"{metric} challenger {new:.4f} vs champion {old:.4f} ({direction} is better, gain {gain:+.4f}"
    if gain > min_improvement:
        return GateDecision(True, f"{summary} > {min_improvement:g}): promote", old, new)
    return GateDecision(False, f"{summary} <= {min_improvement:g}): keep the champion", old, new)


def _no_champion(new: float, metric: str) -> GateDecision:
    if math.isnan(new):
        return GateDecision(False, f"no champion, but challenger {metric} is NaN", math.nan, new)
    return GateDecision(True, f"no champion yet; promote the challenger ({metric} {new:.4f})", math.nan, new)


def _metric(metrics: dict[str, float], metric: str, side: str) -> float:
    if metric not in metrics:
        available = ", ".join(sorted(metrics)) or "none"
        suggestion = did_you_mean(metric, metrics)
        raise DataError(
            f"the {side} has no metric {metric!r} (available: {available}).",
            column=metric,
            hint=suggestion or "Set retrain.metric to one of the available metrics.",
        )
    return float(metrics[metric])
