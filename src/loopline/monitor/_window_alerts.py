"""Alert rules over a window: which of ``monitor.alerts`` fire, with the value that fired them."""

from __future__ import annotations

from collections.abc import Sequence

from loopline.core.config import ALERT_FEATURE_METRICS, AlertRule
from loopline.core.errors import ConfigError, did_you_mean
from loopline.monitor._window_records import AlertFiring, WindowResult


def check_alert_features(rules: Sequence[AlertRule], features: Sequence[str]) -> None:
    """Raise ConfigError (with a did-you-mean) for a ``<figure>.<feature>`` rule naming no monitored feature."""
    for index, rule in enumerate(rules):
        figure, dot, feature = rule.when.partition(".")
        if dot and figure in ALERT_FEATURE_METRICS and feature not in features:
            key = f"monitor.alerts.{index}.when"
            raise ConfigError(
                f"{key}: alert on {rule.when!r} names {feature!r}, which is not a feature of the model.",
                key=key,
                hint=did_you_mean(feature, features) or f"Use one of the features: {', '.join(features)}.",
            )


def window_value(window: WindowResult, when: str) -> float | None:
    """The figure ``when`` of ``window`` (None when the window cannot tell: no rows, no drift, errors unknown)."""
    health = window.health
    figure, dot, feature = when.partition(".")
    if not dot:
        if figure == "drifted_features":
            return None if window.drifted_features is None else float(window.drifted_features)
        if figure == "rows":
            return float(health.rows)
        value = getattr(health, figure)
        return None if value is None else float(value)
    if figure == "drift":
        if window.drift is None:
            return None
        return next((f.psi for f in window.drift.features if f.feature == feature), None)
    if health.rows == 0:
        return None
    found = health.feature(feature)
    return None if found is None else getattr(found, figure)


def fired_alerts(window: WindowResult, rules: Sequence[AlertRule]) -> list[AlertFiring]:
    """The rules ``window`` breaks, in rule order; a figure the window cannot tell fires nothing."""
    fired = []
    for rule in rules:
        value = window_value(window, rule.when)
        if value is None:
            continue
        if rule.above is not None and value > rule.above:
            fired.append(AlertFiring(rule.label, rule.when, "above", rule.above, value))
        elif rule.below is not None and value < rule.below:
            fired.append(AlertFiring(rule.label, rule.when, "below", rule.below, value))
    return fired
