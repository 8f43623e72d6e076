"""The Open Inference Protocol v2 (KServe, Triton, MLServer), with Triton's binary tensor data extension.

Inference: ``POST /v2/models/{name}/infer`` and ``/v2/models/{name}/versions/{version}/infer``; metadata and
health: ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``, ``/v2/models/{name}[/versions/{version}]``,
``/v2/models/{name}/ready``. Tensors <-> records: :mod:`loopline.serve._oip`. Errors are ``{"error": ...}``,
as the protocol specifies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from loopline import __version__
from loopline.core.errors import NotFoundError
from loopline.serve._models import ModelNotReady
from loopline.serve._oip import (
    HEADER_LENGTH,
    encode_response,
    infer_response,
    parse_infer_request,
    records_from_inputs,
    tensor_metadata,
)
from loopline.serve.protocols._contract import WireProtocol

if TYPE_CHECKING:
    from loopline.serve._models import LoadedModel, ModelCache
    from loopline.serve._service import PredictionService


class OipProtocol(WireProtocol[Any]):
    """Column tensors in, ``predict`` (and ``predict_proba``) tensors out; the request's JSON is kept for the
    answer (its ``id``, the ``outputs`` asked for, binary or not)."""

    name = "oip"

    def routes(self, service: PredictionService) -> APIRouter:
        router = APIRouter()
        cache, lifecycle = service.cache, service.lifecycle

        @router.post("/v2/models/{name}/infer")
        async def infer(request: Request, name: str) -> Response:
            return await service.predict(request, self, name)

        @router.post("/v2/models/{name}/versions/{version}/infer")
        async def infer_version(request: Request, name: str, version: int) -> Response:
            return await service.predict(request, self, name, version)

        @router.get("/v2/health/live")
        async def live() -> dict[str, bool]:
            return {"live": True}

        @router.get("/v2/health/ready")
        async def ready() -> Response:
            ok = lifecycle.ready
            return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

        @router.get("/v2")
        async def server_metadata() -> dict[str, Any]:
            return {"name": "loopline", "version": __version__, "extensions": []}

        @router.get("/v2/models/{name}")
        async def model_metadata(name: str) -> Response:
            return self.metadata(cache, name, None)

        @router.get("/v2/models/{name}/versions/{version}")
        async def model_version_metadata(name: str, version: int) -> Response:
            return self.metadata(cache, name, version)

        @router.get("/v2/models/{name}/ready")
        async def model_ready(name: str) -> Response:
            if name in cache.names():
                return JSONResponse({"name": name, "ready": True})
            failure = cache.not_ready().get(name)
            if failure is None:
                return JSONResponse({"name": name, "ready": False}, status_code=404)
            return JSONResponse({"name": name, "ready": False, "error": failure["reason"]}, status_code=503)

        return router

    def decode(self, body: bytes, headers: Mapping[str, str], model: LoadedModel) -> tuple[Any, Any]:
        payload = parse_infer_request(body, headers.get("content-type"), headers.get(HEADER_LENGTH))
        return records_from_inputs(payload), payload

    def encode(self, request: Any, model: LoadedModel, outputs: list[dict[str, Any]], ids: list[str]) -> Response:
        request_id = request.get("id") if isinstance(request, dict) else None
        response = infer_response(model.name, model.version, request_id, outputs, model.bundle.classes)
        content, headers = encode_response(response, request)
        return Response(
            content, media_type="application/octet-stream" if headers else "application/json", headers=headers
        )

    def metadata(self, cache: ModelCache, name: str, version: int | None) -> Response:
        """A model's metadata: its version, its input tensors (one column per feature) and output tensors."""
        try:
            model = cache.get(name, version)
        except NotFoundError as exc:
            return self.error({"error": str(exc)}, 404)
        except ModelNotReady as exc:
            return self.error({"error": str(exc)}, 503)
        outputs = [{"name": "predict", "datatype": "BYTES", "shape": [-1]}]
        if model.bundle.classes:
            outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(model.bundle.classes)]})
        return JSONResponse(
            {
                "name": name,
                "versions": [str(model.version)],
                "platform": "loopline",
                "inputs": tensor_metadata(model.bundle.input_schema),
                "outputs": outputs,
            }
        )
