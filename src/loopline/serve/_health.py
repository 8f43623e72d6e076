"""Health and metrics endpoints of every service: ``/ping``, ``/health``, ``/version``, ``/metrics``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from loopline import __version__

if TYPE_CHECKING:
    from loopline.serve._service import PredictionService


def health_router(service: PredictionService) -> APIRouter:
    """Readiness (models loaded, not stopping), the version, and the Prometheus metrics of this process.

    Ready while at least one model is served; ``not_ready`` lists each production model that serves no version
    because its own did not load, with the version and a one-line reason (its requests get a 503);
    ``challengers`` lists the designated shadow and canary versions (see :mod:`loopline.serve._challenger`).
    """
    router = APIRouter()
    cache, metrics, predlog, life = service.cache, service.metrics, service.predlog, service.lifecycle

    @router.get("/ping")
    @router.get("/health")
    async def ping() -> Response:
        if not life.ready:
            return JSONResponse({"ready": False, "error": "the service is starting or stopping."}, status_code=503)
        not_ready = cache.not_ready()
        extra = {"not_ready": not_ready} if not_ready else {}
        if not cache.names():
            error = "no model is served; promote one with `loopline models promote NAME VERSION`."
            if not_ready:
                error = "no model could be loaded; promote a version that loads with `loopline models promote`."
            return JSONResponse({"ready": False, "error": error, **extra}, status_code=503)
        if service.challengers is not None and service.challengers.designations:
            extra["challengers"] = service.challengers.snapshot()
        return JSONResponse({"ready": True, "models": cache.snapshot(), **extra})

    @router.get("/version")
    async def version() -> Response:
        return Response(__version__, media_type="text/plain")

    @router.get("/metrics")
    async def prometheus() -> Response:
        metrics.log_depth.set(predlog.depth())
        if service.shadow is not None:
            metrics.shadow_queue.set(service.shadow.depth())
        for name in cache.names():
            served = cache.get(name)
            chain = served.bundle.chain
            for event, count in (chain.counts() if chain is not None else {}).items():
                metrics.prep_events.labels(name, str(served.version), event).set(count)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    return router
