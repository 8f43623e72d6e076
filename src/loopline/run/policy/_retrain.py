"""The retrain: re-run a pipeline on its newest window, let the repository compete, refit, promote."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl

from loopline.bundle import check_servable
from loopline.core.config import MonitorConfig, RetrainConfig, parse_window
from loopline.core.errors import ConfigError, LooplineError, StepError, did_you_mean
from loopline.core.pipeline import StepSpec
from loopline.core.records import (
    RefitDecision,
    Selection,
)
from loopline.run.policy._compete import compete
from loopline.run.policy._gate import check_gate_metrics, validate_version
from loopline.run.policy._rules import WINDOW_PARAMS, PromoteMode, Promotion, PromotionRule, rank_candidates

if TYPE_CHECKING:
    from loopline.core.pipeline import Pipeline
    from loopline.run._runner import RunResult
    from loopline.store import ModelVersion, Store


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


@dataclasses.dataclass(frozen=True)
class RetrainRun:
    """One retrain's run, as the policy's later decisions (refit, ensemble) use it: the ``store``, the
    ``pipeline``, its window ``params`` (empty for a pipeline without one), the run ``result``, its select step
    ``select`` with its ``selection`` and ``holdout``, and ``monitor.retrain`` (``retrain``)."""

    store: Store
    pipeline: Pipeline
    params: Mapping[str, Any]
    result: RunResult
    select: str
    selection: Selection
    holdout: pl.DataFrame | None
    retrain: RetrainConfig

    def refit(self, step: str, gated: ModelVersion) -> RefitDecision:
        """Refit ``gated`` (trained by the run's train step ``step``) on its whole window, the holdout included
        unless ``retrain.refit_holdout`` is false (:func:`loopline.run._refit.refit_version`)."""
        from loopline.run._refit import refit_version

        return refit_version(
            self.store,
            self.pipeline,
            self.params,
            self.result,
            step,
            gated,
            self.holdout,
            with_holdout=self.retrain.refit_holdout,
        )


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
    check_gate_metrics(retrain.gate, "monitor.retrain.gate")
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
    retrain_run = RetrainRun(store, pipeline, params, result, name, selection, holdout, retrain)
    if retrain.strategy == "ensemble":
        return _ensemble(retrain_run, decision, candidates)
    refit = None
    reason = decision.reason
    winner = decision.winner
    if decision.promote and winner is not None:
        refit = _refit(retrain_run, winner)
        if refit.version is not None and retrain.gate.infra_validation:
            refit = _infra_checked(retrain_run, refit, refit.version)
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


def _ensemble(run: RetrainRun, decision: Promotion, candidates: list[ModelVersion]) -> Selection:
    """``monitor.retrain.strategy: ensemble``: build the ensemble version (:mod:`loopline.run._ensemble`) and
    promote it, without selection (``ensemble.gate`` false: the gate's verdict is recorded in the reason) or
    only when the gate promotes the run's best candidate (``ensemble.gate`` true); either way only once the
    ensemble loaded in a fresh process (the gate's infrastructure validation, unless it is off)."""
    from loopline.run._ensemble import build_ensemble

    store, selection, retrain = run.store, run.selection, run.retrain
    verdict = f"the gate: {decision.reason}"
    if retrain.ensemble.gate and not decision.promote:
        return dataclasses.replace(
            selection,
            promote=False,
            reason=f"{verdict}; no ensemble built (monitor.retrain.ensemble.gate is true)",
            gate=decision.gate,
            leaderboard=tuple(rank_candidates(candidates, selection.metric)),
        )
    built = build_ensemble(run)
    if built.version is None:
        reason = f"{verdict}; no ensemble: {built.reason}"
        return dataclasses.replace(selection, promote=False, reason=reason, gate=decision.gate)
    if retrain.gate.infra_validation:
        production = store.models.production(selection.model)
        checked = validate_version(
            store,
            selection.model,
            built.version,
            champion=None if production is None else production.version,
            made="ensemble of the retrain",
            run_id=run.result.run_id,
        )
        if not checked.passed:
            why = f"the ensemble v{built.version.version} failed the infrastructure validation ({checked.reasons()})"
            reason = f"{verdict}; {why}; nothing promoted"
            return dataclasses.replace(selection, promote=False, reason=reason, gate=decision.gate)
    how = "gated with the run's best candidate" if retrain.ensemble.gate else "promoted without selection"
    reason = f"{built.reason}, {how} (monitor.retrain.strategy: ensemble); {verdict}"
    store.models.with_check(check_servable).promote(selection.model, built.version.version, reason=reason)
    return dataclasses.replace(
        selection,
        promote=True,
        reason=reason,
        gate=decision.gate,
        ensemble=built.version.version,
        leaderboard=tuple(rank_candidates(candidates, selection.metric)),
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


def _refit(run: RetrainRun, winner: int) -> RefitDecision:
    """Refit ``winner`` on its whole window (train + valid, and the holdout unless ``retrain.refit_holdout`` is
    false) when it is the run's new candidate (see :mod:`loopline.run._refit`), or say why not; a failed refit
    leaves the gated version to be promoted, with the error."""
    from loopline.run._refit import train_step_of

    if not run.retrain.refit:
        return RefitDecision(False, f"v{winner} promoted as gated: monitor.retrain.refit is false", of=winner)
    if winner != run.selection.best:
        return RefitDecision(False, f"v{winner} is an earlier version: it comes back as it was trained", of=winner)
    step = train_step_of(run.pipeline, run.result, run.select, [c.version for c in run.selection.candidates], winner)
    if step is None:
        why = f"v{winner} was not produced by a train step of this run, so there is nothing to refit it from"
        return RefitDecision(False, f"{why}; promoted as gated", of=winner)
    gated = run.store.models.get(run.selection.model, winner)
    try:
        return run.refit(step, gated)
    except LooplineError as exc:
        return RefitDecision(False, f"the refit of v{winner} failed ({exc}); promoted as gated", of=winner)


def _infra_checked(run: RetrainRun, refit: RefitDecision, version: int) -> RefitDecision:
    """``refit`` once its version ``version`` passed the infrastructure validation the gated version passed (it is a new
    bundle: what is promoted must load and reproduce its golden predictions in a fresh process too); a refit
    that fails it stays a candidate with the verdict stored on it, and the gated version is promoted instead."""
    store, model = run.store, run.selection.model
    production = store.models.production(model)
    verdict = validate_version(
        store,
        model,
        store.models.get(model, version),
        champion=None if production is None else production.version,
        made=f"refit of v{refit.of}",
        run_id=run.result.run_id,
    )
    if verdict.passed:
        return refit
    why = f"the refit v{version} of v{refit.of} failed the infrastructure validation ({verdict.reasons()})"
    return RefitDecision(False, f"{why}; v{refit.of} promoted as gated", of=refit.of)


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
