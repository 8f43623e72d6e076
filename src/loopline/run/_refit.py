"""Refit the retrain's winner on all of its window and register it with its lineage.

The decision whether to refit is the loop policy's (:mod:`loopline.run.policy`); this module finds the
train step that produced the gated version in the retrain run, reads that step's train and valid splits back
from the run, and refits through :func:`loopline.train.refit_candidate` (the train step's own trainer) on train,
valid and, by default, the gate's holdout too: the newest period the decision was scored on is data the
promoted model should have learnt from. The refitted version is registered as a new candidate whose
``valid``/``test``/``holdout_*`` metrics are the gated version's, with ``refit_train`` (its own in-sample
metrics) and, when the holdout was kept out (``monitor.retrain.refit_holdout: false``), ``refit_holdout`` (the
holdout it never saw).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import polars as pl

from loopline.bundle import check_servable, golden_sample
from loopline.core.hashing import fingerprint
from loopline.core.records import Candidate, RefitDecision, RefitLineage, Timings, TrainReport
from loopline.run.steps._models import TrainConfig, frame_hash
from loopline.train import limited_threads, refit_candidate

if TYPE_CHECKING:
    from collections.abc import Mapping

    from loopline.core.pipeline import Pipeline
    from loopline.run._runner import RunResult
    from loopline.store import ModelVersion, Store


def train_step_of(
    pipeline: Pipeline, result: RunResult, select: str, candidates: list[int], version: int
) -> str | None:
    """The train step of ``result`` whose candidate the select step ``select`` registered as ``version``
    (``candidates``: the versions it registered, in the order of its candidate inputs); None when another
    kind of step produced it, or it is not among them."""
    names = [ref for ref in pipeline.steps[select].inputs if "." not in ref and _is_candidate(result, ref)]
    for name, registered in zip(names, candidates, strict=False):
        if registered == version:
            return name if pipeline.steps[name].type == "train" else None
    return None


def _is_candidate(result: RunResult, step: str) -> bool:
    outcome = result.steps.get(step)
    if outcome is None or "report" not in outcome.outputs:
        return False
    return TrainReport.is_one(result.output(step, "report"))


def refit_version(
    store: Store,
    pipeline: Pipeline,
    params: Mapping[str, Any],
    result: RunResult,
    step: str,
    gated: ModelVersion,
    holdout: pl.DataFrame | None,
    *,
    with_holdout: bool = True,
) -> RefitDecision:
    """Refit ``gated`` (trained by train step ``step`` of ``result``) on its train + valid splits and, when
    ``with_holdout``, the gate's ``holdout``; register the refit under the same model name with
    :class:`RefitLineage`. Raises what training raises."""
    spec = pipeline.steps[step]
    train, valid = (_table(result, ref) for ref in spec.inputs[:2])
    config = pipeline.bind(dict(params))[step].config
    if not isinstance(config, TrainConfig) or train is None or valid is None:
        return RefitDecision(False, f"step {step!r} has no train and valid tables to refit on", of=gated.version)
    training = Timings.from_dict(gated.timings).training
    rows = {"train": train.height, "valid": valid.height}
    newest = valid
    unseen = holdout is not None and holdout.height > 0
    if with_holdout and holdout is not None and unseen:
        columns = [column for column in valid.columns if column in holdout.columns]
        newest = pl.concat([valid.select(columns), holdout.select(columns)], how="vertical_relaxed")
        rows["holdout"], unseen = holdout.height, False
    with limited_threads(config.threads):
        fitted, rounds = refit_candidate(train, newest, config, gated.params, training)
    bundle = fitted.bundle
    data = fingerprint(frame_hash(train), frame_hash(newest), "refit")
    metrics = {**gated.metrics, "refit_train": fitted.metrics["train"]}
    if unseen and holdout is not None:
        metrics["refit_holdout"] = bundle.evaluate(holdout)
    report = replace(
        fitted.report(config, data_fingerprint=data),
        metrics=metrics,
        rows={"train": train.height + newest.height, "valid": 0},
        refit=RefitLineage(gated.version, rows, rounds, data),
        importance=gated.typed_config.importance,  # measured on valid while it was unseen; the refit fits on it
        support=gated.typed_config.support,  # the rows the gated version's valid/test metrics (kept) came from
    )
    reference = pl.concat([train, newest], how="vertical_relaxed").select(config.features())
    reference = reference.sample(n=min(config.reference_rows, reference.height), seed=config.seed)
    repository = store.models.with_check(check_servable)
    version = repository.register_candidate(
        gated.name,
        Candidate(bundle.to_bytes(), reference, report, golden=golden_sample(bundle, newest, seed=config.seed)),
        run_id=result.run_id,
    )
    pinned = "" if rounds is None else f", the {rounds} boosting rounds of the gated fit"
    splits = " + ".join(rows)
    fitted_on = f"{' + '.join(str(count) for count in rows.values())} rows{pinned}"
    why = f"refitted v{gated.version} on {splits} ({fitted_on}) as v{version.version}"
    return RefitDecision(True, why, of=gated.version, version=version.version)


def _table(result: RunResult, ref: str) -> pl.DataFrame | None:
    producer, _, output = ref.partition(".")
    value = result.output(producer, output or None)
    return value if isinstance(value, pl.DataFrame) else None
