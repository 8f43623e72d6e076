"""Two versions of a model side by side: what changed in params and how each metric moved."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopline.bundle import METRIC_DIRECTION

if TYPE_CHECKING:
    from loopline.store import Store
    from loopline.store.models import ModelVersion

_MISSING = object()


def compare_models(store: Store, name: str, a: int, b: int) -> dict[str, Any]:
    """Versions ``a`` and ``b`` of ``name``: their summaries, params and metrics per split.

    ``params`` rows are ``{"param", "a", "b", "changed"}``; ``metrics`` rows are ``{"split", "metric",
    "a", "b", "delta", "verdict"}`` where ``delta`` is b - a and ``verdict`` says whether b is
    ``better``, ``worse`` or ``same`` given the metric's direction (None: not comparable).
    """
    first, second = store.models.get(name, a), store.models.get(name, b)
    return {
        "name": name,
        "a": _summary(store, first),
        "b": _summary(store, second),
        "params": param_rows(first.params, second.params),
        "metrics": metric_rows(first.metrics, second.metrics),
    }


def param_rows(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per parameter of either version, marked ``changed`` when the values differ."""
    rows = []
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key, _MISSING), b.get(key, _MISSING)
        rows.append({"param": key, "a": _plain(left), "b": _plain(right), "changed": left is _MISSING or left != right})
    return rows


def metric_rows(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (split, metric) of either version, with b - a and a direction-aware verdict."""
    rows = []
    for split in sorted(set(a) | set(b)):
        left, right = a.get(split, {}), b.get(split, {})
        for metric in sorted(set(left) | set(right)):
            x, y = left.get(metric), right.get(metric)
            delta = y - x if _number(x) and _number(y) else None
            rows.append(
                {"split": split, "metric": metric, "a": x, "b": y, "delta": delta, "verdict": verdict(metric, delta)}
            )
    return rows


def verdict(metric: str, delta: float | None) -> str | None:
    """``better``/``worse``/``same`` for a change of ``delta`` in ``metric`` (None: unknown metric or delta)."""
    if delta is None or metric not in METRIC_DIRECTION:
        return None
    if delta == 0:
        return "same"
    return "better" if (delta > 0) == METRIC_DIRECTION[metric] else "worse"


def data_versions(store: Store, run_id: str | None) -> list[dict[str, Any]]:
    """The dataset versions the run that trained a model ingested (its ingest steps' ``version`` outputs)."""
    if run_id is None:
        return []
    return [
        store.artifacts.get_json(s.outputs["version"]["digest"])
        for s in store.runs.get(run_id).steps
        if s.type == "ingest" and "version" in s.outputs
    ]


def _summary(store: Store, found: ModelVersion) -> dict[str, Any]:
    return {
        "version": found.version,
        "stage": found.stage,
        "algorithm": found.algorithm,
        "data_fingerprint": found.data_fingerprint,
        "data_versions": [
            {"dataset": d["dataset"], "version": d["version"]} for d in data_versions(store, found.run_id)
        ],
        "created_at": found.created_at.isoformat(),
    }


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    return None if value is _MISSING else value
