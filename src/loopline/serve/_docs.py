"""``/docs``: the service's endpoints as one self-contained HTML page, made from its OpenAPI schema.

FastAPI's own ``/docs`` and ``/redoc`` load their scripts from a CDN: offline (an air-gapped host, a blocked
proxy) they are blank pages. This page has no script and fetches nothing; ``/openapi.json`` stays for tools and
for any OpenAPI viewer the user runs themself.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}table{border-collapse:collapse;width:100%}"
    "td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}"
    "code{background:#f4f4f4;padding:0 .2rem}.m{font-weight:bold;text-transform:uppercase}"
)


def docs_router() -> APIRouter:
    """``GET /docs``: the endpoint table (not itself in the schema); ``GET /``: where things are, or the dashboard."""
    router = APIRouter()

    @router.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(render_docs(request.app.openapi()))

    @router.get("/", include_in_schema=False)
    async def index(request: Request) -> Response:
        if getattr(request.app.state, "dashboard", None):  # `loopline serve --ui`: the dashboard is the front page
            return RedirectResponse(request.app.state.dashboard, 307)
        return JSONResponse(
            {
                "service": "loopline",
                "docs": "/docs",
                "openapi": "/openapi.json",
                "health": "/health",
                "metrics": "/metrics",
                "dashboard": "start the service with --ui, or run `loopline ui`",
            }
        )

    return router


def render_docs(schema: dict[str, Any]) -> str:
    """The page for an OpenAPI ``schema``: title, version, a link to the schema and one row per operation."""
    info = schema.get("info", {})
    title = html.escape(f"{info.get('title', 'API')} {info.get('version', '')}".strip())
    rows = "".join(
        _row(method, path, operation)
        for path, item in schema.get("paths", {}).items()
        for method, operation in item.items()
        if method in _METHODS
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{title}</h1><p>The machine-readable schema is <a href='openapi.json'><code>/openapi.json</code>"
        "</a>: open it in any OpenAPI viewer for an interactive console.</p>"
        f"<table><tr><th>method</th><th>path</th><th>what it does</th><th>parameters</th></tr>{rows}</table>"
        "</body></html>"
    )


def _row(method: str, path: str, operation: dict[str, Any]) -> str:
    text = operation.get("description") or operation.get("summary") or ""
    first = html.escape(text.strip().split("\n\n")[0])
    params = ", ".join(
        f"<code>{html.escape(str(p.get('name')))}</code> ({html.escape(str(p.get('in')))})"
        for p in operation.get("parameters", [])
    )
    return (
        f"<tr><td class='m'>{html.escape(method)}</td><td><code>{html.escape(path)}</code></td>"
        f"<td>{first}</td><td>{params}</td></tr>"
    )
