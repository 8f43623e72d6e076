"""Request bodies to validated records: strict JSON, then the input policy (field-level errors)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from loopline.bundle import MAX_FIELD_ERRORS, ConformedRecords, FieldRule, InputPolicy, conform_records
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


def validate_records(
    records: Any, rules: list[FieldRule], *, max_records: int, policy: InputPolicy | None = None
) -> ConformedRecords:
    """Check the request's shape and record count, then apply the input policy (:mod:`loopline.bundle`'s
    :func:`conform_records`) with the model's field ``rules`` (:func:`~loopline.bundle.field_rules`): the records
    as the model takes them, with the extra and missing fields counted.

    Raises BadRequest (413: too many records) or SchemaValidationError listing the bad fields.
    """
    if isinstance(records, Mapping):
        records = [records]
    if not isinstance(records, list) or not records:
        raise SchemaValidationError(
            [{"field": "records", "reason": "expected a JSON object or a non-empty list of objects"}]
        )
    if len(records) > max_records:
        raise BadRequest(413, f"{len(records)} records in one request; the limit is {max_records}.")
    shape = [
        {"field": f"records[{index}]", "reason": "expected a JSON object", "record": index}
        for index, record in enumerate(records)
        if not isinstance(record, Mapping)
    ]
    if shape:
        raise SchemaValidationError(shape[:MAX_FIELD_ERRORS])
    return conform_records(records, rules, policy)
