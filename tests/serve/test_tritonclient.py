"""The OIP v2 endpoints with the real Triton HTTP client (``tritonclient.http``), against a real server."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from loopline.core.errors import SchemaValidationError
from loopline.serve import BackgroundServer
from loopline.serve._oip import parse_infer_request
from loopline.serve._validation import BadRequest
from loopline.store import Store
from loopline.train import ModelBundle

from .conftest import make_frame

MODEL = "toy"


@pytest.fixture
def client(store: Store) -> Iterator[httpclient.InferenceServerClient]:
    with BackgroundServer(store) as server:
        triton = httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")
        try:
            yield triton
        finally:
            triton.close()


def served_bundle(store: Store) -> ModelBundle:
    production = store.models.production(MODEL)
    assert production is not None
    return ModelBundle.from_bytes(store.artifacts.get_bytes(production.bundle_digest))


def tensors(frame: pl.DataFrame, *, binary: bool) -> list[httpclient.InferInput]:
    """One input tensor per column: FP64 for numbers, BYTES for strings."""
    inputs = []
    for name in frame.columns:
        series = frame[name]
        if series.dtype == pl.String:
            values, datatype = np.array(series.to_list(), dtype=np.object_), "BYTES"
        else:
            values, datatype = series.to_numpy().astype(np.float64), "FP64"
        tensor = httpclient.InferInput(name, list(values.shape), datatype)
        inputs.append(tensor.set_data_from_numpy(values, binary_data=binary))
    return inputs


def test_health_and_metadata(client: httpclient.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert not client.is_model_ready("nope")
    meta = client.get_model_metadata(MODEL)
    assert meta["name"] == MODEL and meta["versions"] == ["1"]
    assert {i["name"]: i["datatype"] for i in meta["inputs"]} == {"x": "FP64", "n": "FP64", "group": "BYTES"}
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_matches_offline_scoring(client: httpclient.InferenceServerClient, store: Store, binary: bool) -> None:
    frame = make_frame(25, seed=11).drop("label")
    outputs = [httpclient.InferRequestedOutput(o, binary_data=binary) for o in ("predict", "predict_proba")]
    result = client.infer(MODEL, inputs=tensors(frame, binary=binary), outputs=outputs, request_id="r1")
    offline = served_bundle(store).predict_table(frame)
    response = result.get_response()
    assert response["model_name"] == MODEL and response["model_version"] == "1" and response["id"] == "r1"
    assert result.as_numpy("predict").tolist() == offline["prediction"].tolist()
    probability = result.as_numpy("predict_proba")
    assert probability.dtype == np.float64 and probability.shape == (25, 2)
    assert np.array_equal(probability, offline["probability"])  # bit for bit
    sizes = [o.get("parameters", {}).get("binary_data_size") for o in response["outputs"]]
    assert sizes == ([25, 25 * 2 * 8] if binary else [None, None])  # BOOL: 1 byte a value; FP64: 8


def test_client_defaults_and_output_selection(client: httpclient.InferenceServerClient, store: Store) -> None:
    frame = make_frame(7, seed=12).drop("label")
    offline = served_bundle(store).predict_table(frame)
    inputs = [
        httpclient.InferInput(name, [7], datatype).set_data_from_numpy(values)  # binary_data=True by default
        for name, datatype, values in [
            ("x", "FP64", frame["x"].to_numpy()),
            ("n", "FP64", frame["n"].to_numpy().astype(np.float64)),
            ("group", "BYTES", np.array(frame["group"].to_list(), dtype=np.object_)),
        ]
    ]
    every = client.infer(MODEL, inputs=inputs)  # no outputs named: all of them, binary
    assert np.array_equal(every.as_numpy("predict_proba"), offline["probability"])
    assert every.as_numpy("predict").tolist() == offline["prediction"].tolist()
    one = client.infer(MODEL, inputs=inputs, outputs=[httpclient.InferRequestedOutput("predict_proba")])
    assert [o["name"] for o in one.get_response()["outputs"]] == ["predict_proba"]
    assert one.as_numpy("predict") is None
    assert np.array_equal(one.as_numpy("predict_proba"), offline["probability"])


def test_versioned_request(client: httpclient.InferenceServerClient, store: Store) -> None:
    frame = make_frame(3, seed=13).drop("label")
    result = client.infer(MODEL, inputs=tensors(frame, binary=True), model_version="1")
    assert result.get_response()["model_version"] == "1"
    assert np.array_equal(result.as_numpy("predict_proba"), served_bundle(store).predict_table(frame)["probability"])
    with pytest.raises(InferenceServerException, match="version 2 is not served") as raised:
        client.infer(MODEL, inputs=tensors(frame, binary=True), model_version="2")
    assert raised.value.status() == "404"


def test_unknown_model_is_a_404_naming_it(client: httpclient.InferenceServerClient) -> None:
    frame = make_frame(2, seed=14).drop("label")
    with pytest.raises(InferenceServerException, match="'nope' is not served") as raised:
        client.infer("nope", inputs=tensors(frame, binary=False))
    assert raised.value.status() == "404"
    with pytest.raises(InferenceServerException, match="'nope' is not served"):
        client.get_model_metadata("nope")


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_wrong_datatype_is_a_field_level_4xx(client: httpclient.InferenceServerClient, binary: bool) -> None:
    frame = make_frame(2, seed=15).drop("label").with_columns(x=pl.lit("high"))
    with pytest.raises(InferenceServerException, match="field 'x': expected a number") as raised:
        client.infer(MODEL, inputs=tensors(frame, binary=binary))
    assert raised.value.status() == "422"


def test_unsupported_binary_datatype_names_the_field(client: httpclient.InferenceServerClient) -> None:
    frame = make_frame(2, seed=16).drop("label")
    inputs = tensors(frame.drop("x"), binary=True)
    inputs.append(httpclient.InferInput("x", [2], "BF16").set_data_from_numpy(_bfloat16_zeros(2)))
    with pytest.raises(InferenceServerException, match="field 'x': datatype 'BF16' is not supported") as raised:
        client.infer(MODEL, inputs=inputs)
    assert raised.value.status() == "422"


def _bfloat16_zeros(n: int) -> np.ndarray:
    try:
        import ml_dtypes  # what tritonclient wants for BF16 since r26.06 (and installs)
    except ImportError:  # older tritonclient: FP32 arrays, truncated by the client
        return np.zeros(n, dtype=np.float32)
    return np.zeros(n, dtype=ml_dtypes.bfloat16)


def test_binary_body_that_does_not_add_up_is_a_400() -> None:
    header = b'{"inputs":[{"name":"x","datatype":"FP64","shape":[1],"parameters":{"binary_data_size":8}}]}'
    value = np.float64(0.5).tobytes()
    assert parse_infer_request(header + value, None, str(len(header)))["inputs"][0]["data"] == [0.5]
    with pytest.raises(BadRequest, match="1 bytes after the tensors"):
        parse_infer_request(header + value + b"!", None, str(len(header)))
    with pytest.raises(BadRequest, match="Inference-Header-Content-Length is '999'"):
        parse_infer_request(header + value, None, "999")
    with pytest.raises(SchemaValidationError, match="field 'x': binary_data_size 8 does not fit the 4 bytes"):
        parse_infer_request(header + value[:4], None, str(len(header)))
