"""Feedback endpoints: the true labels of served predictions, for accuracy monitoring.

``POST /feedback`` takes ``{"model": NAME, "labels": [{"id": PREDICTION_ID, "label": VALUE}, ...]}`` (each item
may add ``"event_time"``, an ISO 8601 timestamp of the outcome); ``POST /v2/models/{name}/feedback`` takes the
same as Open Inference Protocol tensors: ``{"inputs": [{"name": "id", ...}, {"name": "label", ...}]}`` (and
optionally ``"event_time"``). Both need the predict token, exactly like a prediction.

Checks, before anything is stored: the model is served here; each id is a prediction id (1-64 of
``[A-Za-z0-9_.:-]``); each label fits the model (:func:`loopline.monitor.conform_label`: a class it knows, a
finite number for a regression); at most ``max_records`` labels. A bad request gets a 422 whose ``errors`` name
each record's index and field with a hint; nothing of it is stored. A label whose prediction is not in the
store yet (the prediction log flushes asynchronously) is stored all the same and joined later.

The answer comes after the labels are committed to the store (one transaction): ``{"model", "received",
"stored", "updated", "unchanged"}``. Sending the same labels again is harmless.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from loopline.bundle import MAX_FIELD_ERRORS
from loopline.core.errors import DataError, LooplineError, NotFoundError, SchemaValidationError
from loopline.monitor import conform_label
from loopline.serve._guards import Refusal, check_model_name, check_token, read_body
from loopline.serve._models import ModelNotReady
from loopline.serve._oip import records_from_inputs
from loopline.serve._validation import BadRequest, parse_json

if TYPE_CHECKING:
    from loopline.serve._models import LoadedModel, ModelCache
    from loopline.serve._settings import ServeSettings
    from loopline.store import FeedbackReceipt, Label, Store

ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_ITEM_KEYS = frozenset({"id", "label", "event_time"})
_SOURCE = "http"


def feedback_router(store: Store, cache: ModelCache, settings: ServeSettings) -> APIRouter:
    """The feedback routes of one service."""
    router = APIRouter()

    async def receive(request: Request, name: str | None) -> Response:
        oip = name is not None  # the OIP route: the path names the model
        try:
            check_token(request, settings.predict_token, role="predict")
            if name is not None:
                check_model_name(name)
                cache.get(name)
            payload = parse_json(await read_body(request, settings.max_body_bytes), request.headers.get("content-type"))
            if name is None:
                name, items = _plain_items(payload)
                check_model_name(name)
            else:
                items = _oip_items(payload)
            model = cache.get(name)
            labels = conform_items(items, model, settings.max_records, oip=oip)
            receipt = await asyncio.to_thread(store.feedback.put, name, labels, source=_SOURCE)
        except (Refusal, BadRequest, SchemaValidationError, LooplineError) as exc:
            return _error(exc)
        return JSONResponse(_answer(name, receipt))

    @router.post("/feedback")
    async def feedback(request: Request) -> Response:
        return await receive(request, None)

    @router.post("/v2/models/{name}/feedback")
    async def oip_feedback(request: Request, name: str) -> Response:
        return await receive(request, name)

    return router


def conform_items(items: Any, model: LoadedModel, max_labels: int, *, oip: bool = False) -> list[Label]:
    """The labels of ``items`` (``{"id", "label", "event_time"?}`` mappings) for ``model``; raises
    SchemaValidationError listing up to MAX_FIELD_ERRORS problems by record index and field (``labels[3].label``;
    OIP: ``label[3]``, the tensor and its element), or a 413."""
    from loopline.store import Label

    if not isinstance(items, list) or not items:
        raise SchemaValidationError([{"field": "labels", "reason": "expected a non-empty list of labels"}])
    if len(items) > max_labels:
        raise BadRequest(413, f"{len(items)} labels in one request; the limit is {max_labels}. Send them in batches.")
    labels, errors = [], []
    bundle = model.bundle
    for index, item in enumerate(items):
        try:
            labels.append(Label(*_item(item, bundle.task, bundle.classes)))
        except _ItemError as bad:
            where = f"{bad.field}[{index}]" if oip else f"labels[{index}]" + (f".{bad.field}" if bad.field else "")
            errors.append({"record": index, "field": where, "reason": bad.reason, "hint": bad.hint})
        if len(errors) >= MAX_FIELD_ERRORS:
            break
    if errors:
        raise SchemaValidationError(errors)
    return labels


class _ItemError(Exception):
    def __init__(self, field: str, reason: str, hint: str) -> None:
        super().__init__(reason)
        self.field, self.reason, self.hint = field, reason, hint


def _item(item: Any, task: str, classes: list[Any] | None) -> tuple[str, Any, datetime | None]:
    if not isinstance(item, dict):
        raise _ItemError("", "expected a JSON object", 'Send {"id": PREDICTION_ID, "label": VALUE}.')
    extra = sorted(set(item) - _ITEM_KEYS)
    if extra:
        raise _ItemError(extra[0], "is not a field of a label", "A label has id, label and optionally event_time.")
    pid = item.get("id")
    if not isinstance(pid, str) or not ID_PATTERN.fullmatch(pid):
        raise _ItemError("id", f"{_shown(pid)} is not a prediction id", "Send the prediction_id the service answered.")
    if "label" not in item or item["label"] is None:
        raise _ItemError("label", "is missing", "Send the true outcome: a class of the model, or a number.")
    try:
        value = conform_label(item["label"], task, classes)
    except DataError as exc:
        raise _ItemError("label", exc.message.rstrip("."), exc.hint or "") from None
    return pid, value, _event_time(item.get("event_time"))


def _event_time(value: Any) -> datetime | None:
    if value is None:
        return None
    hint = "Send an ISO 8601 timestamp, e.g. 2025-03-01T12:00:00Z (UTC when no offset is given)."
    if not isinstance(value, str):
        raise _ItemError("event_time", f"{_shown(value)} is not a timestamp", hint)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise _ItemError("event_time", f"{_shown(value)} is not a timestamp", hint) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _plain_items(payload: Any) -> tuple[str, Any]:
    if not isinstance(payload, dict) or set(payload) != {"model", "labels"}:
        raise SchemaValidationError(
            [{"field": "body", "reason": 'send {"model": NAME, "labels": [{"id": PREDICTION_ID, "label": VALUE}]}'}]
        )
    if not isinstance(payload["model"], str):
        raise SchemaValidationError([{"field": "model", "reason": "must be the model's name (a string)"}])
    return payload["model"], payload["labels"]


def _oip_items(payload: Any) -> list[dict[str, Any]]:
    """OIP tensors ``id``, ``label`` (and ``event_time``), one element per label, as label items."""
    items = records_from_inputs(payload)
    names = set(items[0]) if items else set()
    if not {"id", "label"} <= names:
        reason = 'send the tensors "id" and "label" (and optionally "event_time"), one element per label'
        raise SchemaValidationError([{"field": "inputs", "reason": reason}])
    return items


def _answer(name: str, receipt: FeedbackReceipt) -> dict[str, Any]:
    return {
        "model": name,
        "received": receipt.received,
        "stored": receipt.stored,
        "updated": receipt.updated,
        "unchanged": receipt.unchanged,
    }


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _error(exc: Exception) -> Response:
    if isinstance(exc, Refusal):
        return exc.response()
    if isinstance(exc, BadRequest):
        return JSONResponse({"error": exc.message}, status_code=exc.status)
    if isinstance(exc, SchemaValidationError):
        return JSONResponse({"error": str(exc), "errors": exc.errors}, status_code=422)
    if isinstance(exc, ModelNotReady):
        return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=503)
    status = 404 if isinstance(exc, NotFoundError) else 503
    hint = getattr(exc, "hint", None)
    return JSONResponse(
        {"error": str(getattr(exc, "message", exc)), **({"hint": hint} if hint else {})}, status_code=status
    )
