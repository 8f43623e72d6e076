"""Charts of a drift report and of service latency, as base64 PNG data URIs (matplotlib on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from loopline.monitor import latency_figures
from loopline.report._figures import new_figure, plot_label, png_data_uri

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from loopline.monitor import FeatureDrift

DRIFTED_COLOUR = "#c0392b"
STABLE_COLOUR = "#2e8b57"
REFERENCE_COLOUR = "#4c72b0"
CURRENT_COLOUR = "#dd8452"
_TOP_CATEGORIES = 10
MAX_PSI_BARS = 40


def psi_chart(features: list[FeatureDrift], threshold: float) -> str:
    """Horizontal PSI bars per feature (drifted in red) with the threshold as a dashed line.

    Past :data:`MAX_PSI_BARS` features only the highest PSIs are drawn (the table lists them all).
    """
    if len(features) > MAX_PSI_BARS:
        features = sorted(features, key=lambda feature: -feature.psi)[:MAX_PSI_BARS]
    figure, axes = new_figure(7.0, 0.8 + 0.3 * len(features))
    names = [plot_label(feature.feature) for feature in features]
    colours = [DRIFTED_COLOUR if feature.drifted else STABLE_COLOUR for feature in features]
    positions = np.arange(len(features))
    axes.barh(positions, [feature.psi for feature in features], color=colours)
    axes.set_yticks(positions, names)
    axes.invert_yaxis()
    axes.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    axes.set_xlabel("PSI")
    axes.legend(loc="lower right")
    return png_data_uri(figure)


def distribution_chart(feature: FeatureDrift, reference: pl.Series, current: pl.Series) -> str | None:
    """Reference vs current distribution of one feature; None when neither side has values."""
    figure, axes = new_figure(5.0, 3.0)
    if feature.kind == "numeric":
        drawn = _numeric_histogram(axes, reference, current)
    else:
        drawn = _category_bars(axes, reference, current)
    if not drawn:
        return None
    axes.set_title(plot_label(f"{feature.feature} (PSI {feature.psi:.3f})"))
    axes.legend()
    return png_data_uri(figure)


def _finite(series: pl.Series) -> np.ndarray:
    if not (series.dtype.is_numeric() or series.dtype == pl.Boolean):
        return np.empty(0)
    values: np.ndarray = series.cast(pl.Float64).drop_nulls().to_numpy()
    finite: np.ndarray = values[np.isfinite(values)]
    return finite


def _numeric_histogram(axes: Axes, reference: pl.Series, current: pl.Series) -> bool:
    ref, cur = _finite(reference), _finite(current)
    if ref.size == 0 and cur.size == 0:
        return False
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins=30).tolist()
    for values, colour, name in ((ref, REFERENCE_COLOUR, "reference"), (cur, CURRENT_COLOUR, "current")):
        if values.size:
            axes.hist(values, bins=edges, density=True, alpha=0.5, color=colour, label=name)
    axes.set_ylabel("density")
    return True


def _shares(series: pl.Series) -> dict[str, float]:
    counted = series.drop_nulls().cast(pl.String).value_counts()
    total = counted[:, 1].sum() or 1
    return {str(name): count / total for name, count in zip(counted[:, 0], counted[:, 1], strict=True)}


def _category_bars(axes: Axes, reference: pl.Series, current: pl.Series) -> bool:
    ref, cur = _shares(reference), _shares(current)
    names = sorted({*ref, *cur}, key=lambda name: -(ref.get(name, 0.0) + cur.get(name, 0.0)))
    names = names[:_TOP_CATEGORIES]
    if not names:
        return False
    positions = np.arange(len(names))
    for shares, offset, colour, side in (
        (ref, -0.2, REFERENCE_COLOUR, "reference"),
        (cur, 0.2, CURRENT_COLOUR, "current"),
    ):
        axes.bar(positions + offset, [shares.get(name, 0.0) for name in names], 0.4, color=colour, label=side)
    axes.set_xticks(positions, [plot_label(name) for name in names], rotation=45, ha="right")
    axes.set_ylabel("share of non-null rows")
    return True


def latency_chart(latencies_ms: list[float], *, label: str = "latency (ms)", unit: str = "requests") -> str | None:
    """Latency histogram with p50/p95/p99 lines (the figures of :func:`loopline.monitor.latency_figures`, so
    they match the tables beside it); ``label`` names the x axis, ``unit`` what is counted. None when there
    is no finite latency."""
    values = np.asarray(latencies_ms, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    figures = latency_figures(values)
    figure, axes = new_figure(6.0, 3.0)
    axes.hist(values, bins=40, color=REFERENCE_COLOUR)
    for percentile, style in ((50, "-"), (95, "--"), (99, ":")):
        mark = float(figures[f"latency_p{percentile}_ms"] or 0.0)
        axes.axvline(mark, color="black", linestyle=style, linewidth=1, label=f"p{percentile} {mark:.2f} ms")
    axes.set_xlabel(label)
    axes.set_ylabel(unit)
    axes.legend()
    return png_data_uri(figure)
