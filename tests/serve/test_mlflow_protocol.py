"""MLflow's scoring protocol on the service: the four JSON formats, CSV, params, bad input, health."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loopline.core.errors import SchemaValidationError
from loopline.serve import ServeSettings, create_app
from loopline.serve._mlflow import records_from_mlflow
from loopline.serve._validation import BadRequest
from loopline.store import Store

from .conftest import make_frame

COLUMNS = ["x", "n", "group"]


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    app = create_app(store, ServeSettings(max_body_bytes=50_000, max_records=100, refresh_interval=60))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def rows() -> list[dict[str, Any]]:
    return make_frame(25, seed=4).drop("label").to_dicts()


def plain(client: TestClient, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = client.post("/predict", json=rows)
    assert response.status_code == 200
    predictions: list[dict[str, Any]] = response.json()["predictions"]
    return predictions


def invoke(client: TestClient, body: Mapping[str, object], path: str = "/invocations") -> Any:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"predictions"}
    return response.json()["predictions"]


def split(rows: list[dict[str, Any]], columns: list[str]) -> dict[str, Any]:
    return {"columns": columns, "data": [[row[c] for c in columns] for row in rows]}


def formats(rows: list[dict[str, Any]]) -> dict[str, dict[str, object]]:
    return {
        "dataframe_split": {"dataframe_split": split(rows, COLUMNS)},
        "dataframe_split_reordered": {"dataframe_split": split(rows, ["group", "x", "n"])},
        "dataframe_split_with_index": {"dataframe_split": {**split(rows, COLUMNS), "index": list(range(len(rows)))}},
        "dataframe_records": {"dataframe_records": rows},
        "instances_records": {"instances": rows},
        "instances_lists": {"instances": [[row[c] for c in COLUMNS] for row in rows]},
        "inputs_columns": {"inputs": {c: [row[c] for row in rows] for c in COLUMNS}},
        "inputs_records": {"inputs": rows},
        "inputs_lists": {"inputs": [[row[c] for c in COLUMNS] for row in rows]},
    }


@pytest.mark.parametrize("form", list(formats([{"x": 0.0, "n": 0, "group": "a"}])))
def test_every_format_predicts_what_predict_does(client: TestClient, rows: list[dict[str, Any]], form: str) -> None:
    served = plain(client, rows)
    body = formats(rows)[form]
    assert invoke(client, body) == [p["prediction"] for p in served]
    assert invoke(client, body, "/invocations/toy") == [p["prediction"] for p in served]
    with_proba = {**body, "params": {"predict_method": "predict_proba"}}
    assert invoke(client, with_proba) == [[p["probabilities"][k] for k in ("False", "True")] for p in served]


def test_predict_proba_gives_the_probabilities_in_class_order(client: TestClient, rows: list[dict[str, Any]]) -> None:
    body = {"dataframe_records": rows, "params": {"predict_method": "predict_proba"}}
    probabilities = invoke(client, body)
    expected = [[p["probabilities"][k] for k in ("False", "True")] for p in plain(client, rows)]
    assert probabilities == expected
    assert invoke(client, {"dataframe_records": rows, "params": {"predict_method": "predict"}}) == [
        p["prediction"] for p in plain(client, rows)
    ]


def test_csv_with_a_header_row(client: TestClient, rows: list[dict[str, Any]]) -> None:
    lines = ["group,x,n"] + [f"{r['group']},{r['x']!r},{r['n']}" for r in rows]
    response = client.post("/invocations", content="\n".join(lines) + "\n", headers={"content-type": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == [p["prediction"] for p in plain(client, rows)]


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"dataframe_split": {"columns": ["x", "n", "grp"], "data": [[0.1, 1, "a"]]}}, "group", "missing field"),
        ({"dataframe_records": [{"x": "high", "n": 1, "group": "a"}]}, "x", "expected a number"),
        ({"instances": [{"x": 0.1, "n": 1, "group": 1.5}]}, "group", "expected text"),
        ({"inputs": {"x": [0.1], "n": [1.5], "group": ["a"]}}, "n", "expected a whole number"),
        (
            {"dataframe_split": {"columns": COLUMNS, "data": [[0.1, 1, "a"], [0.2, 1]]}},
            "dataframe_split.data[1]",
            "has 2 values; expected 3",
        ),
        ({"instances": [[0.1, 1, "a", 9]]}, "instances[0]", "has 4 values"),
        ({"inputs": {"x": [0.1, 0.2], "n": [1], "group": ["a", "b"]}}, "inputs.n", "has 1 values"),
        ({"dataframe_split": {"columns": ["x", "x"], "data": []}}, "dataframe_split.columns", "named twice"),
        (
            {"dataframe_split": {"columns": COLUMNS, "data": [[0.1, 1, "a"]], "index": [0, 1]}},
            "dataframe_split.index",
            "one per row",
        ),
        ({"dataframe_records": [[0.1, 1, "a"]]}, "dataframe_records[0]", "expected an object"),
        (
            {"dataframe_records": [{"x": 0.1, "n": 1, "group": "a"}], "params": {"predict_method": "score"}},
            "params.predict_method",
            "not one of predict, predict_proba",
        ),
        (
            {"instances": [{"x": 0.1, "n": 1, "group": "a"}], "params": {"temperature": 1}},
            "params.temperature",
            "unknown parameter",
        ),
    ],
)
def test_bad_content_gets_422_naming_the_field(
    client: TestClient, body: dict[str, object], field: str, reason: str
) -> None:
    response = client.post("/invocations", json=body)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert any(e["field"] == field and reason in e["reason"] for e in errors), errors
    assert response.json()["error_code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"dataframe_split": {"columns": ["x", "n", "group"], "data": [[NaN, 1, "a"]]}}', "x"),
        (b'{"dataframe_records": [{"x": 0.1, "n": Infinity, "group": "a"}]}', "n"),
        (b'{"inputs": {"x": [0.1], "n": [-Infinity], "group": ["a"]}}', "n"),
    ],
)
def test_non_finite_literals_get_422_naming_the_field(client: TestClient, body: bytes, field: str) -> None:
    response = client.post("/invocations", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == field and error["record"] == 0
    assert error["reason"].startswith("expected a finite number") and "send null" in error["reason"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"dataframe_records": [], "instances": []}, "got dataframe_records, instances"),
        ({"params": {}}, "got none"),
        ({"records": []}, "unknown key 'records'"),
        ([{"x": 0.1, "n": 1, "group": "a"}], "the body is a JSON array"),
    ],
)
def test_envelope_needs_exactly_one_format_key(client: TestClient, body: object, message: str) -> None:
    response = client.post("/invocations", json=body)
    assert response.status_code == 400
    text = response.json()["message"]
    assert message in text
    assert "expected exactly one of dataframe_split, dataframe_records, instances, inputs" in text


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"\x80\x04\x95", "application/octet-stream", 415, "not accepted"),
        (b'{"inputs": []}', "text/plain", 415, "application/json or text/csv"),
        (b'{"inputs": []}', "application/json; charset=latin-1", 415, "UTF-8"),
        (b"", "application/json", 400, "empty"),
        (b'{"inputs": ', "application/json", 400, "malformed JSON"),
        (b'\xff\xfe{"inputs": []}', "application/json", 400, "not UTF-8"),
        (b'{"inputs": ' + b"[" * 40_000, "application/json", 400, "nested too deeply"),
        (b"x,n,group\n0.1,1\n", "text/csv", 422, "line 2"),
        (b",x,n,group\n0,0.1,1,a\n", "text/csv", 422, "to_csv(index=False)"),
        (b"x,n,group\n", "text/csv", 422, "no rows"),
        (
            b"x,n,group\nhigh,1,a\n",
            "text/csv",
            422,
            "expected a number (the model was trained on Float64), got the text 'high'",
        ),
    ],
)
def test_bad_bodies_never_reach_the_model(
    client: TestClient, body: bytes, content_type: str, status: int, message: str
) -> None:
    response = client.post("/invocations", content=body, headers={"content-type": content_type})
    assert response.status_code == status
    assert message in response.text


def test_oversized_bodies_and_batches_are_refused(client: TestClient) -> None:
    record = {"x": 0.3, "n": 4, "group": "a"}
    huge = json.dumps({"dataframe_records": [record] * 3000}).encode()
    response = client.post("/invocations", content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "limit is 50000" in response.json()["message"]
    assert client.post("/invocations", json={"instances": [record] * 101}).status_code == 413
    assert client.get("/ping").status_code == 200


def test_unknown_model_is_404(client: TestClient) -> None:
    response = client.post("/invocations/tyo", json={"instances": [{"x": 0.1, "n": 1, "group": "a"}]})
    assert response.status_code == 404
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert "Did you mean 'toy'" in response.json()["message"]


def test_invocations_without_a_name_needs_exactly_one_model(store: Store) -> None:
    toy = store.models.production("toy")
    assert toy is not None
    skip = {"name", "version", "stage", "created_at", "promoted_at", "archived_at", "aliases"}
    fields = {k: v for k, v in vars(toy).items() if k not in skip}
    other = store.models.register(name="other", **fields)
    store.models.promote("other", other.version)
    body = {"instances": [[0.1, 1, "a"]]}
    with TestClient(create_app(store, ServeSettings(refresh_interval=60))) as two:
        response = two.post("/invocations", json=body)
        assert response.status_code == 404
        assert response.json()["models"] == ["other", "toy"]
        assert "/invocations/NAME" in response.json()["message"]
        assert two.post("/invocations/other", json=body).json() == two.post("/invocations/toy", json=body).json()


def test_records_from_mlflow_without_the_schema_order() -> None:
    assert records_from_mlflow({"instances": [{"x": 1}]}) == [{"x": 1}]
    assert records_from_mlflow({"inputs": {"x": [1, 2]}}) == [{"x": 1}, {"x": 2}]
    with pytest.raises(SchemaValidationError, match="expected an object, got array"):
        records_from_mlflow({"instances": [[1]]})
    with pytest.raises(BadRequest, match="expected exactly one of dataframe_split, dataframe_records"):
        records_from_mlflow({})


def test_ping_health_and_version(client: TestClient) -> None:
    for path in ("/ping", "/health"):
        response = client.get(path)
        assert response.status_code == 200 and response.json() == {"ready": True, "models": {"toy": 1}}
    version = client.get("/version")
    assert version.status_code == 200 and version.text[0].isdigit()


def test_ping_is_503_before_startup_and_without_models(tmp_path: Any, store: Store) -> None:
    app = create_app(store)
    assert TestClient(app).get("/ping").status_code == 503  # no lifespan: models not loaded yet
    empty = Store.open(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path / "empty-artifacts")
    try:
        with TestClient(create_app(empty, ServeSettings(refresh_interval=60))) as bare:
            response = bare.get("/ping")
            assert response.status_code == 503
            assert "loopline models promote" in response.json()["error"]
            routed = bare.post("/invocations", json={"instances": [[0.1, 1, "a"]]})
            assert routed.status_code == 404 and routed.json()["models"] == []
    finally:
        empty.close()


def test_metrics_count_mlflow_requests(client: TestClient) -> None:
    client.post("/invocations", json={"instances": [[0.1, 1, "a"]]})
    client.post("/invocations", json={"instances": [[0.1, 1]]})
    text = client.get("/metrics").text
    assert 'loopline_requests_total{endpoint="mlflow",model="toy",version="1"} 1.0' in text
    assert 'loopline_errors_total{cause="validation",model="toy"} 1.0' in text


def test_mlflow_predictions_are_logged(store: Store, rows: list[dict[str, Any]]) -> None:
    with TestClient(create_app(store, ServeSettings(log_flush_interval=10, refresh_interval=60))) as client:
        invoke(client, {"dataframe_split": split(rows, COLUMNS)})
        misnamed = {**split(rows, COLUMNS), "columns": ["x", "n", "grp"]}
        client.post("/invocations", json={"dataframe_split": misnamed})  # refused (a typo of group), not logged
    logged = store.predictions.read("toy")
    assert logged.height == len(rows)
    assert sorted(logged["x"].to_list()) == sorted(r["x"] for r in rows)  # one timestamp per batch: order is free
