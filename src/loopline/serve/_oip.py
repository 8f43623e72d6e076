"""Open Inference Protocol v2 (KServe, Triton, MLServer): tensors <-> records."""

from __future__ import annotations

from typing import Any

from loopline.core.errors import SchemaValidationError

_DATATYPES = {"number": "FP64", "string": "BYTES", "boolean": "BOOL", "datetime": "BYTES"}


def tensor_metadata(schema: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``inputs`` of a model's OIP metadata: one column tensor per feature."""
    return [{"name": f["name"], "datatype": _DATATYPES.get(f["dtype"], "BYTES"), "shape": [-1]} for f in schema]


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
