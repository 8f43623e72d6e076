"""The prediction service: protocols, validation before the model, logging, hot swap, auth."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from loopline.serve import ServeSettings, create_app
from loopline.store import Store
from loopline.train import ModelBundle

from .conftest import make_frame, register

RECORD = {"x": 0.3, "n": 4, "group": "a"}


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    app = create_app(store, ServeSettings(token="s3cret", max_body_bytes=50_000, max_records=100, refresh_interval=60))
    with TestClient(app) as test_client:
        yield test_client


def served_bundle(store: Store) -> ModelBundle:
    production = store.models.production("toy")
    assert production is not None
    return ModelBundle.from_bytes(store.artifacts.get_bytes(production.bundle_digest))


def test_health_and_metadata(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").status_code == 200
    meta = client.get("/v2/models/toy").json()
    assert meta["name"] == "toy" and meta["versions"] == ["1"]
    assert {i["name"]: i["datatype"] for i in meta["inputs"]} == {"x": "FP64", "n": "FP64", "group": "BYTES"}
    assert client.get("/v2/models/toy/ready").status_code == 200
    assert client.get("/v2/models/nope").status_code == 404


def test_plain_json_matches_offline_scoring(client: TestClient, store: Store) -> None:
    frame = make_frame(30, seed=9).drop("label")
    records = frame.to_dicts()
    body = client.post("/predict/toy", json=records).json()
    assert body["model"] == "toy" and body["version"] == 1
    offline = served_bundle(store).predict_table(frame)
    served = [p["prediction"] for p in body["predictions"]]
    assert served == offline["prediction"].tolist()
    probabilities = np.array([p["probabilities"]["True"] for p in body["predictions"]])
    np.testing.assert_allclose(probabilities, offline["probability"][:, 1])
    assert len({p["prediction_id"] for p in body["predictions"]}) == 30


def test_single_record_and_default_model(client: TestClient) -> None:
    one = client.post("/predict", json=RECORD)
    assert one.status_code == 200 and len(one.json()["predictions"]) == 1


def test_open_inference_protocol(client: TestClient, store: Store) -> None:
    request = {
        "id": "r1",
        "inputs": [
            {"name": "x", "shape": [2], "datatype": "FP64", "data": [0.3, -1.0]},
            {"name": "n", "shape": [2], "datatype": "FP64", "data": [4, 1]},
            {"name": "group", "shape": [2], "datatype": "BYTES", "data": ["a", "c"]},
        ],
    }
    body = client.post("/v2/models/toy/infer", json=request).json()
    assert body["model_name"] == "toy" and body["model_version"] == "1" and body["id"] == "r1"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["predict"]["shape"] == [2]
    assert outputs["predict_proba"]["shape"] == [2, 2]
    assert client.post("/v2/models/toy/versions/1/infer", json=request).status_code == 200
    assert client.post("/v2/models/toy/versions/7/infer", json=request).status_code == 404


@pytest.mark.parametrize(
    ("record", "field", "reason"),
    [
        ({"x": "high", "n": 1, "group": "a"}, "x", "expected a number"),
        ({"x": 1.0, "n": 1, "grup": "a"}, "group", "missing field; the record has a field of a close name"),
        ({"x": 1.0, "n": 1, "group": 1.5}, "group", "expected text"),
        ({"x": 1.0, "n": 2.5, "group": "a"}, "n", "expected a whole number (the model was trained on Int64)"),
        ({"x": 1.0, "n": "2,5", "group": "a"}, "n", "expected a whole number"),
        ({"x": True, "n": 1, "group": "a"}, "x", "expected a number"),
        ({"x": [1.0], "n": 1, "group": "a"}, "x", "got an array"),
        ({"x": 1.0, "n": 1, "group": {"a": 1}}, "group", "got an object"),
    ],
)
def test_bad_records_get_422_naming_the_field(
    client: TestClient, record: dict[str, object], field: str, reason: str
) -> None:
    response = client.post("/predict/toy", json=record)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert any(e["field"] == field and reason in e["reason"] for e in errors)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b'{"x": NaN, "n": 1, "group": "a"}', "application/json", 422, "NaN is not a valid JSON number"),
        (b'{"x": Infinity, "n": 1, "group": "a"}', "application/json", 422, "Infinity"),
        (b'{"x": 1, ', "application/json", 400, "malformed JSON"),
        (b"", "application/json", 400, "empty"),
        (b"\x80\x04\x95", "application/octet-stream", 415, "not accepted"),
        (b'{"x": 1}', "text/plain", 415, "application/json"),
        (b'\xff\xfe{"x": 1}', "application/json", 400, "not UTF-8"),
        (b"[1, 2]", "application/json", 422, "expected a JSON object"),
        (b"[]", "application/json", 422, "non-empty list"),
        (b"[" * 50_000, "application/json", 400, "nested too deeply"),
    ],
)
def test_bad_bodies_never_reach_the_model(
    client: TestClient, body: bytes, content_type: str, status: int, message: str
) -> None:
    response = client.post("/predict/toy", content=body, headers={"content-type": content_type})
    assert response.status_code == status
    assert message in response.text


def test_oversized_bodies_and_batches_are_refused(client: TestClient) -> None:
    huge = json.dumps([RECORD] * 3000).encode()
    assert client.post("/predict/toy", content=huge, headers={"content-type": "application/json"}).status_code == 413
    assert client.post("/predict/toy", json=[RECORD] * 101).status_code == 413
    assert client.get("/v2/health/ready").status_code == 200


def test_unknown_model_is_404_with_a_hint(client: TestClient) -> None:
    response = client.post("/predict/tyo", json=RECORD)
    assert response.status_code == 404
    assert "Did you mean 'toy'" in response.json()["error"]


def test_predictions_are_logged_and_nothing_is_lost_on_shutdown(store: Store) -> None:
    app = create_app(store, ServeSettings(log_flush_interval=10, refresh_interval=60))
    with TestClient(app) as client:
        for _ in range(5):
            assert client.post("/predict/toy", json=[RECORD] * 7).status_code == 200
    assert store.predictions.count("toy") == 35  # flushed at shutdown even with a 10 s interval
    logged = store.predictions.read("toy")
    assert logged.height == 35
    assert set(logged["group"].to_list()) == {"a"}


def test_metrics_are_exposed(client: TestClient) -> None:
    client.post("/predict/toy", json=RECORD)
    client.post("/predict/toy", json={"x": "bad", "n": 1, "group": "a"})
    text = client.get("/metrics").text
    assert 'loopline_requests_total{endpoint="json",model="toy",version="1"} 1.0' in text
    assert 'loopline_errors_total{cause="validation",model="toy"} 1.0' in text
    assert "loopline_request_latency_seconds_bucket" in text


def test_promotion_is_picked_up_only_with_the_token(client: TestClient, store: Store) -> None:
    challenger = register(store, estimator="random_forest", seed=3)
    store.models.promote("toy", challenger.version)
    assert client.post("/v2/repository/models/toy/load").status_code == 401
    wrong = client.post("/v2/repository/models/toy/load", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 403
    assert client.post("/predict/toy", json=RECORD).json()["version"] == 1
    ok = client.post("/v2/repository/models/toy/load", headers={"authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and ok.json()["serving"] == {"toy": challenger.version}
    assert client.post("/predict/toy", json=RECORD).json()["version"] == challenger.version


def test_write_endpoints_are_closed_without_a_configured_token(store: Store) -> None:
    with TestClient(create_app(store, ServeSettings(refresh_interval=60))) as client:
        response = client.post("/v2/repository/models/toy/load", headers={"authorization": "Bearer x"})
        assert response.status_code == 403
