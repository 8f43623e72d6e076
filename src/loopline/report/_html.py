"""Self-contained HTML pages: the page skeleton, escaped tables, atomic writes.

Text from data is escaped everywhere; pages reference nothing outside themselves (CSS inline, plots as
``data:`` URIs from :mod:`loopline.report._figures`). Nothing here needs matplotlib.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from html import escape
from pathlib import Path
from typing import Any

BASE_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:72rem}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:left}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#777}img{max-width:100%}
"""


def page(title: str, sections: list[str], *, css: str = BASE_CSS) -> str:
    """One HTML document: ``title`` (escaped) as title and heading, then ``sections`` (already HTML)."""
    heading = escape(title)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{heading}</title>'
        f"<style>{css}</style></head><body><h1>{heading}</h1>\n" + "\n".join(sections) + "\n</body></html>\n"
    )


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


def html_img(uri: str | None, alt: str) -> str:
    """An ``<img>`` of a data URI with escaped alt text; empty when there is no plot."""
    return f'<img src="{uri}" alt="{escape(alt)}">' if uri else ""


def json_script(element_id: str, data: Any) -> str:
    """``data`` as an inline ``<script type="application/json">`` block: the figures a chart was drawn from,
    for tests and machines to read back. Non-finite floats become null; ``<``, ``>`` and ``&`` are escaped so
    no text from data can close the element."""
    text = json.dumps(finite(data), sort_keys=True, default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{escape(element_id)}">{text}</script>'


def finite(data: Any) -> Any:
    """``data`` with NaN and infinities as None, recursively (JSON has neither)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {str(key): finite(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [finite(value) for value in data]
    return data
