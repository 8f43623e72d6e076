"""The leaderboard of a run: the candidates its select step compared, looked up in the store.

The select step ranks the candidates of its run with the loop policy's
:func:`~loopline.run.policy.rank_candidates` (and promotes the first); ``loopline run`` prints that
ranking and ``loopline models leaderboard`` rebuilds it from the store with :func:`run_leaderboard`,
with the same rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loopline.core.errors import DataError, NotFoundError
from loopline.core.records import Leaderboard, Selection
from loopline.run._values import load_value
from loopline.run.policy import Rankable, metric_value, rank_candidates

if TYPE_CHECKING:
    from loopline.store import ModelVersion, Store

SPLITS = ("valid", "test", "cv")
"""The splits a leaderboard may rank by (``cv``: the mean over the cross-validation folds)."""


def run_leaderboard(
    store: Store, name: str, *, run_id: str | None = None, metric: str | None = None, split: str = "valid"
) -> Leaderboard:
    """The :class:`~loopline.core.records.Leaderboard` of model ``name`` in one run.

    ``run_id`` defaults to the latest run that registered versions of ``name``. The candidates are those
    the run's select step compared (including versions an earlier run registered first), or, without
    such a step, the versions the run registered. ``metric`` defaults to the select step's metric (else
    roc_auc, rmse or the first one recorded); ``promoted`` marks the version that select promoted.
    NotFoundError when the model or run has no versions; DataError for a metric no candidate has.
    """
    if split not in SPLITS:
        raise DataError(f"cannot rank by split {split!r}.", hint=f"Use one of: {', '.join(SPLITS)}.")
    store.models.get(name)  # NotFoundError (with did-you-mean) for a model that does not exist
    versions = store.models.list(name)
    run_id = run_id or _latest_run(name, versions)
    selected = _selection(store, name, run_id)
    if selected is not None:
        candidates = [store.models.get(name, v) for v in selected.versions]
    else:
        candidates = sorted((v for v in versions if v.run_id == run_id), key=lambda v: v.version)
    if not candidates:
        raise NotFoundError(
            f"run {run_id} registered no version of model {name!r}.",
            hint=f"Runs that did: {', '.join(sorted({v.run_id for v in versions if v.run_id})) or 'none'}.",
        )
    metric = metric or (selected and selected.metric) or _default_metric(candidates, split)
    _check_metric(candidates, split, metric)
    promoted = None if selected is None else selected.promoted
    rows = rank_candidates(candidates, metric, split=split, promoted=promoted)
    return Leaderboard(model=name, run_id=run_id, metric=metric, split=split, rows=tuple(rows))


def _latest_run(name: str, versions: Sequence[ModelVersion]) -> str:
    by_run = [v for v in versions if v.run_id]
    if not by_run:
        raise NotFoundError(
            f"no version of model {name!r} was registered by a pipeline run.",
            hint="Rank the versions of a run: run a pipeline with a select step for this model.",
        )
    return str(max(by_run, key=lambda v: v.version).run_id)


@dataclass(frozen=True)
class _Compared:
    """What a run's select step compared: the versions, the step's metric (None: its default) and the
    version it (or the retrain gate after it) promoted."""

    versions: tuple[int, ...]
    metric: str | None
    promoted: int | None


def _selection(store: Store, name: str, run_id: str) -> _Compared | None:
    """What the run's last select step for ``name`` compared."""
    found = None
    for step in store.runs.get(run_id).steps:
        if step.type != "select" or step.status not in ("succeeded", "reused") or "out" not in step.outputs:
            continue
        out = load_value(store, step.outputs["out"])
        if Selection.is_one(out) and out.get("model") == name:
            selection = Selection.from_dict(out, where=f"steps.{step.step}")
            promoted = selection.promoted
            if promoted is None and step.config.get("promote") == "never":  # a retrain: its gate promotes
                promoted = _promoted_since(store, name, selection.best)
            metric = step.config.get("metric")
            found = _Compared(
                versions=tuple(c.version for c in selection.candidates),
                metric=None if metric is None else str(metric),
                promoted=promoted,
            )
    return found


def _promoted_since(store: Store, name: str, version: int) -> int | None:
    """``version`` if the audit trail shows it, or its refit, promoted (by the retrain gate
    or by hand), else None."""
    promoted = {e["to_version"] for e in store.models.events(name) if e["action"] == "promote"}
    if version in promoted:
        return version
    lineage = [v.typed_config.refit for v in store.models.list(name) if v.version in promoted]
    return version if any(refit is not None and refit.of == version for refit in lineage) else None


def _default_metric(candidates: Sequence[Rankable], split: str) -> str:
    names = sorted({str(m) for c in candidates for m in (c.metrics.get(split) or {})})
    for preferred in ("roc_auc", "rmse"):
        if preferred in names:
            return preferred
    if not names:
        raise DataError(
            f"no candidate has metrics on split {split!r}.",
            hint="Rank by another split: --split valid.",
        )
    return names[0]


def _check_metric(candidates: Sequence[Rankable], split: str, metric: str) -> None:
    if any(metric_value(c.metrics, split, metric) is not None for c in candidates):
        return
    known = sorted({m for c in candidates for m in (c.metrics.get(split) or {})})
    raise DataError(
        f"no candidate has a {split} metric {metric!r}.",
        hint=f"Use --metric with one of: {', '.join(known)}." if known else "Rank by another split: --split valid.",
    )
