"""``/docs`` works offline: one self-contained page (no script, nothing fetched), made from the OpenAPI schema."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from loopline.serve import create_app
from loopline.serve._docs import render_docs
from loopline.store import Store


def test_docs_is_a_self_contained_page_listing_every_endpoint(store: Store) -> None:
    with TestClient(create_app(store)) as client:
        page = client.get("/docs")
        schema = client.get("/openapi.json").json()
        redoc = client.get("/redoc")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text and not re.search(r"(src|href)=['\"]?(https?:)?//", page.text)
    for path in ("/predict/{name}", "/v2/models/{name}/infer", "/invocations", "/metrics"):
        assert f"<code>{path}</code>" in page.text
    assert "href='openapi.json'" in page.text and schema["paths"]
    assert redoc.status_code == 404  # ReDoc loads from a CDN too: not offered


def test_the_front_page_says_where_things_are(store: Store) -> None:
    with TestClient(create_app(store)) as client:
        index = client.get("/")
        docs = client.get(index.json()["docs"])
    assert index.status_code == 200 and index.json()["health"] == "/health" and "--ui" in index.json()["dashboard"]
    assert docs.status_code == 200


def test_docs_escape_what_the_schema_says() -> None:
    schema = {
        "info": {"title": "t<x>", "version": "1"},
        "paths": {
            "/a/{b}": {"post": {"description": "Do <b>it</b>.\n\nMore.", "parameters": [{"name": "b", "in": "path"}]}}
        },
    }
    page = render_docs(schema)
    assert "t&lt;x&gt; 1" in page and "Do &lt;b&gt;it&lt;/b&gt;." in page and "More." not in page
    assert "<code>b</code> (path)" in page
