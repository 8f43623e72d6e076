"""The dashboard's frame: the overview, security headers, sign-in, CSRF, the actions and their audit trail, the
Host check, and the dashboard mounted in the prediction service."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from loopline.core.errors import ConfigError
from loopline.serve import ServeSettings, create_app
from loopline.store import Store
from loopline.store.loop import LoopStore
from loopline.ui import create_ui_app
from loopline.ui._auth import SESSION_COOKIE

from .conftest import ADMIN_TOKEN, BEARER, sign_in


def test_the_overview_shows_each_model_with_its_production_version(client: TestClient, ui_store: Store) -> None:
    data = client.get("/api/").json()
    (toy,) = data["models"]
    assert toy["name"] == "toy" and toy["production"]["version"] == 1
    assert toy["production"]["algorithm"] == "logistic_regression"
    assert toy["aliases"] == {"production": 1}
    assert toy["live"]["predictions"] == 0 and toy["window"] is None and toy["open_alerts"] == 0
    page = client.get("/ui/")
    assert page.status_code == 200 and 'id="model-toy"' in page.text and "production v1" in page.text
    assert client.get("/", follow_redirects=False).headers["location"] == "/ui/"


def test_pages_carry_a_strict_content_security_policy(client: TestClient) -> None:
    for path in ("/ui/", "/api/", "/ui/login"):
        headers = client.get(path).headers
        assert "script-src 'self'" in headers["content-security-policy"], path
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    page = client.get("/ui/").text
    assert "<script>" not in page and re.findall(r"<script (?!src=|type=\"application/json\")", page) == []
    vendored = client.get("/ui/static/vendor/echarts.min.js")
    assert vendored.status_code == 200 and len(vendored.content) > 500_000


def test_text_from_the_store_is_escaped(client: TestClient, ui_store: Store) -> None:
    LoopStore(ui_store.engine).record("p", "gate", "<script>alert(1)</script> won", model="toy", details={})
    data = client.get("/api/").json()
    assert data["models"][0]["last_decision"]["reason"] == "<script>alert(1)</script> won"
    page = client.get("/ui/").text
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; won" in page


def test_api_actions_need_the_admin_token_and_are_audited(client: TestClient, ui_store: Store) -> None:
    body = {"model": "toy", "version": 2, "reason": "better on May"}
    assert client.post("/api/actions/promote", json=body).status_code == 401
    wrong = client.post("/api/actions/promote", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and ui_store.models.production("toy").version == 1  # type: ignore[union-attr]
    done = client.post("/api/actions/promote", json=body, headers=BEARER)
    assert done.status_code == 200 and done.json()["production"] == 2
    assert client.get("/api/").json()["models"][0]["production"]["version"] == 2
    back = client.post("/api/actions/rollback", json={"model": "toy", "reason": "oops"}, headers=BEARER)
    assert back.status_code == 200 and back.json()["production"] == 1
    history = ui_store.models.history("toy")
    assert [e.actor for e in history[-2:]] == ["ui:token:admin", "ui:token:admin"]
    assert "better on May" in [e.reason for e in history]


def test_bad_action_input_names_the_field_and_changes_nothing(client: TestClient, ui_store: Store) -> None:
    cases = [
        ({"model": "toy", "version": "two"}, 422, "'version' must be a positive integer"),
        ({"model": "toy", "version": 0}, 422, "'version' must be a positive integer"),
        ({"version": 2}, 422, "'model' is missing"),
        ({"model": "../etc", "version": 2}, 422, "not a model name"),
        ({"model": "toy", "version": 9}, 404, "version 9"),
        ({"model": "toy", "version": 2, "reason": "x" * 501}, 422, "'reason'"),
    ]
    for body, status, message in cases:
        answer = client.post("/api/actions/promote", json=body, headers=BEARER)
        assert answer.status_code == status and message in answer.json()["error"], (body, answer.json())
    assert ui_store.models.production("toy").version == 1  # type: ignore[union-attr]
    unknown = client.post("/api/actions/delete", json={}, headers=BEARER)
    assert unknown.status_code == 404 and "promote" in unknown.json()["hint"]
    bad_json = client.post("/api/actions/promote", content=b"{", headers=BEARER)
    assert bad_json.status_code == 400 and "not JSON" in bad_json.json()["error"]


def test_forms_need_a_session_and_its_csrf_token(client: TestClient, ui_store: Store) -> None:
    form = {"model": "toy", "version": "2"}
    refused = client.post("/ui/actions/promote", data=form, follow_redirects=False)
    assert refused.status_code == 401 and "sign in" in refused.text
    assert "<form" not in client.get("/ui/").text.split("</header>")[1]  # read-only: no action forms
    csrf = sign_in(client)
    assert client.post("/ui/actions/promote", data=form, follow_redirects=False).status_code == 403  # no CSRF
    forged = client.post("/ui/actions/promote", data={**form, "csrf": "0" * 40}, follow_redirects=False)
    assert forged.status_code == 403 and "CSRF" in forged.text
    elsewhere = client.post(
        "/ui/actions/promote", data={**form, "csrf": csrf}, headers={"Origin": "https://evil.example"}
    )
    assert elsewhere.status_code == 403 and "another site" in elsewhere.text
    assert ui_store.models.production("toy").version == 1  # type: ignore[union-attr]
    done = client.post("/ui/actions/promote", data={**form, "csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("/ui/models/toy?notice=")
    assert ui_store.models.production("toy").version == 2  # type: ignore[union-attr]


def test_a_forged_or_expired_session_is_not_signed_in(client: TestClient) -> None:
    assert client.post("/ui/login", data={"token": "wrong"}).status_code == 403
    client.cookies.set(SESSION_COOKIE, "9999999999.deadbeef")
    assert "sign out" not in client.get("/ui/").text
    client.cookies.set(SESSION_COOKIE, "100." + "0" * 64)
    assert "sign out" not in client.get("/ui/").text
    sign_in(client)
    assert "sign out" in client.get("/ui/").text
    client.post("/ui/logout")
    assert "sign out" not in client.get("/ui/").text


def test_without_a_token_the_dashboard_is_read_only(ui_store: Store) -> None:
    with TestClient(create_ui_app(ui_store, token=None, hosts=["testserver"])) as client:
        assert client.get("/ui/").status_code == 200 and "read-only" in client.get("/ui/").text
        answer = client.post("/api/actions/rollback", json={"model": "toy"}, headers=BEARER)
        assert answer.status_code == 403 and "no admin token is configured" in answer.json()["error"]
        assert "LOOPLINE_TOKEN" in client.get("/ui/login").text


def test_retrain_requests_and_acknowledgements_are_recorded(client: TestClient, ui_store: Store) -> None:
    asked = client.post("/api/actions/retrain", json={"pipeline": "flights", "reason": "new season"}, headers=BEARER)
    assert asked.status_code == 200
    (event,) = LoopStore(ui_store.engine).events("flights", kinds=("request",))
    assert event.reason == "new season (by ui:token:admin)" and event.details == {"actor": "ui:token:admin"}
    missing = client.post("/api/actions/acknowledge", json={"alert": 12345}, headers=BEARER)
    assert missing.status_code == 404
    bad = client.post("/api/actions/acknowledge", json={"alert": "all"}, headers=BEARER)
    assert bad.status_code == 422 and "'alert'" in bad.json()["error"]


def test_a_foreign_host_header_is_refused(client: TestClient) -> None:
    answer = client.get("/ui/", headers={"Host": "evil.example"})
    assert answer.status_code == 400 and "--allow-host" in answer.json()["hint"]


def test_the_prediction_service_mounts_the_dashboard(ui_store: Store) -> None:
    settings = ServeSettings(token=ADMIN_TOKEN, mounts=["loopline.ui:mount_in_service"])
    with TestClient(create_app(ui_store, settings)) as client:
        assert client.get("/ui/").status_code == 200
        assert client.get("/api/").json()["models"][0]["name"] == "toy"
        assert (
            client.post("/api/actions/promote", json={"model": "toy", "version": 2}, headers=BEARER).status_code == 200
        )
        assert client.get("/health").status_code == 200
        assert client.get("/", follow_redirects=False).headers["location"] == "/ui/"
    with pytest.raises(ConfigError, match="names no function"):
        create_app(ui_store, ServeSettings(mounts=["loopline.ui:nothing_here"]))
