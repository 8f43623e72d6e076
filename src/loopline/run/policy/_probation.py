"""Probation: roll a newly promoted version back when the previous one does better."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

from loopline.bundle import check_servable
from loopline.core.config import ProbationConfig
from loopline.core.errors import DataError
from loopline.core.records import (
    ProbationDecision,
    ProbationEvidence,
)
from loopline.run.policy._rules import higher_is_better

if TYPE_CHECKING:
    from loopline.store import Store


# -- probation ------------------------------------------------------------------------------------


def decide_probation(
    promoted: ProbationEvidence, previous: ProbationEvidence, config: ProbationConfig
) -> ProbationDecision:
    """Whether the newly ``promoted`` version should give way to the ``previous`` one after its probation.

    Rollback when the previous version scores better on the probation window by more than ``config.margin``
    (in the metric's direction; realised or estimated scores, the reason says which), or when the promoted
    version's error rate exceeds the previous one's by more than ``config.max_error_rate_increase``. No
    decision on fewer than ``config.min_rows`` rows of either. DataError when the two were measured with
    different metrics.
    """
    if promoted.metric != previous.metric:
        raise DataError(
            f"probation compares v{promoted.version} on {promoted.metric!r} with v{previous.version} on "
            f"{previous.metric!r}.",
            hint="Measure both versions with the same metric on the same probation window.",
        )
    metric, margin = promoted.metric, config.margin

    def decided(rollback: bool, reason: str, loss: float = math.nan) -> ProbationDecision:
        return ProbationDecision(rollback, reason, promoted.version, previous.version, metric, loss, margin)

    rows = min(promoted.rows, previous.rows)
    if rows < config.min_rows:
        return decided(False, f"only {rows} probation rows; a rollback decision needs at least {config.min_rows}")
    errors = promoted.error_rate - previous.error_rate
    if errors > config.max_error_rate_increase:
        return decided(
            True,
            f"v{promoted.version} fails {promoted.error_rate:.1%} of requests vs {previous.error_rate:.1%} for "
            f"v{previous.version} (+{errors:.1%} > {config.max_error_rate_increase:.1%}): roll back",
        )
    if math.isnan(promoted.score) or math.isnan(previous.score):
        return decided(False, f"{metric} is NaN on the probation window; no rollback on the score")
    higher = higher_is_better(metric)
    loss = previous.score - promoted.score if higher else promoted.score - previous.score
    how = "estimated" if promoted.estimated or previous.estimated else "realised"
    summary = (
        f"{how} {metric} on {rows} probation rows: v{promoted.version} {promoted.score:.4f} vs previous "
        f"v{previous.version} {previous.score:.4f} (loss {loss:+.4f}"
    )
    if loss > margin:
        return decided(True, f"{summary} > margin {margin:g}): roll back", loss)
    return decided(False, f"{summary} <= margin {margin:g}): keep v{promoted.version}", loss)


def probation(
    store: Store, model: str, promoted: ProbationEvidence, previous: ProbationEvidence, config: ProbationConfig
) -> ProbationDecision:
    """:func:`decide_probation`, then the store's rollback (its audit trail keeps the reason) when it says so.

    Only while ``promoted`` is still the production version of ``model``: otherwise nothing changes and the
    decision says why. The store rolls back to the version that was production before (verified servable
    first); ``rolled_back_to`` names it.
    """
    decision = decide_probation(promoted, previous, config)
    if not decision.rollback:
        return decision
    production = store.models.production(model)
    if production is None or production.version != promoted.version:
        now = f"v{production.version}" if production else "no version"
        why = f"{decision.reason}; but {now} is in production now, not v{promoted.version}: nothing rolled back"
        return dataclasses.replace(decision, rollback=False, reason=why)
    back = store.models.with_check(check_servable).rollback(model, reason=f"probation: {decision.reason}")
    return dataclasses.replace(decision, rolled_back_to=back.version)
