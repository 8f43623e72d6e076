"""The app factory: shared state, middleware, the admin and health routes, one router per wire protocol."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, cast

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware

from loopline import __version__
from loopline.core.errors import ConfigError, LooplineError
from loopline.serve._admin import admin_router, refresh_models
from loopline.serve._admin_aliases import alias_router
from loopline.serve._challenger import Challengers, check_designations
from loopline.serve._docs import docs_router
from loopline.serve._feedback import feedback_router
from loopline.serve._guards import HostCheck, allowed_hosts
from loopline.serve._health import health_router
from loopline.serve._metrics import ServiceMetrics
from loopline.serve._models import ModelCache, ModelRunner
from loopline.serve._predlog import PredictionLogger
from loopline.serve._service import PredictionService
from loopline.serve._settings import Lifecycle, ServeSettings, check_settings, designations, protocol_names
from loopline.serve._shadow import ShadowScorer
from loopline.serve.protocols import PROTOCOLS

if TYPE_CHECKING:
    from loopline.serve.protocols import WireProtocol
    from loopline.store import Store


def create_app(store: Store, settings: ServeSettings | None = None, *, host: str | None = None) -> FastAPI:
    """Build the ASGI app serving every production model of ``store``.

    ``host`` is the address the server binds; with ``settings.allowed_hosts`` None, Host headers other than the
    loopback names and ``host`` are refused (with neither given, any Host is accepted). The wire protocols
    mounted are ``settings.protocols`` (by default every registered one: see :mod:`loopline.serve.protocols`).
    """
    cfg = settings or ServeSettings()
    check_settings(cfg)
    protocols = _protocols(cfg)
    designated = designations(cfg)
    check_designations(store, designated)
    cache, metrics, life = ModelCache(store), ServiceMetrics(), Lifecycle()
    challengers = Challengers(store, designated)
    runner = ModelRunner(
        max_batch_rows=cfg.max_batch_rows,
        max_batch_delay=cfg.max_batch_delay,
        on_batch=lambda model, requests, rows: metrics.observe_model_call(model.name, requests, rows),
    )
    predlog = PredictionLogger(
        store.predictions, flush_interval=cfg.log_flush_interval, segment_dir=store.local_dir / "predlog"
    )
    shadow = ShadowScorer(predlog, metrics, cfg.input_policy(), max_queue=cfg.shadow_queue)
    service = PredictionService(cfg, cache, runner, predlog, metrics, life, challengers, shadow)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        predlog.start()
        await asyncio.to_thread(refresh_models, cache, metrics)
        await asyncio.to_thread(challengers.refresh)
        runner.start()  # after the models, so that their native thread pools are found
        shadow.start()
        life.started = True
        poller = asyncio.create_task(_poll(cache, metrics, cfg.refresh_interval, challengers))
        try:
            yield
        finally:
            life.stop()
            poller.cancel()
            await asyncio.to_thread(runner.close)
            await asyncio.to_thread(shadow.close)
            await asyncio.to_thread(predlog.close)

    # FastAPI's /docs and /redoc load their scripts from a CDN (blank offline): our /docs is self-contained
    app = FastAPI(title="loopline", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.cache, app.state.predlog, app.state.metrics, app.state.lifecycle = cache, predlog, metrics, life
    app.state.service, app.state.challengers, app.state.shadow = service, challengers, shadow
    for protocol in protocols:  # the prediction routes first: they are matched in order, on every request
        _mount(app, protocol.routes(service))
    _mount(app, feedback_router(store, cache, cfg))
    _mount(app, admin_router(store, cache, metrics, cfg.token, cfg.token_name, challengers))
    _mount(app, alias_router(store, cache, metrics, challengers, cfg.token, cfg.token_name))
    _mount(app, health_router(service))
    _mount(app, docs_router())
    for target in cfg.mounts:
        mounted(target)(app, store, cfg)
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
    return app


def _protocols(cfg: ServeSettings) -> list[WireProtocol[Any]]:
    """The selected protocols; each must carry the name it is registered under (its metrics label)."""
    protocols = []
    for name in protocol_names(cfg.protocols, PROTOCOLS.names()):
        protocol = PROTOCOLS.get(name)
        if getattr(protocol, "name", None) != name:
            raise ConfigError(
                f"the protocol registered as {name!r} is named {getattr(protocol, 'name', None)!r}.",
                key="protocols",
                hint=f"Register a WireProtocol instance whose `name` is {name!r}.",
            )
        protocols.append(protocol)
    return protocols


def _mount(app: FastAPI, router: APIRouter) -> None:
    """Add the routes of ``router`` to the app's own, flat.

    ``include_router`` keeps a router nested (FastAPI 0.165) and matches through it on every request: ~190
    more Python calls per prediction, several percent of a one-record request. A router's prefix and
    dependencies are already part of each of its routes, so they behave the same flat; its lifespan is not used.
    """
    app.router.routes.extend(router.routes)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's 404/405 (no such route, wrong method) as ``{"error": ...}``."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error."
    headers = getattr(exc, "headers", None)
    return JSONResponse({"error": str(detail).lower().rstrip(".") + "."}, status_code=status, headers=headers)


async def _poll(cache: ModelCache, metrics: ServiceMetrics, interval: float, challengers: Challengers) -> None:
    while True:
        await asyncio.sleep(interval)
        with contextlib.suppress(LooplineError):
            await asyncio.to_thread(refresh_models, cache, metrics)
            if challengers.designations:
                await asyncio.to_thread(challengers.refresh)


def mounted(target: str) -> Callable[[FastAPI, Store, ServeSettings], None]:
    """The function a ``mounts`` item names (``"module:function"``)."""
    module_name, _, attribute = target.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attribute) if attribute else None
    except (ImportError, AttributeError):
        found = None
    if not callable(found):
        raise ConfigError(
            f"the mount {target!r} names no function.", key="mounts", hint="Write it as 'package.module:function'."
        )
    return cast("Callable[[FastAPI, Store, ServeSettings], None]", found)
