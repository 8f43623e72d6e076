"""Plots of a dataset profile's column histograms, drawn from the profile alone (no rows needed).

``$`` is escaped in every label so that matplotlib never reads a column name or value as mathtext.
"""

from __future__ import annotations

from typing import Any

from loopline.report._figures import new_figure, plot_label, png_data_uri, whole_numbers

BAR_COLOUR = "#4c72b0"
OTHER_COLOUR = "#999999"
_LABEL_CHARS = 32
_DATETIME_TICKS = 4


def profile_histogram_chart(column: dict[str, Any]) -> str | None:
    """One plot of a profiled column's histogram (a column of ``profile_table(...)["columns"]``).

    Fixed bins for numbers and datetimes, the most frequent values (and the rest) for other kinds; None
    when the column has no values to draw.
    """
    histogram = column.get("histogram")
    if not histogram or not histogram["counts"]:
        return None
    if histogram["type"] == "top":
        return _top_chart(histogram)
    if column["kind"] == "datetime":
        return _datetime_chart(histogram)
    return _bins_chart(histogram)


def _bins_chart(histogram: dict[str, Any]) -> str:
    figure, axes = new_figure(5.0, 2.6)
    edges, counts = histogram["edges"], histogram["counts"]
    if edges[0] == edges[-1]:  # one value: one bar at it
        axes.bar([edges[0]], counts, width=1.0, color=BAR_COLOUR)
    else:
        axes.stairs(counts, edges, fill=True, color=BAR_COLOUR)
    axes.set_ylabel("rows")
    whole_numbers(axes.yaxis)
    return png_data_uri(figure)


def _datetime_chart(histogram: dict[str, Any]) -> str:
    figure, axes = new_figure(5.0, 2.6)
    edges, counts = histogram["edges"], histogram["counts"]
    axes.stairs(counts, range(len(counts) + 1), fill=True, color=BAR_COLOUR)
    ticks = sorted({round(i * (len(edges) - 1) / _DATETIME_TICKS) for i in range(_DATETIME_TICKS + 1)})
    names = [edges[i].replace("T", " ").removesuffix("+00:00") for i in ticks]
    axes.set_xticks(ticks, names, rotation=30, ha="right", fontsize="small")
    axes.set_ylabel("rows")
    whole_numbers(axes.yaxis)
    return png_data_uri(figure)


def _top_chart(histogram: dict[str, Any]) -> str:
    labels = [_short(label) if label else "(empty text)" for label in histogram["labels"]]
    counts = list(histogram["counts"])
    colours = [BAR_COLOUR] * len(labels)
    if histogram["other"]:
        labels, counts, colours = [*labels, "(other values)"], [*counts, histogram["other"]], [*colours, OTHER_COLOUR]
    figure, axes = new_figure(5.0, 0.8 + 0.28 * len(labels))
    positions = list(range(len(labels)))
    axes.barh(positions, counts, color=colours)
    axes.set_yticks(positions, labels)
    axes.invert_yaxis()
    axes.set_xlabel("rows")
    whole_numbers(axes.xaxis)
    return png_data_uri(figure)


def _short(text: str) -> str:
    return plot_label(text, _LABEL_CHARS)
