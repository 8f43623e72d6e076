"""loopline's plain JSON protocol: ``POST /predict/{name}`` (and ``/predict`` when one model is served).

The body is a record, a list of records, or ``{"records": [...]}``; the answer names the model and version and
gives each record's ``prediction`` (and ``probabilities`` by class for classifiers) with its ``prediction_id``
in the prediction log. Errors are ``{"error": ..., "hint"?: ...}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from loopline.serve._validation import parse_json
from loopline.serve.protocols._contract import WireProtocol

if TYPE_CHECKING:
    from loopline.serve._models import LoadedModel
    from loopline.serve._service import PredictionService


class JsonProtocol(WireProtocol[None]):
    """Records in, records with their predictions out."""

    name = "json"

    def routes(self, service: PredictionService) -> APIRouter:
        router = APIRouter()

        @router.post("/predict/{name}")
        async def predict_named(request: Request, name: str) -> Response:
            return await service.predict(request, self, name)

        @router.post("/predict")
        async def predict_default(request: Request) -> Response:
            return await service.predict_default(request, self, "/predict/NAME")

        return router

    def decode(self, body: bytes, headers: Mapping[str, str], model: LoadedModel) -> tuple[Any, None]:
        payload = parse_json(body, headers.get("content-type"))
        if isinstance(payload, dict) and "records" in payload and len(payload) == 1:
            return payload["records"], None
        return payload, None

    def encode(self, request: None, model: LoadedModel, outputs: list[dict[str, Any]], ids: list[str]) -> Response:
        predictions = [{"prediction_id": i, **o} for i, o in zip(ids, outputs, strict=True)]
        return JSONResponse({"model": model.name, "version": model.version, "predictions": predictions})
