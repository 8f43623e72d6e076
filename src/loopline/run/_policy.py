"""The loop's policy, in one place: rank candidates, gate a challenger, decide to retrain, promote.

One entry point each, called by the select step, ``loopline monitor``, the quickstart, and whatever
runs the loop next (a dashboard, a long-running service):

- :func:`rank_candidates` — best first by one metric on one split, in the metric's direction
  (:data:`loopline.train.METRIC_DIRECTION`; unknown metrics: higher is better), ties in the order given,
  candidates without the metric last and unranked.
- :func:`gate` — the challenger replaces the champion only when it gains more than ``min_improvement``.
- :func:`decide_retrain` — retrain when enough features drifted on enough rows.
- :func:`promote` — the select step's rule (``if_better``, ``always``, ``never``) applied to the best
  candidate, gated on the holdout against the production model, and the store's promotion. A suspicious
  candidate (its training diagnostics found target leakage or a near-perfect validation score) is never
  promoted unless the rule allows it (the select step's ``allow_suspicious``); see :func:`suspicion`.
- :func:`compete` — the production model, the retrain's best candidate and the retained earlier versions
  scored on the same newest labelled window; the best of them is gated against the champion.
- :func:`retrain_and_gate` — re-run a pipeline on the most recent window (or, without one, on the newest
  data); its select step registers and ranks the candidates, :func:`compete` decides with
  ``monitor.retrain.metric`` and ``monitor.retrain.min_improvement``, and a new winner is refitted on
  its whole window (train, valid, holdout) before it is promoted.
- :func:`decide_probation` / :func:`probation` — after a promotion, roll back to the previous version when
  it does better on the probation window by more than a margin, or the new one fails more requests.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

import polars as pl

from loopline.bundle import check_servable
from loopline.core.config import DriftConfig, LoopConfig, MonitorConfig, ProbationConfig, RetrainConfig, parse_window
from loopline.core.errors import ConfigError, DataError, LooplineError, StepError, did_you_mean
from loopline.core.pipeline import StepSpec
from loopline.core.records import (
    Contender,
    Finding,
    GateDecision,
    LeaderboardRow,
    ProbationDecision,
    ProbationEvidence,
    RefitDecision,
    RetrainDecision,
    Selection,
    Timings,
    Training,
    VersionConfig,
)
from loopline.train import METRIC_DIRECTION, ModelBundle

if TYPE_CHECKING:
    from loopline.core.pipeline import Pipeline
    from loopline.monitor import DriftReport
    from loopline.run._runner import RunResult
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
    """Retrain when ``config.on_drift`` is on and at least ``drift.min_drifted_features`` features drifted.

    Never retrains on fewer than ``min_rows`` current rows: drift on a handful of rows is noise.
    """
    if not config.on_drift:
        return RetrainDecision(False, "retraining on drift is off (monitor.retrain.on_drift is false)")
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


# -- promotion ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromotionRule:
    """How the best candidate may become production: ``mode`` (``if_better``: it must pass :func:`gate`
    on the holdout against the production model), the gate's ``metric`` and ``min_improvement``, and
    ``metric_key``, the config key they come from (named in error hints)."""

    mode: PromoteMode = "if_better"
    metric: str = "roc_auc"
    min_improvement: float = 0.0
    metric_key: str = "metric"
    allow_suspicious: bool = False
    allow_key: str = "allow_suspicious"

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
        return cls(mode, retrain.metric, retrain.min_improvement, "monitor.retrain.metric", allow_suspicious, allow_key)


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
        return Promotion(False, refused)
    decision = _compare(store, model, best, holdout, rule, run_id)
    allowed = suspicion(best.version, findings, allowed=True, key=rule.allow_key)
    if allowed is not None and decision.promote:
        return dataclasses.replace(decision, reason=f"{decision.reason}; {allowed}")
    return decision


def _compare(
    store: Store, model: str, best: ModelVersion, holdout: pl.DataFrame | None, rule: PromotionRule, run_id: str
) -> Promotion:
    """The promotion decision between ``best`` and the production model (the rule's mode and gate)."""
    champion = store.models.production(model)
    if champion is None:
        return Promotion(True, "no production model yet")
    if champion.version == best.version:
        return Promotion(False, f"version {best.version} is already in production")
    if rule.mode == "always" or holdout is None or holdout.height == 0:
        why = "promote: always" if rule.mode == "always" else "no holdout to compare on; best candidate wins"
        return Promotion(True, why)
    key = f"holdout_{run_id[:8]}"
    scores = {}
    for version in (champion, best):
        bundle = ModelBundle.from_bytes(store.artifacts.get_bytes(version.bundle_digest))
        scores[version.version] = bundle.evaluate(holdout)
        store.models.record_evaluation(model, version.version, key, scores[version.version])
    decision = gate(
        scores[champion.version],
        scores[best.version],
        metric=rule.metric,
        min_improvement=rule.min_improvement,
        metric_key=rule.metric_key,
    )
    decision = dataclasses.replace(decision, champion=champion.version, challenger=best.version)
    return Promotion(decision.promote, decision.reason, decision)


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
    scored = [_score(store, model, version, role, holdout, key, rule.metric) for version, role in entrants]
    contenders = _ranked(scored, rule.metric)
    return _judge(store.models.get, model, contenders, rule)


def _earlier(store: Store, model: str, exclude: tuple[int, ...], run_id: str, keep: int) -> list[ModelVersion]:
    """Up to ``keep`` versions of earlier runs that may come back: candidates and archived, newest first."""
    versions = [
        v
        for v in reversed(store.models.list(model))
        if v.stage in ("candidate", "archived") and v.version not in exclude and v.run_id != run_id
    ]
    return versions[:keep]


def _score(
    store: Store, model: str, version: ModelVersion, role: str, holdout: pl.DataFrame, key: str, metric: str
) -> Contender:
    """``version`` scored on ``holdout`` (recorded under ``key``), or why it could not be."""
    try:
        data = store.artifacts.get_bytes(version.bundle_digest)
        check_servable(data)
        scores = ModelBundle.from_bytes(data).evaluate(holdout)
    except LooplineError as exc:
        return Contender(version.version, role, None, note=f"sits out: {exc.message}")
    store.models.record_evaluation(model, version.version, key, scores)
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
    get: Callable[[str, int], ModelVersion], model: str, contenders: tuple[Contender, ...], rule: PromotionRule
) -> Promotion:
    """The gate between the champion and the best other contender (see :func:`compete`)."""
    champion = next(c for c in contenders if c.role == "champion")
    others = [c for c in contenders if c.role != "champion" and c.score is not None]
    field = _field(contenders)
    if not others:
        reason = f"no other version could score the holdout ({field}); keep the champion"
        return Promotion(False, reason, _no_gate(rule, champion, contenders, reason))
    best = others[0]
    old = {rule.metric: math.nan if champion.score is None else champion.score}
    decision = gate(
        old,
        {rule.metric: float(best.score or 0.0)},
        metric=rule.metric,
        min_improvement=rule.min_improvement,
        metric_key=rule.metric_key,
    )
    if champion.rank == 1:
        lead = f"champion v{champion.version} scores best on the holdout"
    else:
        lead = f"v{best.version} ({best.role}) scores best on the holdout"
    promote, reason = _unless_suspicious(
        get(model, best.version), decision.promote, f"{lead} ({field}); {decision.reason}", rule
    )
    final = dataclasses.replace(
        decision,
        promote=promote,
        reason=reason,
        champion=champion.version,
        challenger=best.version,
        contenders=contenders,
    )
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


# -- the retrain loop ---------------------------------------------------------------------------


def retrain_params(end: datetime, window: int | str = 3) -> dict[str, Any]:
    """The window of ``monitor.retrain.window`` ending at ``end``: train on all but the newest period, whose
    first half validates and second half tests (the gate's holdout).

    ``window`` is months (``3``, ``"3mo"``: the newest period is the last month) or days / weeks (``"90d"``,
    ``"2w"``: the newest period is the last third of the window, in whole days, at least one). ValueError
    for anything else (see :func:`loopline.core.config.parse_window`)."""
    count, unit = parse_window(window)
    end = end.astimezone(UTC) if end.tzinfo else end.replace(tzinfo=UTC)
    if unit == "mo":
        start, last = _add_months(end, -count), _add_months(end, -1)
    else:
        days = count * (7 if unit == "w" else 1)
        start, last = end - timedelta(days=days), end - timedelta(days=max(1, days // 3))
    middle = last + (end - last) / 2
    midnight = middle.replace(hour=0, minute=0, second=0, microsecond=0)
    middle = midnight if midnight > last else middle.replace(minute=0, second=0, microsecond=0)
    return {"start": _iso(start), "valid_from": _iso(last), "test_from": _iso(middle), "end": _iso(end)}


def _add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.year * 12 + moment.month - 1 + months
    return (
        moment.replace(
            year=month_index // 12, month=month_index % 12 + 1, day=1, hour=0, minute=0, second=0, microsecond=0
        )
        if moment.day == 1
        else _add_months(moment.replace(day=1), months) + timedelta(days=moment.day - 1)
    )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


RunPipeline = Callable[["Store", "Pipeline", Mapping[str, Any]], "RunResult"]
"""Runs a pipeline with params and returns the run (never raising on a failed step is fine)."""


def retrain_and_gate(store: Store, pipeline: Pipeline, end: datetime, *, run: RunPipeline | None = None) -> Selection:
    """Retrain ``pipeline`` and let the model repository compete for production.

    A pipeline that declares the params start, valid_from, test_from and end is re-run on the window of
    ``monitor.retrain.window`` ending at ``end`` (:func:`retrain_params`); any other pipeline is re-run as it
    is, its ingest steps reading the newest data; when its best candidate was trained on data an earlier
    version already saw, nothing is promoted and the selection says so. The select step registers and ranks
    the candidates; then :func:`compete` scores the production model, the best new candidate and the earlier
    versions on the select step's holdout and the gate (``monitor.retrain.metric``, ``min_improvement``)
    decides. A winning new candidate is refitted on its whole window (``monitor.retrain.refit``) and the refit
    is promoted; an earlier version comes back as it was trained.

    ``run`` runs the pipeline (default: a :class:`~loopline.run.Runner` on ``store``). Returns the select
    step's selection with the retrain's decision (``gate``: every contender; ``refit``: what the refit did).
    ConfigError when the pipeline has no monitor section, declares only part of the window params, or has
    no select step; StepError when the run failed.
    """
    monitor = _monitor_of(pipeline)
    retrain = monitor.retrain
    _check_retrain_metric(store, monitor.model, retrain.metric)
    windowed = _windowed(pipeline)
    params = retrain_params(end, retrain.window) if windowed else {}
    name = select_step(pipeline)
    select_config = pipeline.bind(params)[name].config
    mode: PromoteMode = getattr(select_config, "promote", "if_better")
    result = (run or _run)(store, _deferring(pipeline, name), params)
    selection = selection_of(result, pipeline)
    best = store.models.get(selection.model, selection.best)
    candidates = [store.models.get(selection.model, c.version) for c in selection.candidates]
    if not windowed:
        seen = _seen_before(store, best, result.run_id)
        if seen is not None:
            return _unchanged(selection, seen, store.models.production(selection.model), candidates)
    rule = PromotionRule.for_retrain(
        retrain,
        mode,
        allow_suspicious=bool(getattr(select_config, "allow_suspicious", False)),
        allow_key=f"steps.{name}.allow_suspicious",
    )
    holdout = _holdout(result, pipeline, name)
    decision = compete(store, selection.model, best, holdout, rule, run_id=result.run_id, keep=retrain.keep_versions)
    refit = None
    reason = decision.reason
    winner = decision.winner
    if decision.promote and winner is not None:
        refit = _refit(store, pipeline, params, result, name, selection, winner, holdout, retrain)
        target = refit.version if refit.version is not None else winner
        reason = f"{reason}; {refit.reason}"
        store.models.with_check(check_servable).promote(selection.model, target, reason=reason)
    return dataclasses.replace(
        selection,
        best=winner if winner is not None else best.version,
        promote=decision.promote,
        reason=reason,
        gate=decision.gate,
        refit=refit,
        leaderboard=tuple(rank_candidates(candidates, selection.metric, promoted=winner if decision.promote else None)),
    )


def _monitor_of(pipeline: Pipeline) -> MonitorConfig:
    if pipeline.monitor is None:
        raise ConfigError(
            f"pipeline {pipeline.name!r} cannot be retrained: it has no 'monitor:' section.",
            key="monitor",
            hint="Add monitor: {model: NAME, retrain: {...}}.",
        )
    return pipeline.monitor


def _windowed(pipeline: Pipeline) -> bool:
    """Whether ``pipeline`` declares a moving window (all of :data:`WINDOW_PARAMS`); ConfigError for a part."""
    declared = [p for p in WINDOW_PARAMS if p in pipeline.params]
    if declared and len(declared) < len(WINDOW_PARAMS):
        missing = [p for p in WINDOW_PARAMS if p not in declared]
        raise ConfigError(
            f"pipeline {pipeline.name!r} cannot be retrained on a moving window: "
            f"params {', '.join(missing)} are not declared.",
            key="params",
            hint="Declare params start, valid_from, test_from and end and use them in the steps (or none of them "
            "to re-run the pipeline on the newest data).",
        )
    return bool(declared)


def _seen_before(store: Store, best: ModelVersion, run_id: str) -> ModelVersion | None:
    """The oldest version of an earlier run trained on the same data as ``best`` (None: new data)."""
    if not best.data_fingerprint:
        return None
    same = [
        v
        for v in store.models.list(best.name)
        if v.data_fingerprint == best.data_fingerprint and v.run_id is not None and v.run_id != run_id
    ]
    return same[0] if same else None


def _unchanged(
    selection: Selection, seen: ModelVersion, production: ModelVersion | None, candidates: list[ModelVersion]
) -> Selection:
    kept = f"v{production.version} stays in production" if production else "nothing promoted"
    reason = (
        f"no new data: the best candidate was trained on the same data as v{seen.version} "
        f"(run {seen.run_id[:8] if seen.run_id else '?'}); nothing to decide, {kept}"
    )
    return dataclasses.replace(
        selection,
        best=seen.version,
        promote=False,
        reason=reason,
        gate=None,
        leaderboard=tuple(rank_candidates(candidates, selection.metric)),
    )


def _refit(
    store: Store,
    pipeline: Pipeline,
    params: Mapping[str, Any],
    result: RunResult,
    name: str,
    selection: Selection,
    winner: int,
    holdout: pl.DataFrame | None,
    retrain: RetrainConfig,
) -> RefitDecision:
    """Refit ``winner`` on its whole window (train + valid, and the holdout unless ``retrain.refit_holdout`` is
    false) when it is the run's new candidate (see :mod:`loopline.run._refit`), or say why not; a failed refit
    leaves the gated version to be promoted, with the error."""
    from loopline.run._refit import refit_version, train_step_of

    if not retrain.refit:
        return RefitDecision(False, f"v{winner} promoted as gated: monitor.retrain.refit is false", of=winner)
    if winner != selection.best:
        return RefitDecision(False, f"v{winner} is an earlier version: it comes back as it was trained", of=winner)
    step = train_step_of(pipeline, result, name, [c.version for c in selection.candidates], winner)
    if step is None:
        why = f"v{winner} was not produced by a train step of this run, so there is nothing to refit it from"
        return RefitDecision(False, f"{why}; promoted as gated", of=winner)
    gated = store.models.get(selection.model, winner)
    try:
        return refit_version(store, pipeline, params, result, step, gated, holdout, with_holdout=retrain.refit_holdout)
    except LooplineError as exc:
        return RefitDecision(False, f"the refit of v{winner} failed ({exc}); promoted as gated", of=winner)


def _check_retrain_metric(store: Store, model: str, metric: str) -> None:
    """ConfigError naming ``monitor.retrain.metric`` before any work when the production model was never
    scored with ``metric`` (its validation metrics are the ones the gate will have)."""
    production = store.models.production(model)
    known = sorted((production.metrics.get("valid") or {}) if production else {})
    if known and metric not in known:
        suggestion = did_you_mean(metric, known)
        raise ConfigError(
            f"monitor.retrain.metric {metric!r} is not a metric of model {model!r} "
            f"(v{production.version if production else '?'} has {', '.join(known)}).",
            key="monitor.retrain.metric",
            hint=f"{suggestion + ' ' if suggestion else ''}Set monitor.retrain.metric to one of them.",
        )


def _run(store: Store, pipeline: Pipeline, params: Mapping[str, Any]) -> RunResult:
    from loopline.run._runner import Runner

    return Runner(store).run(pipeline, params, raise_on_error=False)


def _deferring(pipeline: Pipeline, name: str) -> Pipeline:
    """A copy of ``pipeline`` whose select step ``name`` registers and ranks but leaves promotion to the
    retrain gate (``promote: never``; the run record shows it)."""
    spec = pipeline.steps[name]
    deferring = copy.copy(pipeline)
    deferring.params = dict(pipeline.params)
    deferring.steps = {
        **pipeline.steps,
        name: StepSpec(name, spec.type, spec.inputs, {**spec.config, "promote": "never"}),
    }
    return deferring


def _holdout(result: RunResult, pipeline: Pipeline, name: str) -> pl.DataFrame | None:
    """The select step's holdout: its last input, when that is a table."""
    inputs = pipeline.steps[name].inputs
    if not inputs:
        return None
    producer, _, output = inputs[-1].partition(".")
    value = result.output(producer, output or None)
    return value if isinstance(value, pl.DataFrame) else None


def select_step(pipeline: Pipeline) -> str:
    """The name of the pipeline's select step; ConfigError when it has none."""
    names = [n for n, s in pipeline.steps.items() if s.type == "select"]
    if not names:
        raise ConfigError(
            f"pipeline {pipeline.name!r} has no select step to register and promote its candidates.",
            key="steps",
            hint="Add a step of type select that takes the train steps and the test split as inputs.",
        )
    return names[-1]


def selection_of(result: RunResult, pipeline: Pipeline) -> Selection:
    """The selection of the pipeline's select step in ``result``; StepError when the run failed."""
    if result.status != "succeeded":
        failed = next((o for o in result.steps.values() if o.status == "failed"), None)
        raise StepError(
            failed.name if failed else pipeline.name,
            (failed.error if failed else None) or f"run {result.status}",
            hint=f"Fix the cause, then resume with `loopline run --resume {result.run_id}`.",
        )
    name = select_step(pipeline)
    return Selection.from_dict(result.output(name), where=f"steps.{name}")


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


# -- triggers (the loop service) ----------------------------------------------------------------
#
# What makes `loopline loop` retrain, one function per trigger, each returning a TriggerDecision with its reason
# (run/_service.py records every one as a loop event). A tick gathers LoopSignals (drift, feature importance,
# realised or estimated metrics, the last retrain, new rows), :func:`evaluate_triggers` decides, and
# :func:`cooldown` says whether a retrain may start now. Everything a signal lacks is left out, never guessed.


TriggerName = Literal["drift", "metric", "schedule", "volume", "forced", "resume"]


@dataclass(frozen=True)
class LoopSignals:
    """What one tick of the loop knows; every field is optional (None: that signal is not available).

    ``drift``: the drift report of the production model's traffic; ``importance``: the model's feature importance
    by input feature (None: equal weights). ``metric``: the name of ``baseline`` (the production model's own score),
    ``realised`` (scored on ``realised_rows`` labelled predictions) and ``estimated`` (without labels).
    ``last_retrain``: when the last retrain started (None: never, by the loop); ``new_rows``: rows added to the
    pipeline's datasets since then. ``now``: the tick's time.
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


@dataclass(frozen=True)
class TriggerDecision:
    """One trigger's verdict: ``fire`` or not, ``reason`` in words, ``value`` against ``threshold`` where numeric."""

    trigger: TriggerName
    fire: bool
    reason: str
    value: float | None = None
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Cooldown:
    """Whether a retrain must wait (``active``) and why."""

    active: bool
    reason: str


def drift_importance(report: DriftReport, importance: Mapping[str, float] | None) -> tuple[float, bool]:
    """The share of feature importance that drifted, and whether the model's importance weighted it (False:
    equal weights, because there is none or it names none of the report's features). Negative importances
    (a permutation importance below chance) count as zero."""
    names = [feature.feature for feature in report.features]
    weights = {name: max(float((importance or {}).get(name, 0.0)), 0.0) for name in names}
    weighted = sum(weights.values()) > 0
    if not weighted:
        weights = dict.fromkeys(names, 1.0)
    total = sum(weights.values())
    return (sum(weights[name] for name in report.drifted) / total if total else 0.0), weighted


def drift_trigger(
    report: DriftReport | None,
    importance: Mapping[str, float] | None,
    config: MonitorConfig,
    *,
    min_rows: int = MIN_RETRAIN_ROWS,
) -> TriggerDecision:
    """Fire when at least ``drift.min_drifted_features`` features drifted and they carry at least
    ``loop.min_drift_importance`` of the model's feature importance (equal weights without one), on at least
    ``min_rows`` current rows, with ``retrain.on_drift`` on."""
    threshold = config.loop.min_drift_importance
    if not config.retrain.on_drift:
        return TriggerDecision("drift", False, "retraining on drift is off (monitor.retrain.on_drift is false)")
    if report is None:
        return TriggerDecision("drift", False, "no drift report this tick")
    n_current = max((feature.n_current for feature in report.features), default=0)
    if n_current < min_rows:
        return TriggerDecision("drift", False, f"only {n_current} current rows; drift needs at least {min_rows}")
    share, weighted = drift_importance(report, importance)
    basis = "of the model's feature importance" if weighted else "of the features (no importance recorded)"
    count, needed = len(report.drifted), config.drift.min_drifted_features
    named = ", ".join(report.drifted) or "none"
    summary = f"{count} feature(s) drifted ({named}), {share:.0%} {basis}"
    if count >= needed and share >= threshold:
        return TriggerDecision("drift", True, f"{summary} >= {threshold:.0%}", share, threshold)
    why = f"fewer than {needed} drifted" if count < needed else f"below {threshold:.0%}"
    return TriggerDecision("drift", False, f"{summary}: {why}", share, threshold)


def metric_trigger(signals: LoopSignals, config: MonitorConfig) -> TriggerDecision:
    """Fire when the realised metric (else the estimated one) fell more than ``loop.max_metric_drop`` below the
    production model's ``baseline``, in the metric's direction."""
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
    if drop > limit:
        return TriggerDecision("metric", True, f"{summary} > {limit:g})", drop, limit)
    return TriggerDecision("metric", False, f"{summary} <= {limit:g})", drop, limit)


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
    """Every trigger's decision for one tick, in a fixed order: drift, metric, schedule, volume."""
    return (
        drift_trigger(signals.drift, signals.importance, config),
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
