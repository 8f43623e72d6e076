"""From test results to verdicts: running a feature's test, the multiple-testing correction, the status.

A p-value test drifts when its p-value, corrected across every p-value of the report (Holm by default), is
below its alpha; a distance drifts above its threshold; a sample below the test's ``min_values``, or a test
that could not run soundly, has "not enough data".
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from loopline.core.config import AUTO, DriftConfig
from loopline.monitor._auto import auto_test
from loopline.monitor._drift_tests import DRIFT_TESTS, DriftTest, DriftTestResult
from loopline.monitor._report import DRIFT, NO_DRIFT, NOT_ENOUGH_DATA, FeatureDrift, Status
from loopline.monitor._summary import Summary


@dataclass(frozen=True)
class Choice:
    """A feature's configured test: a registered name (``auto`` included), the test (None for auto), the
    config key that named it and the threshold override."""

    name: str
    test: DriftTest | None
    key: str
    threshold: float | None = None


AUTO_CHOICE = Choice(AUTO, None, "")


@dataclass(frozen=True)
class Outcome:
    """One test's outcome: the test that ran, its result (None: not enough data), the threshold or alpha it is
    judged by, why it did not run, and its corrected p-value (once the report's family is known)."""

    name: str
    result: DriftTestResult | None
    threshold: float | None
    short: str = ""
    p_adjusted: float | None = None

    @property
    def p_value(self) -> float | None:
        return None if self.result is None else self.result.p_value


def run_test(choice: Choice, ref: Summary, cur: Summary, config: DriftConfig) -> Outcome:
    """Run the configured test (``auto``: the one :func:`auto_test` picks), unless a side is too small."""
    test_name, test = choice.name, choice.test
    if test is None:
        test_name, ref, cur = auto_test(ref, cur)
        test = DRIFT_TESTS.get(test_name)
    smaller = min(ref.count, cur.count)
    if smaller < test.min_values:
        side = "reference" if ref.count == smaller else "current"
        short = f"{smaller} non-null {side} values; {test_name} needs {test.min_values}"
        return Outcome(test_name, None, _threshold(choice, test_name, None, config), short)
    result = test.compare_summaries(ref, cur)
    threshold = _threshold(choice, test_name, result, config)
    return Outcome(test_name, None if result.skipped else result, threshold, result.skipped)


def _threshold(choice: Choice, name: str, result: DriftTestResult | None, config: DriftConfig) -> float | None:
    if choice.threshold is not None:
        return choice.threshold
    if name == "psi":
        return config.psi_threshold
    if result is None:
        return None
    return config.p_value if result.p_value is not None else result.threshold


def with_corrected(outcomes: list[Outcome], method: str) -> list[Outcome]:
    """The outcomes with their p-values corrected across all of them (:func:`correct`)."""
    tested = [index for index, outcome in enumerate(outcomes) if outcome.p_value is not None]
    raw = np.array([outcomes[index].p_value for index in tested], dtype=np.float64)
    corrected = list(outcomes)
    for index, value in zip(tested, correct(raw, method).tolist(), strict=True):
        corrected[index] = replace(outcomes[index], p_adjusted=float(value))
    return corrected


def correct(p_values: np.ndarray, method: str) -> np.ndarray:
    """p-values adjusted for multiple testing: Holm's step-down, Bonferroni, or none (as given).

    Holm controls the family-wise error rate like Bonferroni, with more power: the k-th smallest of m
    p-values is multiplied by (m - k + 1), then made monotone; capped at 1.
    """
    m = p_values.size
    if m == 0 or method == "none":
        return p_values.astype(np.float64)
    if method == "bonferroni":
        return np.asarray(np.minimum(1.0, p_values * m), dtype=np.float64)
    order = np.argsort(p_values, kind="stable")
    stepped = np.minimum(1.0, np.maximum.accumulate(p_values[order] * (m - np.arange(m))))
    adjusted = np.empty(m)
    adjusted[order] = stepped
    return adjusted


def judge(outcome: Outcome, config: DriftConfig) -> tuple[Status, str]:
    """One outcome's status and the words for it."""
    result = outcome.result
    if result is None:
        return NOT_ENOUGH_DATA, f"not enough data ({outcome.short})"
    drifted, words = drift_verdict(
        0.0, outcome.p_adjusted, config, statistic=result.statistic, threshold=outcome.threshold
    )
    if outcome.p_adjusted is not None and outcome.p_adjusted != result.p_value:
        words = f"{words} ({config.correction}-adjusted; raw {result.p_value:.2g})"
    return (DRIFT if drifted else NO_DRIFT), f"{outcome.name}: {words}"


def verdict(feature: FeatureDrift, main: Outcome, missing: Outcome | None, config: DriftConfig) -> FeatureDrift:
    """``feature`` with its status, corrected p-value and reason; a drifted missing share is drift too."""
    status, words = judge(main, config)
    reasons = [words]
    missing_drifted = False
    if missing is not None:
        missing_status, missing_words = judge(missing, config)
        missing_drifted = missing_status == DRIFT
        reasons.append(f"missing share {feature.missing_reference:.1%} -> {feature.missing_current:.1%}")
        reasons.append(f"missing share {missing_words}")
        status = DRIFT if missing_drifted else status
    if feature.reason:
        reasons.append(feature.reason)
    return replace(
        feature,
        status=status,
        drifted=status == DRIFT,
        p_value_adjusted=main.p_adjusted,
        missing_drifted=missing_drifted,
        reason="; ".join(reasons),
    )


def drift_verdict(
    psi_value: float,
    p_value: float | None,
    config: DriftConfig,
    *,
    statistic: float = 0.0,
    threshold: float | None = None,
) -> tuple[bool, str]:
    """Whether one test result is drift, and why: the test's own rule.

    A p-value test (``p_value`` not None) drifts when ``p_value`` (already corrected, in a report) is below
    ``config.p_value``, or below ``threshold`` when one is given; a distance drifts when ``statistic``
    exceeds ``threshold`` (never without one). ``psi_value`` is only quoted: PSI no longer gatekeeps.
    """
    del psi_value
    if p_value is not None:
        alpha = config.p_value if threshold is None else threshold
        if p_value < alpha:
            return True, f"p-value {p_value:.2g} < {alpha:g}"
        return False, f"p-value {p_value:.2g} >= {alpha:g}"
    if threshold is None:
        return False, f"distance {statistic:.3g} (the test is a distance without a threshold)"
    if statistic > threshold:
        return True, f"distance {statistic:.3g} > {threshold:g}"
    return False, f"distance {statistic:.3g} <= {threshold:g}"
