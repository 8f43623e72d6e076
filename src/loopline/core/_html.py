"""Self-contained HTML pages with plots (the monitoring report, dataset profiles): shared pieces.

Text from data is escaped everywhere; plots are base64 PNG drawn through matplotlib's ``Figure`` +
``FigureCanvasAgg`` (imported on use: no pyplot, no backend switch, nothing global touched).
"""

from __future__ import annotations

import base64
import io
import math
import os
import tempfile
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 80

BASE_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:72rem}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:left}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#777}img{max-width:100%}
"""


def write_html(path: str | Path, text: str) -> Path:
    """Write a page to ``path`` (parents created, replaced atomically, readable by all) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temp, 0o644)  # a page is for reading: not the private mode mkstemp gives
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target


def format_value(value: Any) -> str:
    """A value as table text: — for None, yes/no, 4 significant digits, thousands separators."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def html_cell(value: Any) -> str:
    """One escaped table cell; numbers right-aligned."""
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return f"<td{' class=num' if numeric else ''}>{escape(format_value(value))}</td>"


def html_table(headers: list[str], rows: list[list[Any]]) -> str:
    """An escaped table."""
    head = "".join(f"<th>{escape(str(header))}</th>" for header in headers)
    body = "".join("<tr>" + "".join(html_cell(value) for value in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def new_figure(width: float, height: float) -> tuple[Figure, Axes]:
    """A figure with one axes, on the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def png_data_uri(figure: Figure) -> str:
    """The figure as a ``data:image/png;base64,...`` URI (no software stamp: equal plots, equal bytes)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def plot_label(text: str, max_chars: int | None = None) -> str:
    """A label for a plot: shortened to ``max_chars``, ``$`` escaped so it is never parsed as mathtext."""
    short = text if max_chars is None or len(text) <= max_chars else text[: max_chars - 1] + "…"
    return short.replace("$", r"\$")
