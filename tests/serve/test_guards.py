"""Guards before the model: the predict token, the model-name pattern, the Host header, CORS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from loopline.core.errors import ConfigError
from loopline.serve import BackgroundServer, ServeSettings, create_app
from loopline.store import Store

RECORD = {"x": 0.3, "n": 4, "group": "a"}
OIP = {
    "inputs": [
        {"name": "x", "shape": [1], "datatype": "FP64", "data": [0.3]},
        {"name": "n", "shape": [1], "datatype": "FP64", "data": [4]},
        {"name": "group", "shape": [1], "datatype": "BYTES", "data": ["a"]},
    ]
}
PREDICT_CALLS = [
    ("/predict/toy", RECORD),
    ("/predict", RECORD),
    ("/invocations", {"dataframe_records": [RECORD]}),
    ("/invocations/toy", {"dataframe_records": [RECORD]}),
    ("/v2/models/toy/infer", OIP),
    ("/v2/models/toy/versions/1/infer", OIP),
]
OPEN_PATHS = ["/v2/health/live", "/v2/health/ready", "/ping", "/health", "/v2", "/v2/models/toy", "/metrics"]


@pytest.fixture
def guarded(store: Store) -> Iterator[TestClient]:
    settings = ServeSettings(token="admin", predict_token="reader", refresh_interval=60)
    with TestClient(create_app(store, settings)) as client:
        yield client


@pytest.mark.parametrize(("path", "body"), PREDICT_CALLS)
def test_the_predict_token_guards_every_prediction_endpoint(guarded: TestClient, path: str, body: Any) -> None:
    missing = guarded.post(path, json=body)
    assert missing.status_code == 401 and "missing bearer token" in missing.json()["error"]
    wrong = guarded.post(path, json=body, headers={"authorization": "Bearer admin"})  # admin is not the predict token
    assert wrong.status_code == 403 and "reader" not in wrong.text
    assert guarded.post(path, json=body, headers={"authorization": "Bearer reader"}).status_code == 200


@pytest.mark.parametrize("path", OPEN_PATHS)
def test_health_and_metadata_stay_open(guarded: TestClient, path: str) -> None:
    assert guarded.get(path).status_code == 200


def test_refused_predictions_are_counted_and_never_logged(guarded: TestClient, store: Store) -> None:
    guarded.post("/predict/toy", json=RECORD)
    guarded.post("/predict/toy", json=RECORD, headers={"authorization": "Bearer nope"})
    text = guarded.get("/metrics").text
    assert 'loopline_errors_total{cause="unauthorized",model="_unknown"} 1.0' in text
    assert 'loopline_errors_total{cause="forbidden",model="_unknown"} 1.0' in text
    assert "loopline_requests_total{" not in text


def test_the_predict_token_may_not_be_the_admin_token(store: Store) -> None:
    with pytest.raises(ConfigError, match="Give the predict token its own value"):
        create_app(store, ServeSettings(token="same", predict_token="same"))


@pytest.fixture
def store_calls(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every call to the model repository (the real one still answers)."""
    calls: list[str] = []
    for method in ("get", "production", "names", "promote", "rollback", "list"):
        real = getattr(store.models, method)

        def spy(*args: Any, _real: Callable[..., Any] = real, _name: str = method, **kwargs: Any) -> Any:
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(store.models, method, spy)
    return calls


BAD_NAMES = ["..%2fx", "%2e%2e", "x%00y", "a%5c..%5cb", "a" * 200, "-x", "x%20y", "%C3%A9t%C3%A9"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_model_names_are_refused_before_any_lookup(
    store: Store, store_calls: list[str], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TestClient(create_app(store, ServeSettings(token="admin", refresh_interval=60))) as client:
        store_calls.clear()
        admin = {"authorization": "Bearer admin"}
        for method, path, body in [
            ("POST", f"/predict/{name}", RECORD),
            ("POST", f"/v2/models/{name}/infer", OIP),
            ("POST", f"/invocations/{name}", {"dataframe_records": [RECORD]}),
            ("POST", f"/admin/models/{name}/promote", {"version": 1}),
            ("POST", f"/admin/models/{name}/rollback", {}),
            ("POST", f"/v2/repository/models/{name}/load", {}),
        ]:
            response = client.request(method, path, json=body, headers=admin)
            assert response.status_code in (400, 404), (path, response.status_code)
            assert "error" in response.json()
        assert store_calls == []


def test_a_bad_name_says_which_pattern_names_follow(guarded: TestClient) -> None:
    response = guarded.post("/predict/x%00y", json=RECORD, headers={"authorization": "Bearer reader"})
    assert response.status_code == 400
    assert response.json() == {"error": "'x\\x00y' is not a model name.", "hint": response.json()["hint"]}
    assert "[A-Za-z]" in response.json()["hint"]


def test_unknown_routes_answer_json(guarded: TestClient) -> None:
    assert guarded.get("/nope").json() == {"error": "not found."}
    assert guarded.get("/predict/toy").status_code == 405


def test_a_foreign_host_header_is_refused(store: Store) -> None:
    with BackgroundServer(store, ServeSettings(refresh_interval=60)) as server:
        assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200  # Host: 127.0.0.1:PORT
        for host in ("localhost", f"localhost:{server.port}", "[::1]"):
            assert httpx.get(f"{server.url}/v2/health/ready", headers={"host": host}).status_code == 200
        for host in ("evil.example", "127.0.0.1.evil.example", "", "a b"):
            response = httpx.post(f"{server.url}/predict/toy", json=RECORD, headers={"host": host})
            assert response.status_code == 400, host
            assert "--allow-host" in response.json()["hint"]
    assert store.predictions.count("toy") == 0


def test_allowed_hosts_replace_the_default(store: Store) -> None:
    app = create_app(store, ServeSettings(allowed_hosts=["api.example.com", "*.internal"]), host="127.0.0.1")
    with TestClient(app, base_url="http://api.example.com") as client:
        assert client.get("/v2/health/live").status_code == 200
        assert client.get("/v2/health/live", headers={"host": "a.b.internal"}).status_code == 200
        assert client.get("/v2/health/live", headers={"host": "127.0.0.1"}).status_code == 400
    with TestClient(create_app(store, ServeSettings(allowed_hosts=["*"]), host="127.0.0.1")) as client:
        assert client.get("/v2/health/live", headers={"host": "anything.example"}).status_code == 200
    with pytest.raises(ConfigError, match="is not a host pattern"):
        create_app(store, ServeSettings(allowed_hosts=["evil.*"]))


def test_cors_is_off_by_default(guarded: TestClient) -> None:
    response = guarded.get("/v2/health/live", headers={"origin": "https://app.example.com"})
    assert "access-control-allow-origin" not in response.headers
    preflight = guarded.options(
        "/predict/toy",
        headers={"origin": "https://app.example.com", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_allows_only_the_listed_origins(store: Store) -> None:
    settings = ServeSettings(allowed_origins=["https://app.example.com"], refresh_interval=60)
    with TestClient(create_app(store, settings)) as client:
        ok = client.post("/predict/toy", json=RECORD, headers={"origin": "https://app.example.com"})
        assert ok.headers["access-control-allow-origin"] == "https://app.example.com"
        other = client.post("/predict/toy", json=RECORD, headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        preflight = client.options(
            "/predict/toy",
            headers={
                "origin": "https://app.example.com",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
        refused = client.options(
            "/predict/toy", headers={"origin": "https://evil.example", "access-control-request-method": "POST"}
        )
        assert refused.status_code == 400
    with pytest.raises(ConfigError, match="is not a browser origin"):
        create_app(store, ServeSettings(allowed_origins=["app.example.com"]))
