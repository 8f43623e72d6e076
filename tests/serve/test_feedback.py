"""POST /feedback and /v2/models/{name}/feedback on a served app: auth, validation, durability, idempotency."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from fastapi.testclient import TestClient

from loopline.serve import ServeSettings, create_app
from loopline.serve._settings import PREDICT_TOKEN_ENV
from loopline.store import Store
from loopline.train import TrainSpec, train_candidate

from .conftest import make_frame, register
from .test_process import STARTUP, free_port

TOKEN = "predict-s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def settings(**overrides: Any) -> ServeSettings:
    options: dict[str, Any] = {"predict_token": TOKEN, "max_records": 50, "refresh_interval": 60}
    return ServeSettings(**{**options, **overrides})


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(store, settings())) as test_client:
        yield test_client


def predict(client: TestClient, rows: int) -> list[str]:
    records = make_frame(rows, seed=3).drop("label").to_dicts()
    body = client.post("/predict/toy", json=records, headers=AUTH).json()
    return [p["prediction_id"] for p in body["predictions"]]


def everything(store: Store) -> pl.DataFrame:
    now = datetime.now(UTC)
    return pl.concat(store.feedback.labelled("toy", now - timedelta(hours=1), now + timedelta(hours=1)))


def test_labels_before_the_prediction_log_flushes_are_stored_and_joined_later(store: Store) -> None:
    with TestClient(create_app(store, settings(log_flush_interval=3600))) as client:
        ids = predict(client, 10)
        labels = [{"id": i, "label": n % 2 == 0} for n, i in enumerate(ids[:6])]
        answer = client.post("/feedback", json={"model": "toy", "labels": labels}, headers=AUTH)
        assert answer.status_code == 200
        assert answer.json() == {"model": "toy", "received": 6, "stored": 6, "updated": 0, "unchanged": 0}
        assert store.predictions.count("toy") == 0  # still in the service's log: the labels wait for them
        assert store.feedback.count("toy") == 6  # committed before the answer
    frame = everything(store)  # the service flushed its log when it stopped
    assert frame.height == 10
    got = dict(zip(frame["prediction_id"], frame["label"], strict=True))
    assert [got[i] for i in ids] == [True, False, True, False, True, False, None, None, None, None]
    assert (
        store.feedback.coverage("toy", frame["created_at"].min(), frame["created_at"].max() + timedelta(1)).labelled
        == 6
    )


def test_resending_is_idempotent_and_a_changed_label_is_updated(client: TestClient, store: Store) -> None:
    ids = predict(client, 3)
    body = {"model": "toy", "labels": [{"id": i, "label": True} for i in ids]}
    assert client.post("/feedback", json=body, headers=AUTH).json()["stored"] == 3
    again = client.post("/feedback", json=body, headers=AUTH).json()
    assert (again["stored"], again["unchanged"]) == (0, 3)
    body["labels"][0]["label"] = "False"  # the class's text, as the probabilities name it, is accepted
    changed = client.post("/feedback", json=body, headers=AUTH).json()
    assert (changed["updated"], changed["unchanged"]) == (1, 2)
    assert store.feedback.get("toy", ids[:1])[ids[0]].label is False


def test_the_oip_route_takes_tensors(client: TestClient, store: Store) -> None:
    ids = predict(client, 2)
    body = {
        "inputs": [
            {"name": "id", "datatype": "BYTES", "shape": [2], "data": ids},
            {"name": "label", "datatype": "BOOL", "shape": [2], "data": [True, False]},
            {"name": "event_time", "datatype": "BYTES", "shape": [2], "data": ["2025-03-01T10:00:00Z", None]},
        ]
    }
    answer = client.post("/v2/models/toy/feedback", json=body, headers=AUTH)
    assert answer.status_code == 200 and answer.json()["stored"] == 2
    stored = store.feedback.get("toy", ids)
    assert stored[ids[0]].event_time == datetime(2025, 3, 1, 10, tzinfo=UTC)
    bad = client.post("/v2/models/toy/feedback", json={"inputs": [body["inputs"][0]]}, headers=AUTH)
    assert bad.status_code == 422 and 'tensors "id" and "label"' in bad.json()["errors"][0]["reason"]
    wrong = client.post(
        "/v2/models/toy/feedback",
        json={"inputs": [body["inputs"][0], {**body["inputs"][1], "data": [True, 7]}]},
        headers=AUTH,
    )
    assert wrong.json()["errors"][0]["field"] == "label[1]"


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer wrong"}, 403), ({"Authorization": "Basic x"}, 401)],
)
def test_without_the_predict_token_nothing_is_stored(
    client: TestClient, store: Store, headers: dict[str, str], status: int
) -> None:
    body = {"model": "toy", "labels": [{"id": "abc", "label": True}]}
    for path, payload in (("/feedback", body), ("/v2/models/toy/feedback", {"inputs": []})):
        answer = client.post(path, json=payload, headers=headers)
        assert answer.status_code == status
    assert store.feedback.count("toy") == 0


def test_without_a_predict_token_configured_feedback_is_open_like_predictions(store: Store) -> None:
    with TestClient(create_app(store, ServeSettings(refresh_interval=60))) as client:
        answer = client.post("/feedback", json={"model": "toy", "labels": [{"id": "abc", "label": True}]})
        assert answer.status_code == 200


@pytest.mark.parametrize(
    ("labels", "field", "reason"),
    [
        ([{"id": "a", "label": True}, {"id": "b", "label": "maybe"}], "labels[1].label", "'maybe' is not a class"),
        ([{"id": "a", "label": 1}], "labels[0].label", "1 is not a class"),
        ([{"id": "a"}], "labels[0].label", "is missing"),
        ([{"id": "a", "label": None}], "labels[0].label", "is missing"),
        ([{"id": "../x", "label": True}], "labels[0].id", "'../x' is not a prediction id"),
        ([{"id": 5, "label": True}], "labels[0].id", "5 is not a prediction id"),
        ([{"id": "a", "label": True, "lable": 1}], "labels[0].lable", "is not a field of a label"),
        ([{"id": "a", "label": True, "event_time": "yesterday"}], "labels[0].event_time", "not a timestamp"),
        (["a"], "labels[0]", "expected a JSON object"),
        ([], "labels", "expected a non-empty list"),
    ],
)
def test_bad_labels_are_422_naming_record_and_field_and_nothing_is_stored(
    client: TestClient, store: Store, labels: list[Any], field: str, reason: str
) -> None:
    answer = client.post("/feedback", json={"model": "toy", "labels": labels}, headers=AUTH)
    assert answer.status_code == 422
    first = answer.json()["errors"][0]
    assert first["field"] == field and reason in first["reason"]
    assert store.feedback.count("toy") == 0


def test_the_hint_says_which_classes_the_model_knows(client: TestClient) -> None:
    answer = client.post("/feedback", json={"model": "toy", "labels": [{"id": "a", "label": "maybe"}]}, headers=AUTH)
    assert answer.json()["errors"][0]["hint"] == "Send one of its classes: False, True."


def test_unknown_model_bad_bodies_and_big_batches(client: TestClient) -> None:
    unknown = client.post("/feedback", json={"model": "tyo", "labels": [{"id": "a", "label": True}]}, headers=AUTH)
    assert unknown.status_code == 404 and "Did you mean 'toy'" in unknown.json()["hint"]
    assert client.post("/v2/models/nope/feedback", json={"inputs": []}, headers=AUTH).status_code == 404
    assert client.post("/feedback", json={"labels": []}, headers=AUTH).status_code == 422
    assert (
        client.post("/feedback", content=b"{", headers={**AUTH, "content-type": "application/json"}).status_code == 400
    )
    assert client.post("/feedback", content=b"x", headers={**AUTH, "content-type": "text/plain"}).status_code == 415
    assert client.post("/feedback", json={"model": "../x", "labels": []}, headers=AUTH).status_code == 400
    big = {"model": "toy", "labels": [{"id": f"i{n}", "label": True} for n in range(51)]}
    answer = client.post("/feedback", json=big, headers=AUTH)
    assert answer.status_code == 413 and "limit is 50" in answer.json()["error"]


def test_a_real_service_commits_labels_before_it_answers_on_each_backend(store_url: str, tmp_path: Path) -> None:
    """`loopline serve` as a process on SQLite and PostgreSQL: the labels are in the store when the answer comes,
    and stay there when the process is killed at once (kill -9) afterwards."""
    home = tmp_path / "home"
    with Store.open(store_url, home / "artifacts") as opened:
        opened.models.promote("toy", register(opened).version)
    port = free_port()
    env = {**os.environ, "LOOPLINE_HOME": str(home), "LOOPLINE_STORE_URL": store_url, PREDICT_TOKEN_ENV: TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-m", "loopline.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP
        while not _ready(url):
            assert time.monotonic() < deadline, "the service did not become ready"
            time.sleep(0.1)
        records = make_frame(5, seed=1).drop("label").to_dicts()
        ids = [
            p["prediction_id"]
            for p in httpx.post(f"{url}/predict/toy", json=records, headers=AUTH).json()["predictions"]
        ]
        body = {"model": "toy", "labels": [{"id": i, "label": True} for i in ids[:3]]}
        assert httpx.post(f"{url}/feedback", json=body).status_code == 401
        answer = httpx.post(f"{url}/feedback", json=body, headers=AUTH)
        assert answer.status_code == 200 and answer.json()["stored"] == 3
        process.kill()
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    with Store.open(store_url, home / "artifacts") as opened:
        assert set(opened.feedback.get("toy", ids)) == set(ids[:3])


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v2/health/ready").status_code == 200
    except httpx.TransportError:
        return False


def test_a_regression_takes_finite_numbers(store: Store) -> None:
    train, valid = make_frame(300, 1), make_frame(100, 2)
    spec = TrainSpec(target="x", numeric=["n"], categorical=["group"], estimator="linear_regression", task="regression")
    result = train_candidate(train, valid, spec)
    version = store.models.register(
        name="price",
        algorithm="linear_regression",
        bundle_digest=store.artifacts.put_bytes(result.bundle.to_bytes()),
        reference_digest=None,
        metrics=result.metrics,
        params=result.params,
        config={},
        input_schema=result.bundle.input_schema,
        data_fingerprint="test",
        run_id=None,
        timings=result.timings,
    )
    store.models.promote("price", version.version)
    with TestClient(create_app(store, settings())) as client:
        good = client.post("/feedback", json={"model": "price", "labels": [{"id": "a", "label": 12}]}, headers=AUTH)
        assert good.status_code == 200 and store.feedback.get("price", ["a"])["a"].label == 12.0
        for bad in ("12", True):
            answer = client.post(
                "/feedback", json={"model": "price", "labels": [{"id": "a", "label": bad}]}, headers=AUTH
            )
            assert answer.status_code == 422 and "is not a finite number" in answer.json()["errors"][0]["reason"]
        body = b'{"model": "price", "labels": [{"id": "a", "label": NaN}]}'
        nan = client.post("/feedback", content=body, headers={**AUTH, "content-type": "application/json"})
        assert nan.status_code == 422
