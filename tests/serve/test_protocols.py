"""Wire protocols as plugins: the built-ins are entry points, a user's protocol gets the shared path for free."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.testclient import TestClient

from loopline.core.errors import ConfigError
from loopline.serve import ServeSettings, create_app
from loopline.serve._validation import BadRequest, parse_json
from loopline.serve.protocols import PROTOCOLS, PredictionService, WireProtocol
from loopline.store import Store

if TYPE_CHECKING:
    from loopline.serve._models import LoadedModel


COLUMNS = {"x": [0.3, -1.0, 2.0], "n": [4, 1, 0], "group": ["a", "c", "b"]}


class ColumnsProtocol(WireProtocol[int]):
    """A user's protocol: one list per feature in, the labels out; errors as ``{"problem", "status"}``."""

    name = "columns"

    def routes(self, service: PredictionService) -> APIRouter:
        router = APIRouter()

        @router.post("/columns/{name}")
        async def predict(request: Request, name: str) -> Response:
            return await service.predict(request, self, name)

        return router

    def decode(self, body: bytes, headers: Mapping[str, str], model: LoadedModel) -> tuple[Any, int]:
        payload = parse_json(body, headers.get("content-type"))
        if not isinstance(payload, dict) or not payload:
            raise BadRequest(400, "send one list of values per feature.")
        rows = {len(values) for values in payload.values() if isinstance(values, list)}
        if len(rows) != 1:
            raise BadRequest(400, "every feature needs a list of the same length.")
        count = rows.pop()
        return [{name: values[i] for name, values in payload.items()} for i in range(count)], count

    def encode(self, request: int, model: LoadedModel, outputs: list[dict[str, Any]], ids: list[str]) -> Response:
        return JSONResponse({"labels": [o["prediction"] for o in outputs], "rows": request})

    def error(self, content: dict[str, Any], status: int, headers: Mapping[str, str] | None = None) -> Response:
        return JSONResponse({"problem": content["error"], "status": status}, status_code=status, headers=headers)


@pytest.fixture
def columns() -> Iterator[ColumnsProtocol]:
    protocol = PROTOCOLS.register("columns", ColumnsProtocol())
    yield protocol
    PROTOCOLS._items.pop("columns")  # the Registry has no public unregister; keep other tests' apps as they were


def test_the_built_in_protocols_are_entry_points_like_a_users() -> None:
    declared = {entry.name: entry.value for entry in entry_points(group="loopline.protocols")}
    assert declared == {
        "json": "loopline.serve.protocols.json_api:JsonProtocol",
        "oip": "loopline.serve.protocols.oip:OipProtocol",
        "mlflow": "loopline.serve.protocols.mlflow:MlflowProtocol",
    }
    for name in declared:
        protocol = PROTOCOLS.get(name)
        assert isinstance(protocol, WireProtocol) and protocol.name == name


def test_a_users_protocol_gets_validation_logging_and_metrics(store: Store, columns: ColumnsProtocol) -> None:
    settings = ServeSettings(log_flush_interval=10, refresh_interval=60)
    with TestClient(create_app(store, settings)) as client:
        answer = client.post("/columns/toy", json=COLUMNS)
        assert answer.status_code == 200 and answer.json()["rows"] == 3
        records = [{"x": x, "n": n, "group": g} for x, n, g in zip(*COLUMNS.values(), strict=True)]
        plain = client.post("/predict/toy", json=records).json()["predictions"]
        assert answer.json()["labels"] == [p["prediction"] for p in plain]

        invalid = client.post("/columns/toy", json={**COLUMNS, "x": ["high", 1.0, 2.0]})
        assert invalid.status_code == 422
        assert invalid.json()["status"] == 422 and "x" in invalid.json()["problem"]
        unknown = client.post("/columns/tyo", json=COLUMNS)
        assert unknown.status_code == 404 and "Did you mean 'toy'" in unknown.json()["problem"]
        ragged = client.post("/columns/toy", json={**COLUMNS, "n": [1]})
        assert ragged.json() == {"problem": "every feature needs a list of the same length.", "status": 400}

        text = client.get("/metrics").text
    assert 'loopline_requests_total{endpoint="columns",model="toy",version="1"} 1.0' in text
    assert 'loopline_errors_total{cause="validation",model="toy"} 1.0' in text
    assert 'loopline_errors_total{cause="not_found",model="_unknown"} 1.0' in text
    assert 'loopline_errors_total{cause="http_400",model="toy"} 1.0' in text
    assert store.predictions.count("toy") == 6  # three through each protocol, flushed at shutdown


def test_a_users_protocol_is_behind_the_predict_token(store: Store, columns: ColumnsProtocol) -> None:
    settings = ServeSettings(predict_token="p-token", refresh_interval=60)
    with TestClient(create_app(store, settings)) as client:
        refused = client.post("/columns/toy", json=COLUMNS)
        assert refused.status_code == 401 and refused.json()["problem"] == "missing bearer token."
        allowed = client.post("/columns/toy", json=COLUMNS, headers={"authorization": "Bearer p-token"})
        assert allowed.status_code == 200


def test_settings_select_the_protocols_mounted(store: Store, columns: ColumnsProtocol) -> None:
    with TestClient(create_app(store, ServeSettings(protocols=["columns"], refresh_interval=60))) as client:
        assert client.post("/columns/toy", json=COLUMNS).status_code == 200
        for path in ("/predict/toy", "/invocations", "/v2/models/toy/infer"):
            assert client.post(path, json={}).status_code == 404
        assert client.get("/ping").status_code == 200  # health and metrics are not a protocol's
    with TestClient(create_app(store, ServeSettings(protocols=["json", "oip"], refresh_interval=60))) as client:
        assert client.post("/columns/toy", json=COLUMNS).status_code == 404
        assert client.post("/invocations", json={"inputs": [[0.3, 4, "a"]]}).status_code == 404
        assert client.get("/v2/health/live").json() == {"live": True}


def test_every_registered_protocol_is_mounted_by_default(store: Store, columns: ColumnsProtocol) -> None:
    mlflow_body = {"dataframe_records": [{"x": 0.3, "n": 4, "group": "a"}]}
    with TestClient(create_app(store, ServeSettings(refresh_interval=60))) as client:
        assert client.post("/columns/toy", json=COLUMNS).status_code == 200
        assert client.post("/invocations", json=mlflow_body).status_code == 200


@pytest.mark.parametrize(
    ("protocols", "match", "hint"),
    [
        (["jsn"], "protocol 'jsn' is not registered", "Did you mean 'json'"),
        (["json", "grpc"], "protocol 'grpc' is not registered", "Registered protocols: json, mlflow, oip"),
        ([], "protocols is \\[\\]; it must be a non-empty list", "leave it unset to mount them all"),
        ("json", "protocols is 'json'; it must be a non-empty list", "Name one or more of json"),
    ],
)
def test_an_unknown_protocol_is_refused_with_the_known_ones(
    store: Store, protocols: Any, match: str, hint: str
) -> None:
    with pytest.raises(ConfigError, match=match) as raised:
        create_app(store, ServeSettings(protocols=protocols))
    assert raised.value.key == "protocols" and hint in (raised.value.hint or "")


def test_a_protocol_registered_under_another_name_is_refused(store: Store) -> None:
    PROTOCOLS.register("cols", ColumnsProtocol())
    try:
        with pytest.raises(ConfigError, match="registered as 'cols' is named 'columns'") as raised:
            create_app(store, ServeSettings(protocols=["cols"]))
        assert "whose `name` is 'cols'" in (raised.value.hint or "")
    finally:
        PROTOCOLS._items.pop("cols")


def test_the_protocol_selection_reaches_worker_processes(store: Store) -> None:
    from loopline.serve._factory import SETTINGS_ENV, _worker_environment

    with _worker_environment(store, "127.0.0.1", ServeSettings(protocols=("json", "mlflow"))):
        options = json.loads(os.environ[SETTINGS_ENV])
    assert options["protocols"] == ["json", "mlflow"]
    assert options.pop("host") == "127.0.0.1" and options.pop("artifacts") and options.pop("local_dir")
    settings = ServeSettings(**{**options, "refresh_interval": 60})
    with TestClient(create_app(store, settings)) as client:  # what a worker builds from them
        assert client.get("/v2/health/live").status_code == 404
        assert client.post("/invocations", json={"inputs": [[0.3, 4, "a"]]}).status_code == 200


def test_the_public_names_are_listed_and_sorted() -> None:
    import loopline.serve.protocols as protocols

    assert protocols.__all__ == sorted(protocols.__all__)
    assert all(hasattr(protocols, name) for name in protocols.__all__)
