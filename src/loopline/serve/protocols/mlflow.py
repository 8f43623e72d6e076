"""MLflow's scoring protocol (``mlflow models serve``): ``POST /invocations`` and ``/invocations/{name}``.

The formats are those of :mod:`loopline.serve._mlflow`; errors carry MLflow's ``error_code`` and ``message``
next to loopline's ``error`` (and ``hint``), so an MLflow client reads them as it would MLflow's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from loopline.serve._mlflow import mlflow_error, mlflow_response, parse_request
from loopline.serve.protocols._contract import WireProtocol

if TYPE_CHECKING:
    from loopline.serve._models import LoadedModel
    from loopline.serve._service import PredictionService


class MlflowProtocol(WireProtocol[str]):
    """A drop-in for an MLflow scoring server; the request's part kept for the answer is its ``predict_method``."""

    name = "mlflow"

    def routes(self, service: PredictionService) -> APIRouter:
        router = APIRouter()

        @router.post("/invocations")
        async def invocations(request: Request) -> Response:
            return await service.predict_default(request, self, "/invocations/NAME")

        @router.post("/invocations/{name}")
        async def invocations_named(request: Request, name: str) -> Response:
            return await service.predict(request, self, name)

        return router

    def decode(self, body: bytes, headers: Mapping[str, str], model: LoadedModel) -> tuple[Any, str]:
        bundle = model.bundle
        parsed = parse_request(
            body, headers.get("content-type"), schema=bundle.input_schema, classifier=bundle.classes is not None
        )
        return parsed.records, parsed.predict_method

    def encode(self, request: str, model: LoadedModel, outputs: list[dict[str, Any]], ids: list[str]) -> Response:
        return JSONResponse(mlflow_response(outputs, request, model.bundle.classes))

    def error(self, content: dict[str, Any], status: int, headers: Mapping[str, str] | None = None) -> Response:
        return JSONResponse(mlflow_error(content, status), status_code=status, headers=headers)
