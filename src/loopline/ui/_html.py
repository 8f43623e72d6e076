"""The dashboard's HTML pieces: escaped text, tables, links, charts, forms, the page skeleton.

Every string from data goes through :func:`escape` unless it is :class:`Markup` (HTML this module or a page
made). Charts are ``<div class="chart">`` elements with their ECharts option in an inline JSON block beside
them; ``static/ui.js`` draws them with the vendored ECharts. Pages carry no inline script (the Content Security
Policy forbids it), so a value from data can never run as code.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from loopline.report import format_value, json_script


class Markup(str):
    """Text that is already HTML: inserted as it is."""

    __slots__ = ()


def escape(value: Any) -> Markup:
    """``value`` as HTML: Markup unchanged, anything else formatted (:func:`text`) and escaped."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(text(value)))


def text(value: Any) -> str:
    """A value as display text: the report's format (— for None, yes/no, 4 significant digits, thousands
    separators) and times to the second."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return format_value(value)


def join(parts: Iterable[Any], sep: str = "") -> Markup:
    """``parts`` escaped and joined."""
    return Markup(sep.join(escape(part) for part in parts))


def tag(name: str, content: Any = "", **attrs: Any) -> Markup:
    """``<name attrs>content</name>``; attribute values escaped, ``class_`` for ``class``, None/False left out."""
    rendered = "".join(
        f" {key.rstrip('_').replace('_', '-')}"
        if value is True
        else f' {key.rstrip("_").replace("_", "-")}="{escape(value)}"'
        for key, value in attrs.items()
        if value is not None and value is not False
    )
    return Markup(f"<{name}{rendered}>{escape(content)}</{name}>")


def link(href: str, label: Any) -> Markup:
    """An ``<a>`` to ``href`` (a URL this app made) with escaped ``label``."""
    return tag("a", label, href=href)


def badge(label: Any, kind: str = "neutral") -> Markup:
    """A coloured label: ``kind`` is good, bad, warn or neutral."""
    return tag("span", label, class_=f"badge {kind}")


def section(title: str, *content: Any, id_: str | None = None) -> Markup:
    """A titled section of the page."""
    return tag("section", Markup(tag("h2", title) + join(content)), id=id_)


def muted(value: Any) -> Markup:
    """Text shown quietly (an empty state, a note)."""
    return tag("p", value, class_="muted")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, id_: str | None = None, empty: str = "") -> Markup:
    """A table; cells are escaped unless Markup, numbers right-aligned. With no rows: ``empty`` as a note."""
    body = []
    for row in rows:
        cells = "".join(
            f"<td class=num>{escape(cell)}</td>" if _numeric(cell) else f"<td>{escape(cell)}</td>" for cell in row
        )
        body.append(f"<tr>{cells}</tr>")
    if not body and empty:
        return muted(empty)
    head = "".join(f"<th>{escape(header)}</th>" for header in headers)
    attrs = f' id="{escape(id_)}"' if id_ else ""
    return Markup(f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def pairs(items: Mapping[str, Any]) -> Markup:
    """A two-column table of names and values."""
    return table(["", ""], items.items())


def chart(chart_id: str, option: Mapping[str, Any], *, height: int = 320) -> Markup:
    """An ECharts chart: ``option`` as JSON beside an empty ``<div>`` that ``ui.js`` draws into."""
    return Markup(
        f'<div class="chart" id="{escape(chart_id)}" data-option="{escape(chart_id)}-option" '
        f'style="height:{int(height)}px"></div>' + json_block(f"{chart_id}-option", option)
    )


def json_block(element_id: str, data: Any) -> Markup:
    """``data`` as an inline ``<script type="application/json">`` (never executed; see
    :func:`loopline.report.json_script`: no text from data can close the element)."""
    return Markup(json_script(element_id, data))


def form(action: str, csrf: str | None, fields: Mapping[str, Any], label: str, *, confirm: str | None = None) -> Markup:
    """A POST form to ``action`` with hidden ``fields``, the CSRF token and one button; ``confirm`` asks first."""
    hidden = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items())
    token = f'<input type="hidden" name="csrf" value="{escape(csrf)}">' if csrf else ""
    ask = f' data-confirm="{escape(confirm)}"' if confirm else ""
    return Markup(
        f'<form method="post" action="{escape(action)}" class="action"{ask}>{token}{hidden}'
        f'<input type="text" name="reason" placeholder="reason" maxlength="500">'
        f"<button type=submit>{escape(label)}</button></form>"
    )


def query_url(path: str, params: Mapping[str, Any]) -> str:
    """``path`` with the non-empty ``params`` as its query string."""
    kept = {key: value for key, value in params.items() if value not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


def pager(path: str, params: Mapping[str, Any], page: int, pages: int) -> Markup:
    """Links to the previous and next pages of a paginated list (``page`` counts from 1)."""
    if pages <= 1:
        return Markup("")
    parts = []
    if page > 1:
        parts.append(link(query_url(path, {**params, "page": page - 1}), "← newer"))
    parts.append(escape(f"page {page} of {pages}"))
    if page < pages:
        parts.append(link(query_url(path, {**params, "page": page + 1}), "older →"))
    return tag("nav", join(parts, " · "), class_="pager")


def document(title: str, body: Any, *, nav: Sequence[tuple[str, str]], active: str, user: Markup, static: str) -> str:
    """The whole page: head (styles and scripts from ``static``), the navigation, ``body``."""
    items = "".join(
        f'<a href="{escape(href)}"{" class=active" if label == active else ""}>{escape(label)}</a>'
        for label, href in nav
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)} · loopline</title><link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{static}/ui.css">'
        f'<script src="{static}/vendor/echarts.min.js" defer></script><script src="{static}/ui.js" defer></script>'
        f'</head><body><header><a class="brand" href="{escape(nav[0][1])}">loopline</a><nav>{items}</nav>'
        f'<div class="user">{user}</div></header><main><h1>{escape(title)}</h1>{escape(body)}</main></body></html>\n'
    )


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
