"""The sampling error of a metric, and whether a drop of it is more than sampling error.

A score measured on n labelled rows is an estimate; two scores of the same model on two samples of the same
population differ by chance. :func:`standard_error` gives the standard error a score has from the counts it
was measured on (:class:`MetricSample`), where a closed form exists:

- ``roc_auc`` (binary): Hanley & McNeil (1982), from the AUC and the positive and negative counts;
- ``accuracy``, ``f1_macro``: binomial, ``sqrt(p (1 - p) / rows)``;
- ``f1``, ``pr_auc`` (binary): binomial over the positives, ``sqrt(p (1 - p) / positives)`` (both are
  dominated by how the positives are ranked or found);
- every other metric (log_loss, ece, rmse, mae, mape, r2, a multi-class AUC): None, no closed form from counts.

:func:`drop_test` compares a baseline and a current score: the drop's standard error is the root of the sum of
the two sides' variances (the samples are independent), its z the drop over that, significant when z is at
least the one-sided normal quantile of ``1 - level``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

BINOMIAL_ROWS = ("accuracy", "f1_macro")
"""Metrics whose sampling error is binomial over the labelled rows."""

BINOMIAL_POSITIVES = ("f1", "pr_auc")
"""Binary metrics whose sampling error is binomial over the positive rows."""


@dataclass(frozen=True)
class MetricSample:
    """The labelled rows a score was measured on: ``rows``, and ``positives`` among them (a binary model's
    positive class; None: not counted, or not a binary model)."""

    rows: int
    positives: int | None = None

    @property
    def negatives(self) -> int | None:
        return None if self.positives is None else self.rows - self.positives


@dataclass(frozen=True)
class DropTest:
    """A drop against its sampling error: ``se`` of the drop, ``z`` = drop / se, ``critical`` the one-sided z
    it must reach at ``level``, ``sides`` the scores whose error is in ``se`` (``baseline``, ``window``)."""

    drop: float
    se: float
    z: float
    critical: float
    level: float
    sides: tuple[str, ...]

    @property
    def significant(self) -> bool:
        return self.z >= self.critical


def standard_error(metric: str, value: float, sample: MetricSample | None) -> float | None:
    """The standard error of ``metric`` scored ``value`` on ``sample`` (see the module docstring); None when the
    metric has no closed form, the counts it needs are missing, or the value is outside [0, 1]."""
    if sample is None or sample.rows <= 0 or not 0.0 <= value <= 1.0:
        return None
    if metric in BINOMIAL_ROWS:
        return _binomial(value, sample.rows)
    positives, negatives = sample.positives, sample.negatives
    if positives is None or negatives is None or positives <= 0 or negatives <= 0:
        return None
    if metric in BINOMIAL_POSITIVES:
        return _binomial(value, positives)
    if metric == "roc_auc":
        return hanley_mcneil(value, positives, negatives)
    return None


def hanley_mcneil(auc: float, positives: int, negatives: int) -> float:
    """The standard error of an ROC AUC of ``auc`` on ``positives`` and ``negatives`` (Hanley & McNeil 1982)."""
    q1, q2 = auc / (2.0 - auc), 2.0 * auc * auc / (1.0 + auc)
    square = auc * auc
    variance = auc * (1.0 - auc) + (positives - 1) * (q1 - square) + (negatives - 1) * (q2 - square)
    return _floored(variance / (positives * negatives), positives + negatives)


def drop_test(drop: float, errors: dict[str, float | None], level: float) -> DropTest | None:
    """The one-sided test of ``drop`` against the standard errors of its two scores (``{"baseline": se,
    "window": se}``; None: unknown, left out); None when neither is known."""
    known = {side: se for side, se in errors.items() if se is not None}
    if not known:
        return None
    se = math.sqrt(sum(value * value for value in known.values()))
    z = drop / se if se > 0 else (math.inf if drop > 0 else -math.inf if drop < 0 else 0.0)
    critical = NormalDist().inv_cdf(1.0 - level)
    return DropTest(drop, se, z, critical, level, tuple(known))


def _binomial(p: float, n: int) -> float:
    return _floored(p * (1.0 - p) / n, n)


def _floored(variance: float, n: int) -> float:
    """The root of ``variance``, at least that of a proportion one row away from 0 or 1 on ``n`` rows: a
    perfect score (variance 0) on a few rows is not certain."""
    floor = (1.0 / n) * (1.0 - 1.0 / n) / n if n > 1 else 0.25
    return math.sqrt(max(variance, floor))
