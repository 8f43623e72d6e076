"""The loop policy's rules: the metric direction, ranking, the gate, the retrain decision, promotion."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import polars as pl

from loopline.bundle import check_servable
from loopline.core.config import DriftConfig, GateConfig, RetrainConfig
from loopline.core.errors import DataError, did_you_mean
from loopline.core.records import (
    Finding,
    GateDecision,
    GateVerdict,
    LeaderboardRow,
    RetrainDecision,
    Timings,
    Training,
    VersionConfig,
)
from loopline.run.policy._gate import run_gate, with_suspicion
from loopline.train import METRIC_DIRECTION, ModelBundle

if TYPE_CHECKING:
    from loopline.monitor import DriftReport
    from loopline.store import ModelVersion, Store


MIN_RETRAIN_ROWS = 100
"""Current rows below which drift is too noisy to trigger a retrain."""

WINDOW_PARAMS = ("start", "valid_from", "test_from", "end")
"""The params a pipeline declares to be retrained on a moving window (see :func:`retrain_params`)."""

PromoteMode = Literal["if_better", "always", "never"]


def higher_is_better(metric: str) -> bool:
    """The direction of ``metric`` (the train stage's definition; unknown metrics: higher is better)."""
    return METRIC_DIRECTION.get(metric, True)


# -- ranking ------------------------------------------------------------------------------------


class Rankable(Protocol):
    """What a leaderboard row is made from (a ``ModelVersion`` is one)."""

    @property
    def version(self) -> int: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def metrics(self) -> dict[str, Any]: ...
    @property
    def timings(self) -> dict[str, Any]: ...
    @property
    def config(self) -> dict[str, Any]: ...


def rank_candidates(
    candidates: Sequence[Rankable], metric: str, *, split: str = "valid", promoted: int | None = None
) -> list[LeaderboardRow]:
    """One row per version, best first by ``metric`` on ``split`` (see the module docstring; a version
    listed twice counts once); ``promoted`` marks the version that became production."""
    unique: dict[int, Rankable] = {}
    for candidate in candidates:
        unique.setdefault(candidate.version, candidate)
    sign = -1.0 if higher_is_better(metric) else 1.0
    scored = [(c, metric_value(c.metrics, split, metric)) for c in unique.values()]
    ranked = sorted(((c, v) for c, v in scored if v is not None), key=lambda item: sign * item[1])  # stable
    rows = [_row(c, metric, score, rank, promoted) for rank, (c, score) in enumerate(ranked, start=1)]
    return rows + [_row(c, metric, None, None, promoted) for c, v in scored if v is None]


def _row(
    candidate: Rankable, metric: str, score: float | None, rank: int | None, promoted: int | None
) -> LeaderboardRow:
    timings = Timings.from_dict(candidate.timings)
    training = timings.training or Training()
    config = VersionConfig.from_dict(candidate.config)
    return LeaderboardRow(
        rank=rank,
        version=candidate.version,
        algorithm=candidate.algorithm,
        score=score,
        valid=metric_value(candidate.metrics, "valid", metric),
        test=metric_value(candidate.metrics, "test", metric),
        cv=metric_value(candidate.metrics, "cv", metric),
        cv_std=config.cv_std(metric),
        fit_s=timings.fit_s,
        stopped=training.stopped,
        iterations=training.iterations,
        best=rank == 1,
        promoted=promoted is not None and candidate.version == promoted,
        findings=config.findings,
    )


def metric_value(metrics: Mapping[str, Any], split: str, metric: str) -> float | None:
    """``metrics[split][metric]`` as a float, None where absent."""
    value = (metrics.get(split) or {}).get(metric)
    return None if value is None else float(value)


# -- the gate -----------------------------------------------------------------------------------


def gate(
    champion: Mapping[str, float] | None,
    challenger: Mapping[str, float],
    *,
    metric: str,
    min_improvement: float = 0.0,
    higher_is_better: bool | None = None,
    metric_key: str = "monitor.retrain.metric",
) -> GateDecision:
    """Promote when the challenger beats the champion on ``metric`` by more than ``min_improvement``.

    The gain is ``challenger - champion`` (``champion - challenger`` when lower is better; by default the
    metric's own direction); a tie keeps the champion. With no champion (``None``) a challenger with a
    real number is promoted; a NaN challenger never is. DataError when either side lacks the metric,
    its hint naming ``metric_key``, the config key the metric came from.
    """
    higher = _direction(metric) if higher_is_better is None else higher_is_better
    new = _gate_metric(challenger, metric, "challenger", metric_key)

    def decided(promote: bool, reason: str, old: float) -> GateDecision:
        return GateDecision(promote, reason, metric, old, new, min_improvement)

    if champion is None:
        if math.isnan(new):
            return decided(False, f"no champion, but challenger {metric} is NaN", math.nan)
        return decided(True, f"no champion yet; promote the challenger ({metric} {new:.4f})", math.nan)
    old = _gate_metric(champion, metric, "champion", metric_key)
    if math.isnan(new):
        return decided(False, f"challenger {metric} is NaN; keeping the champion", old)
    if math.isnan(old):
        return decided(True, f"champion {metric} is NaN; promoting the challenger ({new:.4f})", old)
    gain = new - old if higher else old - new
    direction = "higher" if higher else "lower"
    summary = f"{metric} challenger {new:.4f} vs champion {old:.4f} ({direction} is better, gain {gain:+.4f}"
    if gain > min_improvement:
        return decided(True, f"{summary} > {min_improvement:g}): promote", old)
    return decided(False, f"{summary} <= {min_improvement:g}): keep the champion", old)


def _direction(metric: str) -> bool:
    return higher_is_better(metric)


def _gate_metric(metrics: Mapping[str, float], metric: str, side: str, key: str) -> float:
    if metric not in metrics:
        available = ", ".join(sorted(metrics)) or "none"
        suggestion = did_you_mean(metric, metrics)
        raise DataError(
            f"the {side} has no metric {metric!r} (available: {available}).",
            column=metric,
            hint=f"{suggestion + ' ' if suggestion else ''}Set {key} to one of the available metrics.",
        )
    return float(metrics[metric])


# -- the retrain decision -----------------------------------------------------------------------


def decide_retrain(
    report: DriftReport, config: RetrainConfig, drift: DriftConfig, *, min_rows: int = MIN_RETRAIN_ROWS
) -> RetrainDecision:
    """Retrain when ``config.on_drift`` is on and at least ``drift.min_drifted_features`` features drifted, or
    the domain classifier (``drift.multivariate``) tells the current rows from the training rows.

    Never retrains on fewer than ``min_rows`` current rows: drift on a handful of rows is noise.
    """
    if not config.on_drift:
        return RetrainDecision(False, "retraining on drift is off (monitor.retrain.on_drift is false)")
    n_current = max((feature.n_current for feature in report.features), default=0)
    if n_current < min_rows:
        return RetrainDecision(False, f"only {n_current} current rows; a retrain decision needs at least {min_rows}")
    count, total, needed = len(report.drifted), len(report.features), drift.min_drifted_features
    joint = report.multivariate
    if count < needed and joint is not None and joint.drifted:
        return RetrainDecision(True, f"the domain classifier tells the traffic from the training rows: {joint.reason}")
    if count >= needed:
        named = ", ".join(_describe(report, name) for name in report.drifted)
        return RetrainDecision(True, f"{count} of {total} features drifted ({needed} needed): {named}")
    return RetrainDecision(False, f"{count} of {total} features drifted; {needed} needed to retrain")


def _describe(report: DriftReport, name: str) -> str:
    feature = next(feature for feature in report.features if feature.feature == name)
    return f"{name} (PSI {feature.psi:.3f})"


# -- promotion ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromotionRule:
    """How the best candidate may become production: ``mode`` (``if_better``: it must pass the deployment
    gate, :mod:`loopline.run.policy._gate`, on the holdout against the production model), the primary
    ``metric`` and ``min_improvement`` (the gate's margin when ``gate.metrics`` is empty), ``metric_key``, the
    config key they come from (named in error hints), and the rest of the ``gate``: margins per metric,
    floors, budgets, infrastructure validation."""

    mode: PromoteMode = "if_better"
    metric: str = "roc_auc"
    min_improvement: float = 0.0
    metric_key: str = "metric"
    allow_suspicious: bool = False
    allow_key: str = "allow_suspicious"
    gate: GateConfig = dataclasses.field(default_factory=GateConfig)

    @classmethod
    def for_retrain(
        cls,
        retrain: RetrainConfig,
        select_mode: PromoteMode,
        *,
        allow_suspicious: bool = False,
        allow_key: str = "allow_suspicious",
    ) -> PromotionRule:
        """A retrain's rule: ``monitor.retrain``'s metric and margin; a select step with ``promote: never``
        still never promotes, ``always`` and ``if_better`` are gated; ``allow_suspicious`` is the select
        step's."""
        mode: PromoteMode = "never" if select_mode == "never" else "if_better"
        return cls(
            mode,
            retrain.metric,
            retrain.min_improvement,
            "monitor.retrain.metric",
            allow_suspicious,
            allow_key,
            retrain.gate,
        )


@dataclass(frozen=True)
class Promotion:
    """What :func:`promote` or :func:`compete` decided: ``gate`` is None when no holdout comparison ran;
    ``winner`` the version to promote (None: none)."""

    promote: bool
    reason: str
    gate: GateDecision | None = None
    winner: int | None = None


def promote(
    store: Store,
    model: str,
    best: ModelVersion,
    holdout: pl.DataFrame | None,
    rule: PromotionRule,
    *,
    run_id: str,
) -> Promotion:
    """Decide whether ``best`` becomes the production version of ``model`` and, if so, promote it.

    No production version yet: promoted. ``always`` or no holdout rows: promoted. ``if_better``: the
    champion and ``best`` are scored on ``holdout`` (each score is recorded with the version under
    ``holdout_<run>``) and :func:`gate` decides. The store's audit trail keeps the reason. The promotion checks
    that ``best`` can be served (:func:`loopline.bundle.verify_bundle`) before its stage changes.
    """
    decision = _decide(store, model, best, holdout, rule, run_id)
    if decision.promote:
        store.models.with_check(check_servable).promote(model, best.version, reason=decision.reason)
    return decision


def suspicion(version: int, findings: Sequence[Finding], *, allowed: bool, key: str) -> str | None:
    """Why version ``version`` is suspicious (its ``findings`` that are), or None when none is.

    The sentence names each suspicious finding and ``key``, the config key that allows promoting it anyway;
    with ``allowed`` it says the key allowed it."""
    suspicious = [finding for finding in findings if finding.suspicious]
    if not suspicious:
        return None
    what = "; ".join(_brief(finding) for finding in suspicious)
    if allowed:
        return f"v{version} is suspicious ({what}), promoted as {key} is true"
    return (
        f"v{version} is suspicious, not promoted: {what}. Remove the leaking feature (or check the splits "
        f"overlap), or set {key}: true to promote it anyway."
    )


def _brief(finding: Finding) -> str:
    score = "" if finding.score is None else f"{finding.score:.4f}"
    if finding.kind == "target_leakage":
        return f"feature {finding.feature!r} alone predicts the target (one-feature score {score})"
    if finding.kind == "perfect_score":
        return f"near-perfect validation score ({score})"
    return finding.detail.rstrip(".")


def _decide(
    store: Store, model: str, best: ModelVersion, holdout: pl.DataFrame | None, rule: PromotionRule, run_id: str
) -> Promotion:
    if rule.mode == "never":
        return Promotion(False, "promotion disabled (promote: never)")
    findings = best.typed_config.findings
    refused = suspicion(best.version, findings, allowed=False, key=rule.allow_key)
    if refused is not None and not rule.allow_suspicious:
        verdict = GateVerdict(best.version, None, (), "the training diagnostics", run_id)
        with_suspicion(store, model, verdict, refused)
        return Promotion(False, refused)
    decision = _compare(store, model, best, holdout, rule, run_id)
    allowed = suspicion(best.version, findings, allowed=True, key=rule.allow_key)
    if allowed is not None and decision.promote:
        return dataclasses.replace(decision, reason=f"{decision.reason}; {allowed}")
    return decision


def _compare(
    store: Store, model: str, best: ModelVersion, holdout: pl.DataFrame | None, rule: PromotionRule, run_id: str
) -> Promotion:
    """The promotion decision between ``best`` and the production model: ``always`` promotes, ``if_better``
    asks the deployment gate (every check on the same holdout; see :func:`gated`)."""
    champion = store.models.production(model)
    if champion is not None and champion.version == best.version:
        return Promotion(False, f"version {best.version} is already in production")
    if rule.mode == "always":
        return Promotion(True, "promote: always" if champion is not None else "no production model yet")
    scores: dict[int, dict[str, float]] = {}
    if champion is not None and holdout is not None and holdout.height:
        key = f"holdout_{run_id[:8]}"
        for version in (champion, best):
            bundle = ModelBundle.from_bytes(store.artifacts.get_bytes(version.bundle_digest))
            scores[version.version] = bundle.evaluate(holdout)
            store.models.record_evaluation(model, version.version, key, scores[version.version])
    return gated(store, model, best, champion, holdout, rule, run_id, scores)


def gated(
    store: Store,
    model: str,
    challenger: ModelVersion,
    champion: ModelVersion | None,
    holdout: pl.DataFrame | None,
    rule: PromotionRule,
    run_id: str,
    scores: Mapping[int, Mapping[str, float]],
    *,
    lead: str = "",
) -> Promotion:
    """The deployment gate's decision on ``challenger`` (see :mod:`loopline.run.policy._gate`): the primary
    metric's comparison (:func:`gate`, when there is a champion and holdout scores) and every check; promoted
    only when none failed. The verdict is stored on the challenger and kept in the decision."""
    if champion is None or challenger.version not in scores or champion.version not in scores:
        first = "no production model yet" if champion is None else "no holdout to compare on; best candidate wins"
        decision = GateDecision(True, first, rule.metric, math.nan, math.nan, rule.min_improvement)
        decision = dataclasses.replace(decision, challenger=challenger.version)
    else:
        decision = gate(
            scores[champion.version],
            scores[challenger.version],
            metric=rule.metric,
            min_improvement=rule.min_improvement,
            metric_key=rule.metric_key,
        )
        decision = dataclasses.replace(decision, champion=champion.version, challenger=challenger.version)
    verdict = run_gate(
        store,
        model,
        challenger,
        champion,
        holdout,
        rule.gate,
        metric=rule.metric,
        min_improvement=rule.min_improvement,
        run_id=run_id,
        scores=scores,
    )
    checked = len(verdict.checks)
    if verdict.passed:
        reason = f"{lead}{decision.reason}"
    else:
        failed = len(verdict.failed)
        reason = (
            f"{lead}v{challenger.version} refused by the deployment gate ({failed} of {checked} checks failed: "
            f"{verdict.reasons()}); keep the champion, v{challenger.version} stays a candidate"
        )
    decision = dataclasses.replace(decision, promote=verdict.passed, reason=reason, verdict=verdict)
    return Promotion(verdict.passed, reason, decision, challenger.version if verdict.passed else None)
