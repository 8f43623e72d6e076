"""A dataset profile (:func:`~loopline.prep.profile_table`) as one self-contained HTML page.

An overview table, then one section per column with its statistics and one plot of its histogram (fixed
bins for numbers and datetimes, the most frequent values for the rest); a column without values says so
instead. Plots are base64 PNG drawn from the profile alone (no data needed), through matplotlib's
``Figure`` + ``FigureCanvasAgg`` as the monitoring report does: no pyplot, nothing global touched. Every
string that comes from data (column names, values, the title) is HTML-escaped, and ``$`` is escaped in plot
labels so that matplotlib never reads a name as mathtext.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.core._html import (
    BASE_CSS,
    format_value,
    html_table,
    new_figure,
    plot_label,
    png_data_uri,
    write_html,
)

if TYPE_CHECKING:
    pass

BAR_COLOUR = "#4c72b0"
OTHER_COLOUR = "#999999"
_LABEL_CHARS = 32
_DATETIME_TICKS = 4

_CSS = BASE_CSS + ".column{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start}\n"


def write_profile_html(path: str | Path, profile: dict[str, Any], *, title: str = "Dataset profile") -> Path:
    """Write the page to ``path`` (parents created, replaced atomically) and return the path."""
    return write_html(path, render_profile_html(profile, title=title))


def render_profile_html(profile: dict[str, Any], *, title: str = "Dataset profile") -> str:
    """The page as one HTML string."""
    columns = profile["columns"]
    sections = [_overview(profile), *(_column_section(index, column) for index, column in enumerate(columns))]
    heading = escape(title)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{heading}</title>'
        f"<style>{_CSS}</style></head><body><h1>{heading}</h1>\n" + "\n".join(sections) + "\n</body></html>\n"
    )


# -- text --------------------------------------------------------------------------------------------------


def _percent(share: float) -> str:
    return f"{share:.1%}"


def _distinct(column: dict[str, Any]) -> str | None:
    if column["distinct"] is None:
        return None
    return f"{column['distinct']:,}" if column["distinct_exact"] else f"≈{column['distinct']:,}"


def _overview(profile: dict[str, Any]) -> str:
    facts = [("rows", profile["rows"]), ("columns", profile["n_columns"])]
    facts += [(key, profile[key]) for key in ("dataset", "version", "checksum") if key in profile]
    summary = " · ".join(f"{escape(name)} <b>{escape(format_value(value))}</b>" for name, value in facts)
    rows = [
        [
            f'<a href="#column-{index}">{escape(column["name"])}</a>',
            escape(column["kind"]),
            escape(column["dtype"]),
            escape(_percent(column["missing_share"])),
            escape(_distinct(column) or "—"),
        ]
        for index, column in enumerate(profile["columns"])
    ]
    head = "".join(f"<th>{name}</th>" for name in ("column", "kind", "type", "missing", "distinct"))
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>" if rows else ""
    return f"<section><p>{summary}</p>{table}</section>"


def _statistics(column: dict[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = [
        ["type", column["dtype"]],
        ["kind", column["kind"]],
        ["values", column["count"]],
        ["nulls", column["nulls"]],
    ]
    if column["nan"]:
        rows.append(["NaN", column["nan"]])
    rows += [["missing", _percent(column["missing_share"])], ["distinct", _distinct(column)]]
    if column["kind"] == "numeric":
        if column["infinite"]:
            rows.append(["infinite", column["infinite"]])
        rows += [[stat, column[stat]] for stat in ("min", "max", "mean", "std")]
        rows += [[name, value] for name, value in column["quantiles"].items()]
    elif column["kind"] == "datetime":
        rows += [["min", column["min"]], ["max", column["max"]]]
    elif column["kind"] == "string":
        rows += [[f"length {stat}", value] for stat, value in column["length"].items()]
    return rows


def _top_table(column: dict[str, Any]) -> str:
    if not column.get("top"):
        return ""
    present = column["count"] or 1
    rows = [[repr(item["value"]), item["count"], _percent(item["count"] / present)] for item in column["top"]]
    return html_table(["top value", "count", "share"], rows)


def _column_section(index: int, column: dict[str, Any]) -> str:
    uri = _histogram_chart(column)
    plot = f'<img src="{uri}" alt="{escape(column["name"])}: histogram">' if uri else ""
    plot = plot or '<p class="muted">No values to plot.</p>'
    body = f'<div class="column"><div>{html_table(["statistic", "value"], _statistics(column))}</div>'
    body += f"<div>{plot}{_top_table(column)}</div></div>"
    return f'<section id="column-{index}"><h2>{escape(column["name"])}</h2>{body}</section>'


# -- plots -------------------------------------------------------------------------------------------------


def _whole_numbers(axis: Any) -> None:
    """Row counts on ``axis`` are whole numbers: no 0.5 ticks."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _histogram_chart(column: dict[str, Any]) -> str | None:
    """One plot of the column's histogram; None when it has no values to draw."""
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
    _whole_numbers(axes.yaxis)
    return png_data_uri(figure)


def _datetime_chart(histogram: dict[str, Any]) -> str:
    figure, axes = new_figure(5.0, 2.6)
    edges, counts = histogram["edges"], histogram["counts"]
    axes.stairs(counts, range(len(counts) + 1), fill=True, color=BAR_COLOUR)
    ticks = sorted({round(i * (len(edges) - 1) / _DATETIME_TICKS) for i in range(_DATETIME_TICKS + 1)})
    names = [edges[i].replace("T", " ").removesuffix("+00:00") for i in ticks]
    axes.set_xticks(ticks, names, rotation=30, ha="right", fontsize="small")
    axes.set_ylabel("rows")
    _whole_numbers(axes.yaxis)
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
    _whole_numbers(axes.xaxis)
    return png_data_uri(figure)


def _short(text: str) -> str:
    return plot_label(text, _LABEL_CHARS)
