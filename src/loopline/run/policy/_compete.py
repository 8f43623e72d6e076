"""The whole repository competes: champion, challenger and retained versions scored on one window."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import polars as pl

from loopline.bundle import check_servable
from loopline.core.errors import LooplineError
from loopline.core.records import (
    Contender,
    GateDecision,
)
from loopline.run.policy._gate import with_suspicion
from loopline.run.policy._rules import Promotion, PromotionRule, _decide, gated, higher_is_better, suspicion
from loopline.train import ModelBundle

if TYPE_CHECKING:
    from loopline.store import ModelVersion, Store


# -- the repository competes -------------------------------------------------------------------


def compete(
    store: Store,
    model: str,
    challenger: ModelVersion,
    holdout: pl.DataFrame | None,
    rule: PromotionRule,
    *,
    run_id: str,
    keep: int = 5,
) -> Promotion:
    """Which version of ``model`` should be production after a retrain; decides, changes nothing.

    The production version (the champion), ``challenger`` (the retrain's best new candidate) and up to
    ``keep`` earlier versions (candidates and archived ones of earlier runs, newest first) are scored on the
    same ``holdout`` (the newest labelled window; each score is recorded with its version under
    ``holdout_<run>``). A version that cannot be served or cannot score the holdout sits out, with the reason.
    The best of them, if it is not the champion, must pass :func:`gate` against it with the rule's metric and
    ``min_improvement``; a suspicious winner is refused unless the rule allows it. Without a champion, or
    without holdout rows, the challenger alone is judged as :func:`promote` would. The reason and every
    contender's score are in the returned :class:`Promotion`'s :class:`~loopline.core.records.GateDecision`.
    """
    champion = store.models.production(model)
    if rule.mode == "never" or champion is None or holdout is None or holdout.height == 0:
        decision = _decide(store, model, challenger, holdout, rule, run_id)
        return dataclasses.replace(decision, winner=challenger.version if decision.promote else None)
    if champion.version == challenger.version:
        return Promotion(False, f"version {challenger.version} is already in production")
    entrants = [(champion, "champion"), (challenger, "challenger")]
    entrants += [(v, "earlier") for v in _earlier(store, model, (champion.version, challenger.version), run_id, keep)]
    key = f"holdout_{run_id[:8]}"
    scores: dict[int, dict[str, float]] = {}
    scored = [_score(store, model, version, role, holdout, key, rule.metric, scores) for version, role in entrants]
    contenders = _ranked(scored, rule.metric)
    versions = {version.version: version for version, _ in entrants}
    return _judge(store, model, versions, contenders, rule, holdout, scores, run_id)


def _earlier(store: Store, model: str, exclude: tuple[int, ...], run_id: str, keep: int) -> list[ModelVersion]:
    """Up to ``keep`` versions of earlier runs that may come back: candidates and archived, newest first."""
    versions = [
        v
        for v in reversed(store.models.list(model))
        if v.stage in ("candidate", "archived") and v.version not in exclude and v.run_id != run_id
    ]
    return versions[:keep]


def _score(
    store: Store,
    model: str,
    version: ModelVersion,
    role: str,
    holdout: pl.DataFrame,
    key: str,
    metric: str,
    scores_by_version: dict[int, dict[str, float]],
) -> Contender:
    """``version`` scored on ``holdout`` (recorded under ``key`` and in ``scores_by_version``), or why it
    could not be."""
    try:
        data = store.artifacts.get_bytes(version.bundle_digest)
        check_servable(data)
        scores = ModelBundle.from_bytes(data).evaluate(holdout)
    except LooplineError as exc:
        return Contender(version.version, role, None, note=f"sits out: {exc.message}")
    store.models.record_evaluation(model, version.version, key, scores)
    scores_by_version[version.version] = scores
    value = scores.get(metric)
    if value is None or math.isnan(float(value)):
        return Contender(version.version, role, None, note=f"has no {metric} on the holdout")
    return Contender(version.version, role, float(value))


def _ranked(contenders: Sequence[Contender], metric: str) -> tuple[Contender, ...]:
    """Best first in the metric's direction (ties: champion, challenger, then newer versions); unscored last."""
    sign = -1.0 if higher_is_better(metric) else 1.0
    scored = sorted((c for c in contenders if c.score is not None), key=lambda c: sign * (c.score or 0.0))
    ranked = [dataclasses.replace(c, rank=rank) for rank, c in enumerate(scored, start=1)]
    return (*ranked, *(c for c in contenders if c.score is None))


def _judge(
    store: Store,
    model: str,
    versions: Mapping[int, ModelVersion],
    contenders: tuple[Contender, ...],
    rule: PromotionRule,
    holdout: pl.DataFrame,
    scores: Mapping[int, Mapping[str, float]],
    run_id: str,
) -> Promotion:
    """The deployment gate between the champion and the best other contender (see :func:`compete`)."""
    champion = next(c for c in contenders if c.role == "champion")
    others = [c for c in contenders if c.role != "champion" and c.score is not None]
    field = _field(contenders)
    if not others:
        reason = f"no other version could score the holdout ({field}); keep the champion"
        return Promotion(False, reason, _no_gate(rule, champion, contenders, reason))
    best = others[0]
    if champion.rank == 1:
        lead = f"champion v{champion.version} scores best on the holdout"
    else:
        lead = f"v{best.version} ({best.role}) scores best on the holdout"
    decided = gated(
        store,
        model,
        versions[best.version],
        versions[champion.version],
        holdout,
        rule,
        run_id,
        {
            best.version: scores[best.version],
            # sat out or unscored on the metric: nothing to beat
            champion.version: {rule.metric: math.nan, **scores.get(champion.version, {})},
        },
        lead=f"{lead} ({field}); ",
    )
    if decided.gate is None:
        return decided
    promote, reason = _unless_suspicious(versions[best.version], decided.promote, decided.reason, rule)
    verdict = decided.gate.verdict
    if decided.promote and not promote and verdict is not None:  # refused as suspicious: a reason of its own
        verdict = with_suspicion(store, model, verdict, reason.rpartition("; but ")[2])
    final = dataclasses.replace(decided.gate, promote=promote, reason=reason, contenders=contenders, verdict=verdict)
    return Promotion(promote, reason, final, best.version if promote else None)


def _unless_suspicious(winner: ModelVersion, promote: bool, reason: str, rule: PromotionRule) -> tuple[bool, str]:
    """The gate's verdict on ``winner``, refused when it is suspicious and the rule does not allow it."""
    if not promote:
        return promote, reason
    findings = winner.typed_config.findings
    refused = suspicion(winner.version, findings, allowed=False, key=rule.allow_key)
    if refused is not None and not rule.allow_suspicious:
        return False, f"{reason}; but {refused}"
    allowed = suspicion(winner.version, findings, allowed=True, key=rule.allow_key)
    return True, reason if allowed is None else f"{reason}; {allowed}"


def _field(contenders: Sequence[Contender]) -> str:
    return ", ".join(
        f"v{c.version} {c.role} {c.score:.4f}" if c.score is not None else f"v{c.version} {c.role} {c.note}"
        for c in contenders
    )


def _no_gate(rule: PromotionRule, champion: Contender, contenders: tuple[Contender, ...], reason: str) -> GateDecision:
    score = math.nan if champion.score is None else champion.score
    return GateDecision(
        False, reason, rule.metric, score, math.nan, rule.min_improvement, champion.version, None, contenders
    )
