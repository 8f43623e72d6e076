"""The loop service: ``loopline loop PIPELINE`` ticks on a schedule, and each tick may start one retrain.

A tick, in this order, each step recorded as a loop event (:class:`~loopline.store.loop.LoopEvent`):

0. sync the labels of ``monitor.labels``, close the due ``monitor.loop.window`` windows (realised and estimated
   metrics, label coverage, drift) and refresh the closed windows whose labels arrived late
   (:mod:`loopline.run._loop_windows`); check the probation of the version the loop promoted last
   (:mod:`loopline.run._loop_probation`) — ``probation``, ``rollback``;
1. gather the signals (:class:`~loopline.run.policy.LoopSignals`): the drift of the production model's traffic
   (:func:`~loopline.run._loop.monitor_model`), its feature importance, the metrics an ``enrich`` hook adds
   (labels, estimation), the last retrain and the rows ingested since — ``tick``;
2. evaluate the triggers (:func:`~loopline.run.policy.evaluate_triggers`) — one ``trigger`` per trigger that
   fired, else one ``skip``; drift while the windows carry a realised metric is a ``warning`` (with the drifted
   features and their importance), and the realised metric decides (``monitor.loop.drift_when_labelled``);
3. take the pipeline's retrain lease (:mod:`loopline.store.loop`; another loop holds it: ``skip``), check the
   cooldown inside it (``skip``), then retrain (``retrain``) through
   :func:`~loopline.run.policy.retrain_and_gate` and record its ``gate`` and ``promotion``; a failure is an
   ``error`` event and the loop goes on.

A loop killed mid-retrain leaves its lease to lapse. The next tick sees the lapsed lease (trigger ``resume``),
takes it over and resumes the dead loop's retrain run (failed or stale, found by its owner: the run records'
machinery) on the same window; a run that cannot be resumed is started anew.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from loopline.core.config import LoopConfig, MonitorConfig, parse_duration
from loopline.core.errors import ConfigError, ConflictError, LooplineError
from loopline.run._lease import LeaseKeeper, retrain_lease_name
from loopline.run._loop import monitor_model
from loopline.run._loop_probation import ProbationCheck, check_probation
from loopline.run._loop_windows import prepare, window_signals
from loopline.run._windows import json_safe
from loopline.run.policy import (
    LoopSignals,
    MetricSample,
    TriggerDecision,
    cooldown,
    evaluate_triggers,
    metric_value,
    retrain_and_gate,
)
from loopline.store.loop import Lease, LeaseHolder, LoopEvent, LoopStore

if TYPE_CHECKING:
    from loopline.core.pipeline import Pipeline
    from loopline.core.records import Selection
    from loopline.run._runner import RunResult
    from loopline.run._source_status import SourceStatus
    from loopline.run.policy import RunPipeline
    from loopline.store import ModelVersion, RunRecord, Store

log = logging.getLogger("loopline.loop")

DEFAULT_INTERVAL = "15m"
IMPORTANCE_KEY = "feature_importance"
"""Where a model version's config records its feature importance by input feature (``{feature: weight}``)."""

Outcome = Literal["retrained", "no trigger", "lease held", "cooldown", "rolled back", "error"]
Enrich = Callable[["Store", MonitorConfig, LoopSignals], LoopSignals]
"""Adds what other parts of the loop know to a tick's signals (realised metrics from labels, estimated ones)."""


class SourceWatch(Protocol):
    """What the loop needs of the supervisor of the pipeline's continuous sources: its sources' status (None:
    the pipeline has none)."""

    def status(self) -> list[SourceStatus] | None: ...


@dataclass(frozen=True)
class TickResult:
    """What one tick did: its ``outcome``, the trigger ``decisions``, the events it recorded and the retrain's
    selection (None when it did not retrain, or the retrain failed)."""

    outcome: Outcome
    signals: LoopSignals
    decisions: tuple[TriggerDecision, ...]
    events: tuple[LoopEvent, ...]
    selection: Selection | None = None


class LoopService:
    """Ticks of the loop for one pipeline with a ``monitor:`` section (see the module docstring).

    ``end``: the end of the retraining window (None: the tick's time); ``force``: retrain at every tick, past the
    triggers and the cooldown; ``run``: how the retrain runs the pipeline (default: a Runner on ``store``);
    ``enrich``: a hook that adds to the signals (the windows' realised and estimated metrics are there already);
    ``sources``: the supervisor of the pipeline's continuous sources, whose status each tick event records.
    """

    def __init__(
        self,
        store: Store,
        pipeline: Pipeline,
        *,
        end: datetime | None = None,
        force: bool = False,
        run: RunPipeline | None = None,
        enrich: Enrich | None = None,
        sources: SourceWatch | None = None,
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self.end = end
        self.force = force
        self.run = run
        self.enrich = enrich
        self.sources = sources
        self.loops = LoopStore(store.engine)

    @property
    def config(self) -> MonitorConfig:
        if self.pipeline.monitor is None:
            raise ConfigError(
                f"pipeline {self.pipeline.name!r} has no 'monitor:' section for the loop to watch.",
                key="monitor",
                hint="Add monitor: {model: NAME, loop: {interval: 15m}}.",
            )
        return self.pipeline.monitor

    def tick(self, *, catch_up: list[dict[str, Any]] | None = None) -> TickResult:
        """One tick (see the module docstring); never raises for a failed retrain (an ``error`` event).
        ``catch_up``: what a cron tick's catch-up pass of the sources read (kept in the tick event)."""
        config = self.config
        events: list[LoopEvent] = []
        signals, notes, details = self._signals(config)
        tick_details = _signal_details(signals, notes) | details | {"sources": self._source_states()}
        if catch_up is not None:
            tick_details["catch_up"] = catch_up
        events.append(self._record("tick", _tick_reason(signals, notes), tick_details))
        checked = self._probation(config, signals.now)
        events.extend(checked)
        if any(e.kind == "rollback" for e in checked) and not self.force:
            why = "rolled back this tick: the signals were the rolled-back version's; the next tick decides anew"
            events.append(self._record("skip", why, {}))
            return TickResult("rolled back", signals, (), tuple(events))
        decisions = evaluate_triggers(signals, config)
        fired = [d for d in decisions if d.fire]
        lapsed = self._lapsed(signals.now)
        if lapsed is not None:
            reason = f"the loop that was retraining is gone ({lapsed.describe(signals.now)}): resume its retrain"
            fired.append(TriggerDecision("resume", True, reason))
        if self.force:
            fired.append(TriggerDecision("forced", True, "forced (--force): retrain past the triggers and cooldown"))
        requested = self._requested(signals.last_retrain)
        if requested is not None:
            fired.append(TriggerDecision("requested", True, f"requested past the cooldown: {requested.reason}"))
        for decision in decisions:
            if decision.warning:  # drift while labelled: said, and the realised metric decides
                events.append(self._record("warning", decision.reason, decision.to_dict()))
        for decision in fired:
            events.append(self._record("trigger", decision.reason, decision.to_dict()))
        if not fired:
            reasons = "; ".join(d.reason for d in decisions)
            details = {"decisions": [d.to_dict() for d in decisions]}
            events.append(self._record("skip", f"no trigger fired: {reasons}", details))
            return TickResult("no trigger", signals, decisions, tuple(events))
        outcome, selection = self._retrain(fired, events)
        return TickResult(outcome, signals, decisions, tuple(events), selection)

    def serve(self, stop: threading.Event, *, interval: str | None = None, schedule: str | None = None) -> int:
        """Tick until ``stop`` is set (a signal handler sets it): a tick in progress finishes first. Returns the
        number of ticks. ``interval``/``schedule`` override ``monitor.loop``'s."""
        ticks = 0
        while not stop.is_set():
            ticks += 1
            try:
                log.info("tick %d: %s", ticks, self.tick().outcome)
            except Exception as error:  # the store unreachable, say: the next tick tries again
                log.exception("tick %d of %s failed", ticks, self.pipeline.name)
                self._try_record_error(error)
            now = datetime.now(UTC)
            stop.wait(max((next_tick(now, self.config.loop, interval, schedule) - now).total_seconds(), 0.0))
        return ticks

    def _requested(self, last_retrain: datetime | None) -> LoopEvent | None:
        """The newest retrain request (``request`` event: the dashboard's action) made after the last retrain
        started, or None: a request is honoured once."""
        request = self.loops.last(self.pipeline.name, "request")
        if request is None or (last_retrain is not None and request.at <= last_retrain):
            return None
        return request

    # -- signals ------------------------------------------------------------------------------------

    def _signals(self, config: MonitorConfig) -> tuple[LoopSignals, list[str], dict[str, Any]]:
        now = datetime.now(UTC)
        prep = prepare(self.store, config, now)
        notes = prep.notes
        production = self.store.models.production(config.model)
        windows = window_signals(self.store, config, production, config.retrain.metric, now)
        drift = windows.drift if windows is not None else None
        if drift is None:
            try:
                drift = monitor_model(self.store, config).report
            except LooplineError as error:
                notes.append(f"drift not checked: {error}")
        last = self.loops.last(self.pipeline.name, "retrain")
        last_retrain = last.at if last else None
        since = last_retrain or (production.created_at if production else None)
        datasets = self._datasets(config.loop)
        signals = LoopSignals(
            now=now,
            drift=drift,
            importance=_importance(production),
            metric=config.retrain.metric,
            baseline=_baseline(production, config.retrain.metric),
            baseline_sample=_baseline_sample(production, config.retrain.metric),
            last_retrain=last_retrain,
            new_rows=self.loops.rows_since(datasets, since) if datasets else None,
        )
        if windows is not None:
            signals = dataclasses.replace(
                signals,
                realised=windows.realised,
                realised_rows=windows.realised_rows,
                realised_positives=windows.realised_positives,
                estimated=windows.estimated,
            )
            prep.details["estimated_band"] = windows.estimated_band
        if self.enrich is not None:
            signals = self.enrich(self.store, config, signals)
        return signals, notes, prep.details

    def _source_states(self) -> list[dict[str, Any]] | None:
        """The continuous sources' state (None: the pipeline has none, or the loop was given no watch)."""
        if self.sources is None:
            return None
        try:
            found = self.sources.status()
            return (
                None
                if found is None
                else [
                    {
                        "source": s.source,
                        "state": s.state,
                        "rows": s.rows,
                        "restarts": s.restarts,
                        "error": s.last_error,
                    }
                    for s in found
                ]
            )
        except LooplineError as error:  # the supervisor's store read failed: the tick goes on
            return [{"error": str(error)}]

    # -- probation ----------------------------------------------------------------------------------

    def _probation(self, config: MonitorConfig, now: datetime) -> list[LoopEvent]:
        """Check the probation the last ``probation`` event opened, if it is still open: a ``rollback`` (and a
        closing ``probation`` event) when the previous version does better, a ``probation`` event when it ends."""
        opened = self.loops.last(self.pipeline.name, "probation")
        if opened is None or opened.details.get("state") != "started":
            return []
        version, previous = int(opened.details["version"]), int(opened.details["previous"])
        until = datetime.fromisoformat(str(opened.details["until"]))
        production = self.store.models.production(config.model)
        if production is None or production.version != version:
            now_in = f"v{production.version}" if production else "no version"
            reason = f"probation of v{version} ended: {now_in} is in production now"
            return [self._record("probation", reason, {**opened.details, "state": "ended"})]
        try:
            check = check_probation(
                self.store,
                production,
                self.store.models.get(config.model, previous),
                opened.at,
                min(now, until),
                config.retrain.metric,
                config.retrain.probation,
            )
        except LooplineError as error:  # the previous version deleted, a rollback refused: said, then on
            return [self._record("error", f"probation of v{version} not checked: {error}", {"version": version})]
        return self._probation_events(check, opened.details, now >= until)

    def _probation_events(self, check: ProbationCheck, opened: dict[str, Any], over: bool) -> list[LoopEvent]:
        decision = check.decision
        if decision is not None and decision.rolled_back_to is not None:
            details = decision.to_dict() | {"version": decision.promoted, "previous": decision.previous}
            return [
                self._record("rollback", f"probation: {decision.reason}", details),
                self._record("probation", f"v{decision.promoted} failed its probation", {**details, "state": "failed"}),
            ]
        if not over:
            return []
        why = decision.reason if decision is not None else check.note
        details = {**opened, "state": "passed", "decision": None if decision is None else decision.to_dict()}
        return [self._record("probation", f"v{opened['version']} passed its probation: {why}", details)]

    def _datasets(self, loop: LoopConfig) -> list[str]:
        """``monitor.loop.datasets``, else the datasets the pipeline's ingest steps write."""
        if loop.datasets:
            return list(loop.datasets)
        steps = self.pipeline.steps.values()
        return [str(s.config.get("dataset") or s.name) for s in steps if s.type == "ingest"]

    def _lapsed(self, now: datetime) -> LeaseHolder | None:
        holder = self.loops.holder(retrain_lease_name(self.pipeline.name))
        return holder if holder is not None and holder.lapsed(now) else None

    # -- the retrain --------------------------------------------------------------------------------

    def _retrain(self, fired: list[TriggerDecision], events: list[LoopEvent]) -> tuple[Outcome, Selection | None]:
        loop = self.config.loop
        name = retrain_lease_name(self.pipeline.name)
        lease = self.loops.acquire(name, loop.lease_ttl_td)
        if lease is None:
            holder = self.loops.holder(name)
            who = holder.describe(datetime.now(UTC)) if holder else "just released"
            events.append(self._record("skip", f"another loop is retraining ({who})", {"lease": name}))
            return "lease held", None
        with LeaseKeeper(self.loops, lease, loop.lease_ttl_td) as keeper:
            outcome = self._retrain_held(lease, fired, events)
            if keeper.lost.is_set():  # the store was out of reach past the lease's expiry: say so
                reason = "the retrain lease lapsed while this loop retrained; another loop may have retrained too"
                events.append(self._record("error", reason, {"lease": name}))
            return outcome

    def _retrain_held(
        self, lease: Lease, fired: list[TriggerDecision], events: list[LoopEvent]
    ) -> tuple[Outcome, Selection | None]:
        now = datetime.now(UTC)
        last = self.loops.last(self.pipeline.name, "retrain")  # read under the lease: no race with another loop
        resuming = _interrupted_run(self.store, self.pipeline.name, lease.previous)
        # a dead loop's retrain is finished, and a person's request honoured, cooldown or not
        forced = self.force or lease.previous is not None or any(d.trigger == "requested" for d in fired)
        wait = cooldown(last.at if last else None, now, self.config.loop, force=forced)
        if wait.active:
            events.append(self._record("skip", f"cooldown: {wait.reason}", {"cooldown": self.config.loop.cooldown}))
            return "cooldown", None
        end = _run_end(resuming) if resuming is not None else (self.end or now)
        details: dict[str, Any] = {"triggers": [d.trigger for d in fired], "end": end.isoformat()}
        details |= {"cooldown": wait.reason, "resume": resuming.run_id if resuming else None}
        why = "; ".join(d.reason for d in fired)
        if resuming is not None:
            why = f"resume run {resuming.run_id} of the loop that died; {why}"
        events.append(self._record("retrain", why, details))
        before = self.store.models.production(self.config.model)
        try:
            selection = retrain_and_gate(self.store, self.pipeline, end, run=self._runner(resuming))
        except Exception as error:  # recorded, and the long-lived loop goes on to the next tick
            if isinstance(error, LooplineError):  # a message that names its cause and fix
                log.warning("retrain of %s failed: %s", self.pipeline.name, error)
            else:
                log.exception("retrain of %s failed", self.pipeline.name)
            events.append(self._record("error", f"retrain failed: {error}", {"type": type(error).__name__}))
            return "error", None
        except KeyboardInterrupt:  # a second SIGTERM or Ctrl-C: abandoned; the lease is released on the way out
            events.append(self._record("error", "retrain abandoned (interrupted)", {"type": "KeyboardInterrupt"}))
            raise
        events.extend(self._gate_events(selection, before))
        return "retrained", selection

    def _runner(self, resuming: RunRecord | None) -> RunPipeline:
        fresh = self.run or _run_fresh

        def run(store: Store, pipeline: Pipeline, params: Mapping[str, Any]) -> RunResult:
            if resuming is not None:
                try:
                    return _run_resumed(store, pipeline, params, resuming.run_id)
                except (ConfigError, ConflictError) as error:  # cannot be resumed: start it anew
                    log.warning("run %s not resumed (%s); retraining anew", resuming.run_id, error)
            return fresh(store, pipeline, params)

        return run

    def _gate_events(self, selection: Selection, before: ModelVersion | None) -> list[LoopEvent]:
        details = {"model": selection.model, "best": selection.best, "promote": selection.promote}
        details["gate"] = None if selection.gate is None else selection.gate.to_dict()
        events = [self._record("gate", selection.reason, details)]
        promoted = selection.promoted
        if promoted is None:
            return events
        reason = f"v{promoted} of {selection.model} is production: {selection.reason}"
        events.append(self._record("promotion", reason, {"version": promoted, "best": selection.best}))
        if before is not None and before.version != promoted:
            window = self.config.retrain.probation.window
            until = datetime.now(UTC) + self.config.retrain.probation.window_td
            reason = f"v{promoted} is on probation for {window} against v{before.version}"
            details = {"version": promoted, "previous": before.version, "until": until.isoformat(), "state": "started"}
            events.append(self._record("probation", reason, details))
        return events

    def _try_record_error(self, error: Exception) -> None:
        try:
            self._record("error", f"tick failed: {error}", {"type": type(error).__name__})
        except Exception:  # the store itself is what failed: the log line above is all there is
            log.warning("the error of %s could not be recorded", self.pipeline.name)

    def _record(self, kind: str, reason: str, details: dict[str, Any]) -> LoopEvent:
        model = self.pipeline.monitor.model if self.pipeline.monitor else None
        return self.loops.record(self.pipeline.name, kind, reason, model=model, details=json_safe(details))


def next_tick(now: datetime, loop: LoopConfig, interval: str | None = None, schedule: str | None = None) -> datetime:
    """When the tick after ``now`` is due: the cron ``schedule``, else every ``interval`` (the arguments first,
    then ``loop``'s keys, then every :data:`DEFAULT_INTERVAL`)."""
    cron = schedule or (None if interval else loop.schedule)
    if cron is not None:
        from croniter import croniter

        due: datetime = croniter(cron, now).get_next(datetime)
        return due
    return now + parse_duration(interval or loop.interval or DEFAULT_INTERVAL)


def _importance(production: ModelVersion | None) -> dict[str, float] | None:
    recorded = (production.config if production else {}).get(IMPORTANCE_KEY)
    if not isinstance(recorded, Mapping):
        return None
    return {str(k): float(v) for k, v in recorded.items() if isinstance(v, int | float)}


def _baseline(production: ModelVersion | None, metric: str) -> float | None:
    """The production model's ``metric`` on its test split (else validation)."""
    if production is None:
        return None
    test = metric_value(production.metrics, "test", metric)
    return test if test is not None else metric_value(production.metrics, "valid", metric)


def _baseline_sample(production: ModelVersion | None, metric: str) -> MetricSample | None:
    """The labelled rows :func:`_baseline` was measured on (None: a version trained before they were counted)."""
    if production is None:
        return None
    split = "test" if metric_value(production.metrics, "test", metric) is not None else "valid"
    counts = production.typed_config.support.get(split)
    if counts is None or "rows" not in counts:
        return None
    return MetricSample(counts["rows"], counts.get("positives"))


def _interrupted_run(store: Store, pipeline: str, previous: LeaseHolder | None) -> RunRecord | None:
    """The retrain run the lapsed lease holder left unfinished (stale or failed), by its owner; None if none."""
    if previous is None:
        return None
    for record in store.runs.list(limit=20, pipeline=pipeline):
        same = (record.owner_host, record.owner_pid) == (previous.owner_host, previous.owner_pid)
        since = record.heartbeat_at or record.started_at  # a resumed run keeps its start; its claim beats anew
        if same and since >= previous.acquired_at and record.status in ("stale", "failed"):
            return record
    return None


def _run_end(record: RunRecord) -> datetime:
    end = datetime.fromisoformat(str(record.params["end"]).replace("Z", "+00:00"))
    return end if end.tzinfo else end.replace(tzinfo=UTC)


def _run_fresh(store: Store, pipeline: Pipeline, params: Mapping[str, Any]) -> RunResult:
    from loopline.run._runner import Runner

    return Runner(store).run(pipeline, params, raise_on_error=False)


def _run_resumed(store: Store, pipeline: Pipeline, params: Mapping[str, Any], run_id: str) -> RunResult:
    from loopline.run._runner import Runner

    return Runner(store).run(pipeline, params, resume=run_id, raise_on_error=False)


def _tick_reason(signals: LoopSignals, notes: list[str]) -> str:
    parts = []
    if signals.drift is not None:
        parts.append(f"{len(signals.drift.drifted)} of {len(signals.drift.features)} features drifted")
    if signals.realised is not None:
        parts.append(f"realised {signals.metric} {signals.realised:.4f}")
    if signals.estimated is not None:
        parts.append(f"estimated {signals.metric} {signals.estimated:.4f}")
    if signals.new_rows is not None:
        parts.append(f"{signals.new_rows} new rows")
    return "; ".join(parts + notes) or "no signal available"


def _signal_details(signals: LoopSignals, notes: list[str]) -> dict[str, Any]:
    out = {f.name: getattr(signals, f.name) for f in dataclasses.fields(signals) if f.name != "drift"}
    out["drifted"] = None if signals.drift is None else list(signals.drift.drifted)
    out["importance"] = None if signals.importance is None else dict(signals.importance)
    sample = signals.baseline_sample
    out["baseline_sample"] = None if sample is None else dataclasses.asdict(sample)
    out["notes"] = notes
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in out.items()}
