"""Open Inference Protocol v2 (KServe, Triton, MLServer): tensors <-> records.

Requests and responses are JSON, or JSON followed by raw tensor bytes: Triton's binary tensor data extension,
which ``tritonclient`` uses by default. The JSON part's length is then in the ``Inference-Header-Content-Length``
header, and each binary tensor carries ``parameters.binary_data_size``.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from loopline.core.errors import SchemaValidationError
from loopline.serve._validation import BadRequest, decode_body, loads_json, parse_json

HEADER_LENGTH = "Inference-Header-Content-Length"
_DATATYPES = {"number": "FP64", "string": "BYTES", "boolean": "BOOL", "datetime": "BYTES"}
# little-endian, as the extension specifies
_NUMPY = {
    "BOOL": "?",
    "UINT8": "u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}


def tensor_metadata(schema: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``inputs`` of a model's OIP metadata: one column tensor per feature."""
    return [{"name": f["name"], "datatype": _DATATYPES.get(f["dtype"], "BYTES"), "shape": [-1]} for f in schema]


def parse_infer_request(body: bytes, content_type: str | None, header_length: str | None) -> Any:
    """The request's JSON, with the binary tensors (if ``header_length`` is given) decoded into ``data`` lists.

    A JSON request may omit its content type (``tritonclient`` sends none); a 415 names the accepted one.
    """
    if header_length is None:
        return parse_json(body, content_type or "application/json")
    if not header_length.isdigit() or int(header_length) > len(body):
        raise BadRequest(400, f"{HEADER_LENGTH} is {header_length!r}; it must be the length of the JSON part.")
    length = int(header_length)
    payload = loads_json(decode_body(body[:length], expected="a JSON object"))
    _attach_binary(payload, body[length:])
    return payload


def records_from_inputs(body: Any) -> list[dict[str, Any]]:
    """Turn an OIP ``inputs`` list of 1-D tensors (one per feature) into records."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise SchemaValidationError([{"field": "inputs", "reason": "expected a non-empty list of tensors"}])
    columns: dict[str, list[Any]] = {}
    rows: int | None = None
    for index, tensor in enumerate(body["inputs"]):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise SchemaValidationError([{"field": f"inputs[{index}]", "reason": "a tensor needs a 'name'"}])
        data = tensor.get("data")
        if not isinstance(data, list):
            raise SchemaValidationError([{"field": tensor["name"], "reason": "'data' must be a list"}])
        data = _flatten(data)
        if rows is not None and len(data) != rows:
            raise SchemaValidationError(
                [{"field": tensor["name"], "reason": f"has {len(data)} values; other inputs have {rows}"}]
            )
        rows = len(data)
        columns[tensor["name"]] = data
    return [{name: values[i] for name, values in columns.items()} for i in range(rows or 0)]


def infer_response(
    model: str, version: int, request_id: str | None, outputs: list[dict[str, Any]], classes: list[Any] | None
) -> dict[str, Any]:
    """The OIP response: ``predict`` (and ``predict_proba`` for classifiers)."""
    predictions = [o["prediction"] for o in outputs]
    tensors: list[dict[str, Any]] = [
        {"name": "predict", "shape": [len(predictions)], "datatype": _datatype(predictions), "data": predictions}
    ]
    if classes and outputs and "probabilities" in outputs[0]:
        flat = [o["probabilities"][str(c)] for o in outputs for c in classes]
        tensors.append(
            {"name": "predict_proba", "shape": [len(outputs), len(classes)], "datatype": "FP64", "data": flat}
        )
    response: dict[str, Any] = {"model_name": model, "model_version": str(version), "outputs": tensors}
    if request_id is not None:
        response["id"] = request_id
    return response


def encode_response(response: dict[str, Any], request: Any) -> tuple[bytes, dict[str, str]]:
    """The response body and headers: only the requested ``outputs`` (all without the key), each as JSON data
    or, where asked (``parameters.binary_data`` per output, or ``binary_data_output`` for all), binary."""
    requested = request.get("outputs") if isinstance(request, dict) else None
    parameters = request.get("parameters") if isinstance(request, dict) else None
    binary_all = isinstance(parameters, dict) and parameters.get("binary_data_output") is True
    wanted = {o.get("name"): o for o in requested if isinstance(o, dict)} if isinstance(requested, list) else None
    tensors, buffers = [], []
    for tensor in response["outputs"]:
        if wanted is not None and tensor["name"] not in wanted:
            continue
        options = (wanted or {}).get(tensor["name"], {}).get("parameters")
        binary = options.get("binary_data") if isinstance(options, dict) and "binary_data" in options else binary_all
        if binary is True:
            raw = _encode_tensor(tensor["datatype"], tensor["data"])
            tensor = {k: v for k, v in tensor.items() if k != "data"} | {"parameters": {"binary_data_size": len(raw)}}
            buffers.append(raw)
        tensors.append(tensor)
    header = json.dumps(
        response | {"outputs": tensors}, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode("utf-8")
    if not buffers:
        return header, {}
    return b"".join([header, *buffers]), {HEADER_LENGTH: str(len(header))}


def _attach_binary(payload: Any, buffer: bytes) -> None:
    inputs = payload.get("inputs") if isinstance(payload, dict) else None
    offset = 0
    for tensor in inputs if isinstance(inputs, list) else []:
        parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if size is None:
            continue
        name = str(tensor.get("name"))
        if not isinstance(size, int) or size < 0 or offset + size > len(buffer):
            reason = f"binary_data_size {size!r} does not fit the {len(buffer) - offset} bytes left in the body"
            raise SchemaValidationError([{"field": name, "reason": reason}])
        tensor["data"] = _decode_tensor(name, tensor.get("datatype"), buffer[offset : offset + size])
        offset += size
    if offset != len(buffer):
        raise BadRequest(400, f"{len(buffer) - offset} bytes after the tensors; check each binary_data_size.")


def _decode_tensor(name: str, datatype: Any, raw: bytes) -> list[Any]:
    if datatype == "BYTES":
        return _decode_bytes(name, raw)
    if datatype not in _NUMPY:
        reason = f"datatype {datatype!r} is not supported; send numbers as FP64 and strings as BYTES"
        raise SchemaValidationError([{"field": name, "reason": reason}])
    dtype = np.dtype(_NUMPY[datatype])
    if len(raw) % dtype.itemsize:
        reason = f"{len(raw)} bytes is not a whole number of {datatype} values"
        raise SchemaValidationError([{"field": name, "reason": reason}])
    values: list[Any] = np.frombuffer(raw, dtype=dtype).tolist()
    return values


def _decode_bytes(name: str, raw: bytes) -> list[str]:
    """Each element: a little-endian uint32 length, then that many UTF-8 bytes."""
    values, offset = [], 0
    while offset < len(raw):
        end = offset + 4 + (struct.unpack_from("<I", raw, offset)[0] if offset + 4 <= len(raw) else 0)
        if offset + 4 > len(raw) or end > len(raw):
            raise SchemaValidationError([{"field": name, "reason": "a BYTES element runs past the tensor's bytes"}])
        try:
            values.append(raw[offset + 4 : end].decode("utf-8"))
        except UnicodeDecodeError:
            raise SchemaValidationError([{"field": name, "reason": "a BYTES element is not UTF-8"}]) from None
        offset = end
    return values


def _encode_tensor(datatype: str, data: list[Any]) -> bytes:
    if datatype == "BYTES":
        items = [str(v).encode("utf-8") for v in data]
        return b"".join(struct.pack("<I", len(item)) + item for item in items)
    return np.asarray(data, dtype=_NUMPY[datatype]).tobytes()


def _datatype(values: list[Any]) -> str:
    if values and all(isinstance(v, bool) for v in values):
        return "BOOL"
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if values and all(isinstance(v, float | int) and not isinstance(v, bool) for v in values):
        return "FP64"
    return "BYTES"


def _flatten(data: list[Any]) -> list[Any]:
    if data and all(isinstance(item, list) for item in data):
        return [value for item in data for value in item]
    return data
