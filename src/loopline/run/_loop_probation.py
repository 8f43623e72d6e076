"""The probation of a version the loop promoted: evidence from the traffic it served, then the policy decides.

Once the loop promotes a version, the version is on probation for ``monitor.retrain.probation.window``. Each
tick gathers the evidence on the predictions it served since its promotion, and
:func:`loopline.run.policy.probation` decides (and rolls back through the store, the reason in its audit trail):

- the promoted version's score: its own served predictions against their labels (realised);
- the previous version's score: the previous bundle run on the same logged inputs, against the same labels;
- with fewer labelled rows than ``probation.min_rows``, both are estimated instead (classifiers: each
  version's estimator on its own probabilities for those inputs), over all the rows served.

Each version's ``error_rate`` is the share of its requests that failed (the service's failure counts, flushed
to the store with its prediction log: :meth:`~loopline.store.PredictionLog.error_counts`): the promoted version's
over [since, until), the previous version's over the same length of time before ``since`` (0 without traffic
then). The error-rate rule needs no label and no estimate: a version that fails on part of its traffic is rolled
back even when its scores cannot be compared (they are NaN then), and even when it answered nothing at all.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import polars as pl

from loopline.bundle import ModelBundle
from loopline.core.errors import LooplineError
from loopline.core.records import ProbationDecision, ProbationEvidence
from loopline.monitor import estimated_performance, performance_figures
from loopline.run._window_accuracy import accuracy_context
from loopline.run.policy import probation

if TYPE_CHECKING:
    from loopline.core.config import ProbationConfig
    from loopline.store import ModelVersion, Store

PROBATION_ROWS = 50_000
"""The newest served predictions a probation check reads at most."""

PROBABILITY_PREFIX = "probability:"


@dataclass(frozen=True)
class ProbationCheck:
    """One probation check: the ``decision`` (None when there was nothing to decide on: ``note`` says why)."""

    decision: ProbationDecision | None
    note: str


def check_probation(
    store: Store,
    promoted: ModelVersion,
    previous: ModelVersion,
    since: datetime,
    until: datetime,
    metric: str,
    config: ProbationConfig,
) -> ProbationCheck:
    """Gather the evidence of ``promoted`` against ``previous`` on the predictions ``promoted`` served in
    [since, until) and apply :func:`~loopline.run.policy.probation` (which may roll back)."""
    failed, requests = _error_rate(store, promoted, since, until)
    before, _ = _error_rate(store, previous, since - (until - since), since)
    frame = _served(store, promoted, since, until)
    if frame is None and not requests:
        return ProbationCheck(None, f"v{promoted.version} served no prediction since its promotion")
    note = f"v{promoted.version} answered no request since its promotion"
    try:
        evidence = note if frame is None else _evidence(store, promoted, previous, frame, metric, config.min_rows)
    except LooplineError as error:  # a bundle that cannot be loaded, inputs it cannot score
        evidence = f"probation not checked: {error}"
    if isinstance(evidence, str):
        if failed - before <= config.max_error_rate_increase:
            return ProbationCheck(None, evidence)
        evidence = (  # no score to compare, but the error rate alone decides
            ProbationEvidence(promoted.version, metric, math.nan, requests),
            ProbationEvidence(previous.version, metric, math.nan, requests),
        )
    ours = dataclasses.replace(evidence[0], error_rate=failed)
    theirs = dataclasses.replace(evidence[1], error_rate=before)
    if failed - before > config.max_error_rate_increase:  # the error rule counts requests, failed ones included
        ours, theirs = (dataclasses.replace(e, rows=max(e.rows, requests)) for e in (ours, theirs))
    return ProbationCheck(probation(store, promoted.name, ours, theirs, config), "")


def _error_rate(store: Store, version: ModelVersion, start: datetime, end: datetime) -> tuple[float, int]:
    """The share of ``version``'s requests in [start, end) that failed (0.0 without any), and how many it got
    (each answered record counts as one request: the log holds a row per record)."""
    failed = sum(store.predictions.error_counts(version.name, start, end, version=version.version).values())
    answered = store.predictions.prediction_count(version.name, start, end, version=version.version)
    requests = failed + answered
    return (failed / requests if requests else 0.0), requests


def _served(store: Store, promoted: ModelVersion, since: datetime, until: datetime) -> pl.DataFrame | None:
    frames = [
        chunk.filter(pl.col("model_version") == promoted.version)
        for chunk in store.feedback.labelled(promoted.name, since, until)
    ]
    frames = [frame for frame in frames if frame.height]
    if not frames:
        return None
    return pl.concat(frames, how="diagonal_relaxed").tail(PROBATION_ROWS)


def _evidence(
    store: Store, promoted: ModelVersion, previous: ModelVersion, frame: pl.DataFrame, metric: str, min_rows: int
) -> tuple[ProbationEvidence, ProbationEvidence] | str:
    bundle = _bundle(store, previous)
    challenger = _rescored(bundle, frame)
    labelled = frame.filter(pl.col("label").is_not_null()).height
    if labelled >= min_rows:
        classes = bundle.classes
        ours = performance_figures(frame, bundle.task, classes, min_labels=1).metrics.get(metric)
        theirs = performance_figures(challenger, bundle.task, classes, min_labels=1).metrics.get(metric)
        if ours is not None and theirs is not None:
            return (
                ProbationEvidence(promoted.version, metric, ours, labelled),
                ProbationEvidence(previous.version, metric, theirs, labelled),
            )
    return _estimated(store, promoted, previous, frame, challenger, metric, labelled)


def _estimated(
    store: Store,
    promoted: ModelVersion,
    previous: ModelVersion,
    frame: pl.DataFrame,
    challenger: pl.DataFrame,
    metric: str,
    labelled: int,
) -> tuple[ProbationEvidence, ProbationEvidence] | str:
    scores = []
    for version, rows in ((promoted, frame), (previous, challenger)):
        context = accuracy_context(store, version)
        if context.estimator is None or context.classes is None:
            return f"only {labelled} labelled rows and no estimate for v{version.version}: {context.estimation_skipped}"
        estimate = estimated_performance(context.estimator, rows, context.classes).metrics.get(metric)
        if estimate is None:
            estimated = "accuracy, f1, precision, recall, roc_auc; multi-class: accuracy, f1_macro, roc_auc"
            return f"only {labelled} labelled rows, and {metric!r} is not estimated ({estimated})"
        scores.append(estimate.value)
    return (
        ProbationEvidence(promoted.version, metric, scores[0], frame.height, estimated=True),
        ProbationEvidence(previous.version, metric, scores[1], frame.height, estimated=True),
    )


def _bundle(store: Store, version: ModelVersion) -> ModelBundle:
    return ModelBundle.from_bytes(store.artifacts.get_bytes(version.bundle_digest))


def _rescored(bundle: ModelBundle, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with ``bundle``'s prediction and probabilities for its logged inputs in place of the served ones."""
    out = bundle.predict_table(frame)
    served = [c for c in frame.columns if c.startswith(PROBABILITY_PREFIX)]
    rescored = frame.drop(served).with_columns(pl.Series("prediction", out["prediction"]))
    if "probability" in out and bundle.classes is not None:
        columns = {f"{PROBABILITY_PREFIX}{c}": out["probability"][:, i] for i, c in enumerate(bundle.classes)}
        rescored = rescored.with_columns(**columns)
    return rescored
