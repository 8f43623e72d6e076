"""A dataset profile (:func:`~loopline.prep.profile_table`) as one self-contained HTML page.

An overview table, then one section per column with its statistics and one plot of its histogram
(:func:`~loopline.report._profile_charts.profile_histogram_chart`); a column without values says so
instead. Every string that comes from data (column names, values, the title) is HTML-escaped.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from loopline.report._html import BASE_CSS, format_value, html_img, html_table, page, write_html
from loopline.report._profile_charts import profile_histogram_chart

_CSS = BASE_CSS + ".column{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start}\n"


def write_profile_html(path: str | Path, profile: dict[str, Any], *, title: str = "Dataset profile") -> Path:
    """Write the page to ``path`` (parents created, replaced atomically) and return the path."""
    return write_html(path, render_profile_html(profile, title=title))


def render_profile_html(profile: dict[str, Any], *, title: str = "Dataset profile") -> str:
    """The page as one HTML string."""
    columns = profile["columns"]
    sections = [_overview(profile), *(_column_section(index, column) for index, column in enumerate(columns))]
    return page(title, sections, css=_CSS)


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
    plot = html_img(profile_histogram_chart(column), f"{column['name']}: histogram")
    plot = plot or '<p class="muted">No values to plot.</p>'
    body = f'<div class="column"><div>{html_table(["statistic", "value"], _statistics(column))}</div>'
    body += f"<div>{plot}{_top_table(column)}</div></div>"
    return f'<section id="column-{index}"><h2>{escape(column["name"])}</h2>{body}</section>'
