"""A dataset profile (:func:`~loopline.prep.profile_table`) as one self-contained HTML page.

An overview table, then one section per column with its statistics and one plot of its histogram (fixed
bins for numbers and datetimes, the most frequent values for the rest); a column without values says so
instead. Plots are base64 PNG drawn from the profile alone (no data needed), through matplotlib's
``Figure`` + ``FigureCanvasAgg`` as the monitoring report does: no pyplot, nothing global touched. Every
string that comes from data (column names, values, the title) is HTML-escaped, and ``$`` is escaped in plot
labels so that matplotlib never reads a name as mathtext.
"""

from __future__ import annotations

import base64
import io
import os
import tempfile
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

BAR_COLOUR = "#4c72b0"
OTHER_COLOUR = "#999999"
_DPI = 80
_LABEL_CHARS = 32
_DATETIME_TICKS = 4

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:72rem}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:left}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.column{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start}.muted{color:#777}img{max-width:100%}
"""


def write_profile_html(path: str | Path, profile: dict[str, Any], *, title: str = "Dataset profile") -> Path:
    """Write the page to ``path`` (parents created, replaced atomically) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(render_profile_html(profile, title=title))
        os.chmod(temp, 0o644)  # a page is for reading: not the private mode mkstemp gives
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target


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


def _format(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _cell(value: Any) -> str:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return f"<td{' class=num' if numeric else ''}>{escape(_format(value))}</td>"


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(header)}</th>" for header in headers)
    body = "".join("<tr>" + "".join(_cell(value) for value in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _percent(share: float) -> str:
    return f"{share:.1%}"


def _distinct(column: dict[str, Any]) -> str | None:
    if column["distinct"] is None:
        return None
    return f"{column['distinct']:,}" if column["distinct_exact"] else f"≈{column['distinct']:,}"


def _overview(profile: dict[str, Any]) -> str:
    facts = [("rows", profile["rows"]), ("columns", profile["n_columns"])]
    facts += [(key, profile[key]) for key in ("dataset", "version", "checksum") if key in profile]
    summary = " · ".join(f"{escape(name)} <b>{escape(_format(value))}</b>" for name, value in facts)
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
    return _table(["top value", "count", "share"], rows)


def _column_section(index: int, column: dict[str, Any]) -> str:
    uri = _histogram_chart(column)
    plot = f'<img src="{uri}" alt="{escape(column["name"])}: histogram">' if uri else ""
    plot = plot or '<p class="muted">No values to plot.</p>'
    body = f'<div class="column"><div>{_table(["statistic", "value"], _statistics(column))}</div>'
    body += f"<div>{plot}{_top_table(column)}</div></div>"
    return f'<section id="column-{index}"><h2>{escape(column["name"])}</h2>{body}</section>'


# -- plots -------------------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _whole_numbers(axis: Any) -> None:
    """Row counts on ``axis`` are whole numbers: no 0.5 ticks."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _data_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _label(text: str) -> str:
    """Shortened, with ``$`` escaped so that a value is never parsed as mathtext."""
    short = text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"
    return short.replace("$", r"\$")


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
    figure, axes = _figure(5.0, 2.6)
    edges, counts = histogram["edges"], histogram["counts"]
    if edges[0] == edges[-1]:  # one value: one bar at it
        axes.bar([edges[0]], counts, width=1.0, color=BAR_COLOUR)
    else:
        axes.stairs(counts, edges, fill=True, color=BAR_COLOUR)
    axes.set_ylabel("rows")
    _whole_numbers(axes.yaxis)
    return _data_uri(figure)


def _datetime_chart(histogram: dict[str, Any]) -> str:
    figure, axes = _figure(5.0, 2.6)
    edges, counts = histogram["edges"], histogram["counts"]
    axes.stairs(counts, range(len(counts) + 1), fill=True, color=BAR_COLOUR)
    ticks = sorted({round(i * (len(edges) - 1) / _DATETIME_TICKS) for i in range(_DATETIME_TICKS + 1)})
    names = [edges[i].replace("T", " ").removesuffix("+00:00") for i in ticks]
    axes.set_xticks(ticks, names, rotation=30, ha="right", fontsize="small")
    axes.set_ylabel("rows")
    _whole_numbers(axes.yaxis)
    return _data_uri(figure)


def _top_chart(histogram: dict[str, Any]) -> str:
    labels = [_label(label) if label else "(empty text)" for label in histogram["labels"]]
    counts = list(histogram["counts"])
    colours = [BAR_COLOUR] * len(labels)
    if histogram["other"]:
        labels, counts, colours = [*labels, "(other values)"], [*counts, histogram["other"]], [*colours, OTHER_COLOUR]
    figure, axes = _figure(5.0, 0.8 + 0.28 * len(labels))
    positions = list(range(len(labels)))
    axes.barh(positions, counts, color=colours)
    axes.set_yticks(positions, labels)
    axes.invert_yaxis()
    axes.set_xlabel("rows")
    _whole_numbers(axes.xaxis)
    return _data_uri(figure)
