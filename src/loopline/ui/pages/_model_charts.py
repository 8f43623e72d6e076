"""ECharts options of the model pages: a metric per version, and learning curves (one or several overlaid)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

CURVE_POINTS = 500
"""A learning curve is drawn with at most this many points (every k-th round, the last one always)."""


def curve_points(curve: Mapping[str, Sequence[float]] | None) -> dict[str, list[list[float]]] | None:
    """A recorded learning curve (``{"train": [...], "valid": [...]}``, one value per round) as ``[round,
    value]`` points from round 1, thinned to :data:`CURVE_POINTS`; None when none was recorded."""
    if not curve:
        return None
    out = {}
    for key, values in curve.items():
        step = max(1, -(-len(values) // CURVE_POINTS))
        kept = list(range(0, len(values), step))
        if kept and kept[-1] != len(values) - 1:
            kept.append(len(values) - 1)
        out[str(key)] = [[i + 1, float(values[i])] for i in kept]
    return out or None


def metric_chart(series: Sequence[Mapping[str, Any]], main: Mapping[str, Any]) -> dict[str, Any]:
    """The main metric of each version (``series``: ``{"version", "value"}``, oldest first) as a line."""
    label = f"{main['split']} {main['metric']}"
    return {
        "title": {"text": f"{label} per version", "left": "center", "textStyle": {"fontSize": 13}},
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 60, "right": 30, "top": 40, "bottom": 40},
        "xAxis": {"type": "category", "name": "version", "data": [f"v{p['version']}" for p in series]},
        "yAxis": {"type": "value", "name": main["metric"], "scale": True},
        "series": [
            {"type": "line", "name": label, "data": [p["value"] for p in series], "connectNulls": True, "symbolSize": 6}
        ],
    }


def curves_chart(title: str, curves: Mapping[str, Sequence[Sequence[float]]]) -> dict[str, Any]:
    """Named curves of ``[round, value]`` points on one chart."""
    return {
        "title": {"text": title, "left": "center", "textStyle": {"fontSize": 13}},
        "tooltip": {"trigger": "axis"},
        "legend": {"bottom": 0, "type": "scroll"},
        "grid": {"left": 60, "right": 30, "top": 40, "bottom": 60},
        "xAxis": {"type": "value", "name": "round", "minInterval": 1},
        "yAxis": {"type": "value", "scale": True},
        "series": [
            {"type": "line", "name": name, "data": [list(p) for p in points], "showSymbol": False}
            for name, points in curves.items()
        ],
    }
