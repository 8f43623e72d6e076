"""The prediction service: plain JSON, Open Inference Protocol v2, MLflow scoring, health, Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware

from loopline import __version__
from loopline.core.errors import ConfigError, LooplineError, NotFoundError, SchemaValidationError
from loopline.serve._admin import admin_router, refresh_models
from loopline.serve._guards import (
    ConcurrencyLimit,
    HostCheck,
    Refusal,
    allowed_hosts,
    check_model_name,
    check_token,
    read_body,
)
from loopline.serve._metrics import ServiceMetrics
from loopline.serve._mlflow import MlflowRequest, mlflow_error, mlflow_response, parse_request
from loopline.serve._models import LoadedModel, ModelCache, ModelRunner
from loopline.serve._oip import (
    HEADER_LENGTH,
    encode_response,
    infer_response,
    parse_infer_request,
    records_from_inputs,
    tensor_metadata,
)
from loopline.serve._predlog import PredictionLogger
from loopline.serve._validation import BadRequest, parse_json, validate_records

if TYPE_CHECKING:
    from loopline.store import Store

PREDICT_TOKEN_ENV = "LOOPLINE_PREDICT_TOKEN"
MAX_BATCH_DELAY = 0.1
"""The longest a request may be held back for micro-batching, in seconds."""


class ServeSettings:
    """Limits, guards and intervals of one service (plain attributes, all optional).

    ``token`` opens the admin endpoints (reload, promote, rollback; closed without it); ``predict_token``, when
    set, is required by every prediction endpoint (health and metadata stay open) and never opens admin ones.
    ``allowed_hosts``: Host header patterns (None: the loopback names plus the bound host; ``"*"``: any).
    ``allowed_origins``: browser origins allowed by CORS (none by default). ``max_concurrency``: prediction
    requests in flight before the next gets a 503. ``drain_seconds``: after SIGTERM, how long readiness answers
    503 while requests are still served, before the listener closes; ``graceful_timeout``: how long in-flight
    requests then get to finish. ``max_batch_rows`` and ``max_batch_delay`` (seconds) bound micro-batching: the
    concurrent requests of one model version merged into one model call (see :class:`ModelRunner`); with a
    delay of 0 (the default) only requests already waiting are merged and none is held back.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        predict_token: str | None = None,
        allowed_hosts: Sequence[str] | None = None,
        allowed_origins: Sequence[str] = (),
        max_concurrency: int = 64,
        max_body_bytes: int = 2_000_000,
        max_records: int = 10_000,
        refresh_interval: float = 1.0,
        log_flush_interval: float = 0.5,
        drain_seconds: float = 1.0,
        graceful_timeout: float = 30.0,
        max_batch_rows: int = 64,
        max_batch_delay: float = 0.0,
    ) -> None:
        self.token = token
        self.predict_token = predict_token
        self.allowed_hosts = allowed_hosts
        self.allowed_origins = allowed_origins
        self.max_concurrency = max_concurrency
        self.max_body_bytes = max_body_bytes
        self.max_records = max_records
        self.refresh_interval = refresh_interval
        self.log_flush_interval = log_flush_interval
        self.drain_seconds = drain_seconds
        self.graceful_timeout = graceful_timeout
        self.max_batch_rows = max_batch_rows
        self.max_batch_delay = max_batch_delay

    @classmethod
    def from_env(cls, home: str | Path | None = None, **options: Any) -> ServeSettings:
        """Settings with the tokens read from ``LOOPLINE_TOKEN`` and ``LOOPLINE_PREDICT_TOKEN``."""
        from loopline.core.settings import Settings

        predict_token = os.environ.get(PREDICT_TOKEN_ENV) or None
        return cls(token=Settings.from_env(home).token, predict_token=predict_token, **options)


class Lifecycle:
    """Ready once the models are loaded; not ready from the stop signal on (before the listener closes)."""

    def __init__(self) -> None:
        self.started = False
        self.stopping = False

    @property
    def ready(self) -> bool:
        """Whether readiness probes should send traffic here."""
        return self.started and not self.stopping

    def stop(self) -> None:
        """Turn readiness off (idempotent; safe from a signal handler)."""
        self.stopping = True


def create_app(store: Store, settings: ServeSettings | None = None, *, host: str | None = None) -> FastAPI:
    """Build the ASGI app serving every production model of ``store``.

    ``host`` is the address the server binds; with ``settings.allowed_hosts`` None, Host headers other than the
    loopback names and ``host`` are refused (with neither given, any Host is accepted).
    """
    cfg = settings or ServeSettings()
    _check_settings(cfg)
    cache, metrics, life = ModelCache(store), ServiceMetrics(), Lifecycle()
    runner = ModelRunner(
        max_batch_rows=cfg.max_batch_rows,
        max_batch_delay=cfg.max_batch_delay,
        on_batch=lambda model, requests, rows: metrics.observe_model_call(model.name, requests, rows),
    )
    predlog = PredictionLogger(
        store.predictions, flush_interval=cfg.log_flush_interval, segment_dir=store.local_dir / "predlog"
    )
    limit = ConcurrencyLimit(cfg.max_concurrency)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        predlog.start()
        await asyncio.to_thread(refresh_models, cache, metrics)
        runner.start()  # after the models, so that their native thread pools are found
        life.started = True
        poller = asyncio.create_task(_poll(cache, metrics, cfg.refresh_interval))
        try:
            yield
        finally:
            life.stop()
            poller.cancel()
            await asyncio.to_thread(runner.close)
            await asyncio.to_thread(predlog.close)

    app = FastAPI(title="loopline", version=__version__, lifespan=lifespan)
    app.state.cache, app.state.predlog, app.state.metrics, app.state.lifecycle = cache, predlog, metrics, life
    app.include_router(admin_router(store, cache, metrics, cfg.token))
    app.add_exception_handler(HTTPException, _http_error)
    if cfg.allowed_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cfg.allowed_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type"],
        )
    hosts = allowed_hosts(cfg.allowed_hosts, host)
    if hosts is not None:
        app.add_middleware(HostCheck, allowed=hosts)

    async def predict(request: Request, name: str, version: int | None, protocol: str) -> Response:
        try:
            check_token(request, cfg.predict_token, role="predict")
            check_model_name(name)
        except Refusal as refused:
            return _refused(refused, metrics, "_unknown", protocol)
        if not limit.try_acquire():
            return _refused(limit.refusal(), metrics, _label(cache, name), protocol)
        metrics.in_flight.inc()
        try:
            return await answer(request, name, version, protocol)
        finally:
            metrics.in_flight.dec()
            limit.release()

    async def answer(request: Request, name: str, version: int | None, protocol: str) -> Response:
        try:
            model = cache.get(name, version)
            body = await read_body(request, cfg.max_body_bytes)
            payload = _decode(body, request.headers, protocol, model)
            records = _records(payload, protocol)
            records = validate_records(records, model.bundle.input_schema, max_records=cfg.max_records)
        except (BadRequest, SchemaValidationError, NotFoundError) as exc:
            return _error(exc, metrics, _label(cache, name), protocol)
        predicted = await runner.predict(model, records)
        outputs = predicted.outputs
        ids = _log(predlog, model, records, outputs, predicted.seconds / predicted.batch_rows)
        metrics.requests.labels(name, str(model.version), protocol).inc()
        metrics.latency.labels(name, str(model.version)).observe(predicted.seconds)
        metrics.batch.labels(name).observe(len(records))
        if isinstance(payload, MlflowRequest):
            return JSONResponse(mlflow_response(outputs, payload.predict_method, model.bundle.classes))
        if protocol == "oip":
            request_id = payload.get("id") if isinstance(payload, dict) else None
            response = infer_response(name, model.version, request_id, outputs, model.bundle.classes)
            content, headers = encode_response(response, payload)
            return Response(
                content, media_type="application/octet-stream" if headers else "application/json", headers=headers
            )
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
        if not life.ready:
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
        ok = life.ready
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


def _decode(body: bytes, headers: Mapping[str, str], protocol: str, model: LoadedModel) -> Any:
    content_type = headers.get("content-type")
    if protocol == "oip":
        return parse_infer_request(body, content_type, headers.get(HEADER_LENGTH))
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


def _refused(refused: Refusal, metrics: ServiceMetrics, label: str, protocol: str) -> JSONResponse:
    metrics.errors.labels(label, refused.cause).inc()
    content = refused.content()
    return JSONResponse(
        mlflow_error(content, refused.status) if protocol == "mlflow" else content,
        status_code=refused.status,
        headers=refused.headers,
    )


def _label(cache: ModelCache, name: str) -> str:
    """The model label of a metric: ``_unknown`` for a name not served, so clients cannot grow the label set."""
    return name if name in cache.snapshot() else "_unknown"


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's 404/405 (no such route, wrong method) as ``{"error": ...}``."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error."
    headers = getattr(exc, "headers", None)
    return JSONResponse({"error": str(detail).lower().rstrip(".") + "."}, status_code=status, headers=headers)


def _check_settings(cfg: ServeSettings) -> None:
    if cfg.max_concurrency < 1:
        raise ConfigError(f"max_concurrency is {cfg.max_concurrency}; it must be at least 1.", hint="Use e.g. 64.")
    if cfg.max_batch_rows < 1:
        raise ConfigError(f"max_batch_rows is {cfg.max_batch_rows}; it must be at least 1.", hint="Use e.g. 64.")
    if not 0 <= cfg.max_batch_delay <= MAX_BATCH_DELAY:
        raise ConfigError(
            f"max_batch_delay is {cfg.max_batch_delay} s; it must be between 0 and {MAX_BATCH_DELAY} s.",
            hint="Use 0 (merge only what waits already) or a millisecond or two, e.g. 0.001.",
        )
    if cfg.predict_token and cfg.predict_token == cfg.token:
        raise ConfigError(
            "LOOPLINE_PREDICT_TOKEN is the admin token LOOPLINE_TOKEN: every client could promote models.",
            hint="Give the predict token its own value.",
        )
    for origin in cfg.allowed_origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ConfigError(f"{origin!r} is not a browser origin.", hint="Write it like https://app.example.com.")


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
    seconds_per_row: float,
) -> list[str]:
    from loopline.store import PredictionRow

    now = datetime.now(UTC)
    per_row = seconds_per_row * 1000
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


async def _poll(cache: ModelCache, metrics: ServiceMetrics, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        with contextlib.suppress(LooplineError):
            await asyncio.to_thread(refresh_models, cache, metrics)
