"""The deployment gate: every check a challenger must pass to replace the champion, measured like for like.

Both versions are scored on the same holdout rows, timed on the same records (one at a time, interleaved, in
this process, through the serving path :meth:`~loopline.bundle.ModelBundle.predict_records`) and sized from
their stored bytes. The checks, in order: a margin per declared metric against the champion, the absolute
floors, the budgets (one-record p99 latency, bundle size) and the infrastructure validation
(:mod:`loopline.run.policy._infra`). The verdict (:class:`~loopline.core.records.GateVerdict`) keeps every
check, passed or not, with its value and threshold, and is stored on the challenger's version.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from loopline.bundle import golden_inputs
from loopline.core.config import GateConfig, MetricMargin
from loopline.core.errors import ConfigError, LooplineError, did_you_mean
from loopline.core.records import GATE_VERDICT_KEY, GOLDEN_PREDICTIONS_KEY, GateCheck, GateVerdict
from loopline.run.policy._infra import validate_infra
from loopline.train import METRIC_DIRECTION, ModelBundle

if TYPE_CHECKING:
    from loopline.store import ModelVersion, Store

MB = 1_000_000
"""Bytes in the megabyte of ``budgets.bundle_mb``."""


@dataclass(frozen=True)
class Measured:
    """One version as the gate sees it: its metrics on the evaluation set (``split`` says which), its
    one-record p99 latency (None: no rows to time) and its bundle's size."""

    version: int
    scores: Mapping[str, float]
    split: str
    latency_p99_ms: float | None
    bundle_mb: float


def run_gate(
    store: Store,
    model: str,
    challenger: ModelVersion,
    champion: ModelVersion | None,
    holdout: pl.DataFrame | None,
    gate: GateConfig,
    *,
    metric: str,
    min_improvement: float,
    run_id: str,
    scores: Mapping[int, Mapping[str, float]] | None = None,
) -> GateVerdict:
    """Measure ``challenger`` and ``champion`` like for like on ``holdout`` and judge (see the module doc); the
    verdict is stored in the challenger's config under ``gate``. ``scores``: their holdout metrics by version
    when already computed (else they are, and recorded as ``holdout_<run>`` when there is a champion); without
    holdout rows the floors read the validation metrics and no margin is checked."""
    data, bundles = _load(store, challenger, champion)
    golden = _golden(store, challenger)
    rows = holdout if holdout is not None and holdout.height else None
    key = f"holdout_{run_id[:8]}"
    measured_scores = dict(scores or {})
    if rows is not None:
        for version, bundle in bundles.items():
            if version not in measured_scores:
                measured_scores[version] = bundle.evaluate(rows)
                if champion is not None:  # a comparison's record; alone, the holdout is the version's own test
                    store.models.record_evaluation(model, version, key, dict(measured_scores[version]))
    timing_rows = rows if rows is not None else (None if golden is None else golden_inputs(golden))
    latencies = one_record_p99_ms(list(bundles.values()), timing_rows, gate.latency_records)
    p99 = dict(zip(bundles, latencies, strict=True))

    def measured(version: ModelVersion) -> Measured:
        if rows is not None:
            own, split = measured_scores.get(version.version, {}), key
        else:
            own, split = version.metrics.get("valid") or {}, "valid"
        size = len(data[version.version]) / MB if version.version in data else math.nan
        return Measured(version.version, own, split, p99.get(version.version), size)

    infra = validate_infra(data[challenger.version], golden) if gate.infra_validation else None
    evaluated_on = f"{key} ({rows.height} rows)" if rows is not None else "valid (no holdout rows)"
    verdict = judge(
        measured(challenger),
        None if champion is None else measured(champion),
        gate,
        metric=metric,
        min_improvement=min_improvement,
        infra=None if infra is None else (infra.passed, infra.detail, infra.seconds),
        evaluated_on=evaluated_on,
        run_id=run_id,
    )
    store.models.record_config(model, challenger.version, GATE_VERDICT_KEY, verdict.to_dict())
    return verdict


def validate_version(
    store: Store, model: str, version: ModelVersion, *, champion: int | None, made: str, run_id: str
) -> GateVerdict:
    """The infrastructure validation alone of ``version``, a version made after the gate judged another
    (``made`` says how: the refit of the gated version, say), stored on it as its verdict: what is promoted has
    loaded and reproduced its golden predictions in a fresh process, whichever version the gate measured."""
    infra = validate_infra(store.artifacts.get_bytes(version.bundle_digest), _golden(store, version))
    check = GateCheck("infra_validation", "infra", infra.passed, value=round(infra.seconds, 3), detail=infra.detail)
    verdict = GateVerdict(version.version, champion, (check,), made, run_id)
    store.models.record_config(model, version.version, GATE_VERDICT_KEY, verdict.to_dict())
    return verdict


def with_suspicion(store: Store, model: str, verdict: GateVerdict, reason: str) -> GateVerdict:
    """``verdict`` with a failed ``suspicion`` check (the training diagnostics' refusal, ``reason``), stored on
    the challenger in place of the verdict without it."""
    check = GateCheck("suspicion", "suspicion", False, detail=reason)
    refused = dataclasses.replace(verdict, checks=(*verdict.checks, check))
    store.models.record_config(model, verdict.challenger, GATE_VERDICT_KEY, refused.to_dict())
    return refused


def _load(
    store: Store, challenger: ModelVersion, champion: ModelVersion | None
) -> tuple[dict[int, bytes], dict[int, ModelBundle]]:
    """The bundles' bytes and loaded bundles by version; a champion that no longer loads is left out (it is
    judged on what it has: nothing to time, maybe no scores)."""
    data = {challenger.version: store.artifacts.get_bytes(challenger.bundle_digest)}
    bundles = {challenger.version: ModelBundle.from_bytes(data[challenger.version])}
    if champion is not None:
        try:
            data[champion.version] = store.artifacts.get_bytes(champion.bundle_digest)
            bundles[champion.version] = ModelBundle.from_bytes(data[champion.version])
        except LooplineError:
            data.pop(champion.version, None)
    return data, bundles


def _golden(store: Store, version: ModelVersion) -> pl.DataFrame | None:
    digest = version.config.get(GOLDEN_PREDICTIONS_KEY)
    return None if not digest else store.artifacts.get_table(str(digest))


def judge(
    challenger: Measured,
    champion: Measured | None,
    gate: GateConfig,
    *,
    metric: str,
    min_improvement: float,
    infra: tuple[bool, str, float] | None,
    evaluated_on: str,
    run_id: str | None = None,
) -> GateVerdict:
    """The verdict on ``challenger`` from what was measured; ``infra`` is the infrastructure validation's
    (passed, detail, seconds), None when it is off."""
    checks: list[GateCheck] = []
    for name, margin in gate.margins(metric, min_improvement).items():
        checks.append(margin_check(name, margin, challenger, champion))
    checks += [floor_check(name, floor, challenger) for name, floor in gate.floors.items()]
    checks.append(_budget("latency_p99_ms", challenger.latency_p99_ms, gate.budgets.latency_p99_ms, champion))
    checks.append(_budget("bundle_mb", challenger.bundle_mb, gate.budgets.bundle_mb, champion))
    if infra is None:
        checks.append(GateCheck("infra_validation", "infra", None, detail="off (infra_validation: false)"))
    else:
        passed, detail, seconds = infra
        checks.append(GateCheck("infra_validation", "infra", passed, value=round(seconds, 3), detail=detail))
    return GateVerdict(
        challenger.version, None if champion is None else champion.version, tuple(checks), evaluated_on, run_id
    )


def _higher(metric: str) -> bool:
    return METRIC_DIRECTION.get(metric, True)


def margin_check(name: str, margin: MetricMargin, challenger: Measured, champion: Measured | None) -> GateCheck:
    """The challenger against the champion on ``name``, in the metric's direction, by ``margin``."""
    check = f"{name} margin"
    new = _value(challenger.scores, name)
    if champion is None:
        return GateCheck(check, "margin", None, new, detail="no champion: nothing to beat")
    if challenger.split == "valid":
        return GateCheck(check, "margin", None, new, detail="no holdout rows to score both versions on")
    old = _value(champion.scores, name)
    if new is None or math.isnan(new):
        return GateCheck(check, "margin", False, None, None, old, f"the challenger has no {name} on {challenger.split}")
    if old is None or math.isnan(old):
        return GateCheck(check, "margin", True, new, None, None, f"the champion has no {name}: nothing to beat")
    higher = _higher(name)
    sign = 1.0 if higher else -1.0
    gain = sign * (new - old)
    direction = "higher" if higher else "lower"
    summary = f"{new:.4f} vs champion {old:.4f} ({direction} is better, gain {gain:+.4f}"
    if margin.max_regression is not None:
        allowed = margin.max_regression
        passed = gain >= -allowed
        return GateCheck(
            check, "margin", passed, new, old - sign * allowed, old, f"{summary}; may regress by at most {allowed:g})"
        )
    needed = margin.min_improvement or 0.0
    passed = gain > needed
    return GateCheck(check, "margin", passed, new, old + sign * needed, old, f"{summary}; must exceed {needed:g})")


def floor_check(name: str, floor: float, challenger: Measured) -> GateCheck:
    """The challenger's ``name`` at least ``floor`` (at most, when lower is better)."""
    new = _value(challenger.scores, name)
    higher = _higher(name)
    bound = "at least" if higher else "at most"
    if new is None or math.isnan(new):
        return GateCheck(
            f"{name} floor", "floor", False, None, floor, detail=f"the challenger has no {name} on {challenger.split}"
        )
    passed = new >= floor if higher else new <= floor
    return GateCheck(f"{name} floor", "floor", passed, new, floor, detail=f"{new:.4f}, must be {bound} {floor:g}")


def _budget(name: str, value: float | None, budget: float | None, champion: Measured | None) -> GateCheck:
    old = None if champion is None else getattr(champion, name)
    old = None if old is None or math.isnan(old) else old
    unit = " ms" if name == "latency_p99_ms" else " MB"
    versus = "" if old is None else f" (champion {old:.3f}{unit})"
    if value is None:
        passed = None if budget is None else False
        return GateCheck(name, "budget", passed, None, budget, old, "no rows to time one record at a time")
    if budget is None:
        return GateCheck(name, "budget", None, value, None, old, f"{value:.3f}{unit}{versus}; no budget declared")
    passed = value <= budget
    return GateCheck(name, "budget", passed, value, budget, old, f"{value:.3f}{unit}{versus}, budget {budget:g}{unit}")


def _value(scores: Mapping[str, Any], name: str) -> float | None:
    value = scores.get(name)
    return None if value is None else float(value)


def one_record_p99_ms(bundles: Sequence[ModelBundle], rows: pl.DataFrame | None, records: int) -> list[float | None]:
    """Each bundle's p99 milliseconds of a one-record :meth:`~loopline.bundle.ModelBundle.predict_records` on
    the same ``records`` rows of ``rows`` (repeated when there are fewer), one thread as a served request, the
    bundles interleaved record by record so that the machine's noise falls on all alike. None without rows."""
    if rows is None or rows.height == 0:
        return [None] * len(bundles)
    from threadpoolctl import threadpool_limits

    index = np.arange(records) % rows.height
    per_bundle = [_records(bundle, rows, index) for bundle in bundles]
    times = np.zeros((len(bundles), records))
    with threadpool_limits(1):
        for bundle, own in zip(bundles, per_bundle, strict=True):
            bundle.compiled()
            for record in own[: min(20, records)]:  # warm: caches, lazy imports
                bundle.predict_records([record])
        for i in range(records):
            for b, bundle in enumerate(bundles):
                started = time.perf_counter_ns()
                bundle.predict_records([per_bundle[b][i]])
                times[b, i] = time.perf_counter_ns() - started
    return [float(np.percentile(row, 99)) / 1e6 for row in times]


def _records(bundle: ModelBundle, rows: pl.DataFrame, index: np.ndarray) -> list[dict[str, Any]]:
    names = [str(item["name"]) for item in bundle.input_schema if item.get("name") in rows.columns]
    return rows.select(names)[index].to_dicts()


def check_gate_metrics(gate: GateConfig, key: str) -> None:
    """ConfigError (with a did-you-mean) for a metric of ``gate.metrics`` or ``gate.floors`` loopline does not
    compute; ``key`` is where the gate sits in the config."""
    for section, names in (("metrics", gate.metrics), ("floors", gate.floors)):
        for name in names:
            if name not in METRIC_DIRECTION:
                known = f"Metrics: {', '.join(sorted(METRIC_DIRECTION))}."
                hint = did_you_mean(name, METRIC_DIRECTION) or known
                raise ConfigError(f"unknown metric {name!r} in {key}.{section}.", key=f"{key}.{section}", hint=hint)
