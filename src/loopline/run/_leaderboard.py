"""The leaderboard: a model's candidates ranked by one metric on one split.

The select step ranks the candidates of its run with :func:`rank_candidates` (and promotes the first);
``loopline run`` prints that ranking and ``loopline models leaderboard`` rebuilds it from the store with
:func:`run_leaderboard`. One ranking rule for both: best first in the metric's direction
(:data:`METRIC_DIRECTION`; unknown metrics: higher is better), ties in the order given (registration
order), candidates without the metric last and unranked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from loopline.core.errors import DataError, NotFoundError
from loopline.run._values import load_value
from loopline.train import METRIC_DIRECTION

if TYPE_CHECKING:
    from loopline.store import ModelVersion, Store

SPLITS = ("valid", "test", "cv")
"""The splits a leaderboard may rank by (``cv``: the mean over the cross-validation folds)."""


class Candidate(Protocol):
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
    candidates: Sequence[Candidate], metric: str, *, split: str = "valid", promoted: int | None = None
) -> list[dict[str, Any]]:
    """One JSON-ready row per version, best first (see the module docstring; a version listed twice
    counts once).

    A row holds ``rank`` (1..n; None without the metric), ``version``, ``algorithm``, ``score`` (the
    metric on ``split``), ``valid``, ``test`` and ``cv`` (the metric on each split, None where absent),
    ``cv_std`` (from the version's config), ``fit_s``, ``stopped`` and ``iterations`` (fits trained
    in rounds; else None), ``best`` (rank 1) and ``promoted`` (the version is ``promoted``).
    """
    unique: dict[int, Candidate] = {}
    for candidate in candidates:
        unique.setdefault(candidate.version, candidate)
    sign = -1.0 if METRIC_DIRECTION.get(metric, True) else 1.0
    scored = [(c, _value(c.metrics, split, metric)) for c in unique.values()]
    ranked = sorted(((c, v) for c, v in scored if v is not None), key=lambda item: sign * item[1])  # stable
    rows = [_row(c, metric, score, rank, promoted) for rank, (c, score) in enumerate(ranked, start=1)]
    return rows + [_row(c, metric, None, None, promoted) for c, v in scored if v is None]


def _row(
    candidate: Candidate, metric: str, score: float | None, rank: int | None, promoted: int | None
) -> dict[str, Any]:
    training = candidate.timings.get("training") or {}
    cv_std = ((candidate.config.get("cv") or {}).get("std") or {}).get(metric)
    return {
        "rank": rank,
        "version": candidate.version,
        "algorithm": candidate.algorithm,
        "score": score,
        "valid": _value(candidate.metrics, "valid", metric),
        "test": _value(candidate.metrics, "test", metric),
        "cv": _value(candidate.metrics, "cv", metric),
        "cv_std": cv_std,
        "fit_s": candidate.timings.get("fit_s"),
        "stopped": training.get("stopped"),
        "iterations": training.get("iterations"),
        "best": rank == 1,
        "promoted": promoted is not None and candidate.version == promoted,
    }


def _value(metrics: dict[str, Any], split: str, metric: str) -> float | None:
    value = (metrics.get(split) or {}).get(metric)
    return None if value is None else float(value)


def run_leaderboard(
    store: Store, name: str, *, run_id: str | None = None, metric: str | None = None, split: str = "valid"
) -> dict[str, Any]:
    """The leaderboard of model ``name`` in one run: ``{"model", "run_id", "metric", "split", "rows"}``.

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
        candidates = [store.models.get(name, int(v)) for v in selected["versions"]]
    else:
        candidates = sorted((v for v in versions if v.run_id == run_id), key=lambda v: v.version)
    if not candidates:
        raise NotFoundError(
            f"run {run_id} registered no version of model {name!r}.",
            hint=f"Runs that did: {', '.join(sorted({v.run_id for v in versions if v.run_id})) or 'none'}.",
        )
    metric = metric or str((selected or {}).get("metric") or _default_metric(candidates, split))
    _check_metric(candidates, split, metric)
    promoted = (selected or {}).get("promoted")
    return {
        "model": name,
        "run_id": run_id,
        "metric": metric,
        "split": split,
        "rows": rank_candidates(candidates, metric, split=split, promoted=promoted),
    }


def _latest_run(name: str, versions: Sequence[ModelVersion]) -> str:
    by_run = [v for v in versions if v.run_id]
    if not by_run:
        raise NotFoundError(
            f"no version of model {name!r} was registered by a pipeline run.",
            hint="Rank the versions of a run: run a pipeline with a select step for this model.",
        )
    return str(max(by_run, key=lambda v: v.version).run_id)


def _selection(store: Store, name: str, run_id: str) -> dict[str, Any] | None:
    """What the run's last select step for ``name`` compared: versions, metric, promoted version."""
    found = None
    for step in store.runs.get(run_id).steps:
        if step.type != "select" or step.status not in ("succeeded", "reused") or "out" not in step.outputs:
            continue
        out = load_value(store, step.outputs["out"])
        if isinstance(out, dict) and out.get("model") == name:
            found = {
                "versions": [c["version"] for c in out.get("candidates", [])],
                "metric": step.config.get("metric"),
                "promoted": out.get("best") if out.get("promote") else None,
            }
    return found


def _default_metric(candidates: Sequence[Candidate], split: str) -> str:
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


def _check_metric(candidates: Sequence[Candidate], split: str, metric: str) -> None:
    if any(_value(c.metrics, split, metric) is not None for c in candidates):
        return
    known = sorted({m for c in candidates for m in (c.metrics.get(split) or {})})
    raise DataError(
        f"no candidate has a {split} metric {metric!r}.",
        hint=f"Use --metric with one of: {', '.join(known)}." if known else "Rank by another split: --split valid.",
    )
