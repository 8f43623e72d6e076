"""Request bodies to validated records: strict JSON, the model's input schema, field-level errors."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from loopline.core.errors import SchemaValidationError


class BadRequest(Exception):
    """A request that is not JSON a model can read; ``status`` is 400, 413 or 415."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def _reject_constant(name: str) -> Any:
    raise BadRequest(422, f"{name} is not a valid JSON number; send null for a missing value.")


def parse_json(body: bytes, content_type: str | None) -> Any:
    """Parse a JSON body strictly: JSON content type, UTF-8, no NaN/Infinity literals."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json":
        raise BadRequest(415, f"content type {media or 'none'!r} is not accepted; send application/json.")
    return loads_json(decode_body(body, expected="a JSON object"))


def decode_body(body: bytes, *, expected: str) -> str:
    """The body as text: 400 when it is empty (naming what to send: ``expected``) or not UTF-8."""
    if not body:
        raise BadRequest(400, f"the request body is empty; send {expected}.")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(400, "the request body is not UTF-8.") from None


def loads_json(text: str, *, allow_constants: bool = False) -> Any:
    """``json.loads`` whose failures are 400s; NaN/Infinity literals are 422s unless ``allow_constants``
    (then they parse as floats, for a schema check that names their field)."""
    try:
        if allow_constants:
            return json.loads(text)
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise BadRequest(400, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}.") from None
    except RecursionError:  # json recurses once per nesting level: thousands of [ or { exhaust the stack
        raise BadRequest(400, "the JSON body is nested too deeply; send records of plain values.") from None


def validate_records(records: Any, schema: list[dict[str, Any]], *, max_records: int) -> list[dict[str, Any]]:
    """Check records against an input schema; raise SchemaValidationError listing every bad field."""
    if isinstance(records, Mapping):
        records = [records]
    if not isinstance(records, list) or not records:
        raise SchemaValidationError(
            [{"field": "records", "reason": "expected a JSON object or a non-empty list of objects"}]
        )
    if len(records) > max_records:
        raise BadRequest(413, f"{len(records)} records in one request; the limit is {max_records}.")
    fields = {f["name"]: f for f in schema}
    errors: list[dict[str, object]] = []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            errors.append({"field": f"records[{index}]", "reason": "expected a JSON object", "record": index})
            continue
        for name in record.keys() - fields.keys():
            errors.append({"field": name, "reason": "unknown field; the model does not take it", "record": index})
        for name, spec in fields.items():
            reason = _field_problem(record.get(name, _MISSING), spec)
            if reason:
                errors.append({"field": name, "reason": reason, "record": index})
        if len(errors) >= 20:
            break
    if errors:
        raise SchemaValidationError(errors)
    return records


_MISSING = object()


def _field_problem(value: Any, spec: Mapping[str, Any]) -> str | None:
    if value is _MISSING:
        return "missing field (send null for a missing value)"
    if value is None:
        return None if spec.get("nullable", True) else "null is not allowed"
    if spec["dtype"] == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a number, got {type(value).__name__}"
        if isinstance(value, float) and not math.isfinite(value):
            return "expected a finite number"
        return None
    if spec["dtype"] == "string" and not isinstance(value, str):
        return f"expected a string, got {type(value).__name__}"
    if spec["dtype"] == "boolean" and not isinstance(value, bool):
        return f"expected true or false, got {type(value).__name__}"
    if spec["dtype"] == "datetime":
        return _instant_problem(value)
    return None


def _instant_problem(value: Any) -> str | None:
    from datetime import datetime

    if not isinstance(value, str):
        return f"expected an ISO-8601 date-time string, got {type(value).__name__}"
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return f"{value!r} is not an ISO-8601 date-time (e.g. 2024-03-10T17:45:00Z)"
    return None
