"""The prediction service: plain JSON, Open Inference Protocol v2, MLflow scoring, health, Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from threadpoolctl import ThreadpoolController

from loopline import __version__
from loopline.core.errors import LooplineError, NotFoundError, SchemaValidationError
from loopline.serve._metrics import ServiceMetrics
from loopline.serve._mlflow import MlflowRequest, mlflow_error, mlflow_response, parse_request
from loopline.serve._models import LoadedModel, ModelCache
from loopline.serve._oip import infer_response, records_from_inputs, tensor_metadata
from loopline.serve._predlog import PredictionLogger
from loopline.serve._validation import BadRequest, parse_json, validate_records

if TYPE_CHECKING:
    from loopline.store import Store


class ServeSettings:
    """Limits and intervals of one service (plain attributes, all optional)."""

    def __init__(
        self,
        *,
        token: str | None = None,
        max_body_bytes: int = 2_000_000,
        max_records: int = 10_000,
        refresh_interval: float = 1.0,
        log_flush_interval: float = 0.5,
    ) -> None:
        self.token = token
        self.max_body_bytes = max_body_bytes
        self.max_records = max_records
        self.refresh_interval = refresh_interval
        self.log_flush_interval = log_flush_interval


def create_app(store: Store, settings: ServeSettings | None = None) -> FastAPI:
    """Build the ASGI app serving every production model of ``store``."""
    cfg = settings or ServeSettings()
    cache = ModelCache(store)
    metrics = ServiceMetrics()
    predlog = PredictionLogger(
        store.predictions, flush_interval=cfg.log_flush_interval, segment_dir=store.artifacts.root.parent / "predlog"
    )
    state: dict[str, bool] = {"ready": False, "stopping": False}
    # one-row predictions are fastest on one thread; the controller is built once, after the models
    # (and so their OpenMP/BLAS libraries) are loaded, which keeps the per-request switch cheap
    threads: list[ThreadpoolController] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        predlog.start()
        await asyncio.to_thread(_refresh, cache, metrics)
        threads.append(ThreadpoolController())
        state["ready"] = True
        poller = asyncio.create_task(_poll(cache, metrics, cfg.refresh_interval))
        try:
            yield
        finally:
            state["ready"], state["stopping"] = False, True
            poller.cancel()
            await asyncio.to_thread(predlog.close)

    app = FastAPI(title="loopline", version=__version__, lifespan=lifespan)
    app.state.cache, app.state.predlog, app.state.metrics = cache, predlog, metrics

    async def predict(request: Request, name: str, version: int | None, protocol: str) -> Response:
        try:
            model = cache.get(name, version)
            body = await _read_body(request, cfg.max_body_bytes)
            payload = _decode(body, request.headers.get("content-type"), protocol, model)
            records = _records(payload, protocol)
            records = validate_records(records, model.bundle.input_schema, max_records=cfg.max_records)
        except (BadRequest, SchemaValidationError, NotFoundError) as exc:
            return _error(exc, metrics, name, protocol)
        started = time.perf_counter()
        with threads[0].limit(limits=1):
            outputs = model.bundle.predict_records(records)
        latency = time.perf_counter() - started
        ids = _log(predlog, model, records, outputs, latency)
        metrics.requests.labels(name, str(model.version), protocol).inc()
        metrics.latency.labels(name, str(model.version)).observe(latency)
        metrics.batch.labels(name).observe(len(records))
        if isinstance(payload, MlflowRequest):
            return JSONResponse(mlflow_response(outputs, payload.predict_method, model.bundle.classes))
        if protocol == "oip":
            request_id = payload.get("id") if isinstance(payload, dict) else None
            return JSONResponse(infer_response(name, model.version, request_id, outputs, model.bundle.classes))
        predictions = [{"prediction_id": i, **o} for i, o in zip(ids, outputs, strict=True)]
        return JSONResponse({"model": name, "version": model.version, "predictions": predictions})

    @app.post("/predict/{name}")
    async def predict_plain(request: Request, name: str) -> Response:
        return await predict(request, name, None, "json")

    @app.post("/predict")
    async def predict_default(request: Request) -> Response:
        names = cache.names()
        if len(names) != 1:
            return _not_one_model(names, "/predict/NAME", "json")
        return await predict(request, names[0], None, "json")

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        names = cache.names()
        if len(names) != 1:
            return _not_one_model(names, "/invocations/NAME", "mlflow")
        return await predict(request, names[0], None, "mlflow")

    @app.post("/invocations/{name}")
    async def invocations_named(request: Request, name: str) -> Response:
        return await predict(request, name, None, "mlflow")

    @app.get("/ping")
    @app.get("/health")
    async def ping() -> Response:
        if not state["ready"] or state["stopping"]:
            return JSONResponse({"ready": False, "error": "the service is starting or stopping."}, status_code=503)
        if not cache.names():
            error = "no model is served; promote one with `loopline models promote NAME VERSION`."
            return JSONResponse({"ready": False, "error": error}, status_code=503)
        return JSONResponse({"ready": True, "models": cache.snapshot()})

    @app.get("/version")
    async def version() -> Response:
        return Response(__version__, media_type="text/plain")

    @app.post("/v2/models/{name}/infer")
    async def infer(request: Request, name: str) -> Response:
        return await predict(request, name, None, "oip")

    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def infer_version(request: Request, name: str, version: int) -> Response:
        return await predict(request, name, version, "oip")

    @app.get("/v2/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready() -> Response:
        ok = state["ready"] and not state["stopping"]
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    @app.get("/v2")
    async def server_metadata() -> dict[str, Any]:
        return {"name": "loopline", "version": __version__, "extensions": []}

    @app.get("/v2/models/{name}")
    async def model_metadata(name: str) -> Response:
        return _metadata(cache, name, None)

    @app.get("/v2/models/{name}/versions/{version}")
    async def model_version_metadata(name: str, version: int) -> Response:
        return _metadata(cache, name, version)

    @app.get("/v2/models/{name}/ready")
    async def model_ready(name: str) -> Response:
        served = name in cache.names()
        return JSONResponse({"name": name, "ready": served}, status_code=200 if served else 404)

    @app.post("/v2/repository/models/{name}/load")
    async def load(request: Request, name: str) -> Response:
        denied = _check_token(request, cfg.token)
        if denied is not None:
            return denied
        loaded = await asyncio.to_thread(_refresh, cache, metrics)
        return JSONResponse(
            {"loaded": [{"name": m.name, "version": m.version} for m in loaded], "serving": cache.snapshot()}
        )

    @app.get("/metrics")
    async def prometheus() -> Response:
        metrics.log_depth.set(predlog.depth())
        for name in cache.names():
            served = cache.get(name)
            chain = served.bundle.chain
            for event, count in (chain.counts() if chain is not None else {}).items():
                metrics.prep_events.labels(name, str(served.version), event).set(count)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    return app


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, f"the body has {declared} bytes; the limit is {limit}.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, f"the body exceeds the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(body: bytes, content_type: str | None, protocol: str, model: LoadedModel) -> Any:
    if protocol == "mlflow":
        schema, classes = model.bundle.input_schema, model.bundle.classes
        return parse_request(body, content_type, schema=schema, classifier=classes is not None)
    return parse_json(body, content_type)


def _records(payload: Any, protocol: str) -> Any:
    if isinstance(payload, MlflowRequest):
        return payload.records
    if protocol == "oip":
        return records_from_inputs(payload)
    if isinstance(payload, dict) and "records" in payload and len(payload) == 1:
        return payload["records"]
    return payload


def _error(exc: Exception, metrics: ServiceMetrics, name: str, protocol: str) -> JSONResponse:
    content: dict[str, Any]
    if isinstance(exc, BadRequest):
        cause, status, content = f"http_{exc.status}", exc.status, {"error": exc.message}
    elif isinstance(exc, SchemaValidationError):
        cause, status, content = "validation", 422, {"error": str(exc), "errors": exc.errors}
    else:
        cause, status, content = "not_found", 404, {"error": str(exc)}
    metrics.errors.labels(name, cause).inc()
    return _respond_error(content, status, protocol)


def _not_one_model(names: list[str], path: str, protocol: str) -> JSONResponse:
    error = f"{len(names)} models are served; name one in the path: {path}."
    return _respond_error({"error": error, "models": names}, 404, protocol)


def _respond_error(content: dict[str, Any], status: int, protocol: str) -> JSONResponse:
    return JSONResponse(mlflow_error(content, status) if protocol == "mlflow" else content, status_code=status)


def _log(
    predlog: PredictionLogger,
    model: LoadedModel,
    records: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    latency: float,
) -> list[str]:
    from loopline.store import PredictionRow

    now = datetime.now(UTC)
    per_row = latency * 1000 / max(len(records), 1)
    ids = [uuid.uuid4().hex for _ in records]
    predlog.put(
        [
            PredictionRow(
                prediction_id=i,
                model_name=model.name,
                model_version=model.version,
                created_at=now,
                inputs=r,
                output=o,
                latency_ms=per_row,
            )
            for i, r, o in zip(ids, records, outputs, strict=True)
        ]
    )
    return ids


def _metadata(cache: ModelCache, name: str, version: int | None) -> Response:
    try:
        model = cache.get(name, version)
    except NotFoundError as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)
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


def _check_token(request: Request, token: str | None) -> Response | None:
    if not token:
        return JSONResponse(
            {
                "error": "write endpoints are disabled: no token is configured.",
                "hint": "Start the service with LOOPLINE_TOKEN set.",
            },
            status_code=403,
        )
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not given:
        return JSONResponse({"error": "missing bearer token."}, status_code=401)
    if not hmac.compare_digest(given.encode(), token.encode()):
        return JSONResponse({"error": "wrong token."}, status_code=403)
    return None


def _refresh(cache: ModelCache, metrics: ServiceMetrics) -> list[LoadedModel]:
    loaded = cache.refresh()
    for model in loaded:
        metrics.load_time.labels(model.name, str(model.version)).set(model.load_seconds)
    return loaded


async def _poll(cache: ModelCache, metrics: ServiceMetrics, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        with contextlib.suppress(LooplineError):
            await asyncio.to_thread(_refresh, cache, metrics)
