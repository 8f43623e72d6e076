"""Admin endpoints: reload, promote, rollback. Each needs the admin token; a refused request changes nothing.
The alias endpoints are in :mod:`loopline.serve._admin_aliases`.

A promotion or rollback to a version that cannot be served (:func:`loopline.bundle.verify_bundle`: digest,
allowlist, a real load) is refused with a 409 naming the reason, before the store changes.

After a promotion or rollback the new production version is loaded off the event loop and swapped in at once
(``ModelCache.refresh``); the response comes back when the service answers with it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from loopline.bundle import check_servable
from loopline.core.errors import ConflictError, LooplineError, NotFoundError
from loopline.serve._guards import Refusal, check_model_name, check_token, read_body
from loopline.serve._validation import BadRequest, parse_json

if TYPE_CHECKING:
    from loopline.serve._challenger import Challengers
    from loopline.serve._metrics import ServiceMetrics
    from loopline.serve._models import LoadedModel, ModelCache
    from loopline.store import Store

MAX_ADMIN_BODY = 4096


def admin_router(
    store: Store,
    cache: ModelCache,
    metrics: ServiceMetrics,
    token: str | None,
    token_name: str = "admin",
    challengers: Challengers | None = None,
) -> APIRouter:
    """The admin routes of one service, guarded by ``token`` (closed when it is None); the changes they make are
    recorded in the audit trail as by ``token:TOKEN_NAME``. The reload reloads ``challengers`` too (those that
    follow an alias read where it points now)."""
    actor = f"token:{token_name}"
    router = APIRouter()
    models = store.models.with_check(check_servable)

    def guard(request: Request, name: str) -> None:
        check_token(request, token, role="admin")
        check_model_name(name)

    @router.post("/v2/repository/models/{name}/load")
    async def load(request: Request, name: str) -> Response:
        try:
            guard(request, name)
        except Refusal as refused:
            return refused.response()
        loaded = await asyncio.to_thread(refresh_models, cache, metrics, retry=True)
        if challengers is not None and challengers.designations:
            await asyncio.to_thread(challengers.refresh)
        return JSONResponse(
            {
                "loaded": [{"name": m.name, "version": m.version} for m in loaded],
                "serving": cache.snapshot(),
                **({"challengers": challengers.snapshot()} if challengers and challengers.designations else {}),
                **({"failed": _failed(cache)} if cache.failures() else {}),
            }
        )

    @router.post("/admin/models/{name}/promote")
    async def promote(request: Request, name: str) -> Response:
        try:
            guard(request, name)
            version, reason = _promotion(parse_json(await read_body(request, MAX_ADMIN_BODY), content_type(request)))
            changed = await asyncio.to_thread(lambda: models.promote(name, version, reason, actor=actor))
        except (Refusal, BadRequest, LooplineError) as exc:
            return admin_error(exc)
        return await swap(cache, metrics, name, changed.version)

    @router.post("/admin/models/{name}/rollback")
    async def rollback(request: Request, name: str) -> Response:
        try:
            guard(request, name)
            body = await read_body(request, MAX_ADMIN_BODY)
            reason = reason_of(parse_json(body, content_type(request))) if body else ""
            changed = await asyncio.to_thread(lambda: models.rollback(name, reason, actor=actor))
        except (Refusal, BadRequest, LooplineError) as exc:
            return admin_error(exc)
        return await swap(cache, metrics, name, changed.version)

    return router


def refresh_models(cache: ModelCache, metrics: ServiceMetrics, *, retry: bool = False) -> list[LoadedModel]:
    """Load the production versions that changed (blocking: call it off the event loop); ``retry``: those that
    failed to load too."""
    loaded = cache.refresh(retry=retry)
    for model in loaded:
        metrics.load_time.labels(model.name, str(model.version)).set(model.load_seconds)
        metrics.served_version.labels(model.name).set(model.version)
        metrics.swaps.labels(model.name).inc()
    return loaded


async def swap(cache: ModelCache, metrics: ServiceMetrics, name: str, version: int) -> Response:
    """Load the production version ``version`` of ``name`` that the store now names and answer with what is
    served (a 503 naming the load failure when it did not load: the old version is served still)."""
    try:
        await asyncio.to_thread(refresh_models, cache, metrics, retry=True)
    except LooplineError as exc:  # the store could not be read: the served version is unchanged
        return admin_error(exc)
    failure = cache.failures().get(name)
    if failure is not None and failure.version == version:
        serving = cache.snapshot().get(name)
        error = f"version {version} of {name!r} is production in the store, but the service could not load it: "
        hint = f"The service still answers with version {serving}; fix the artifact, then promote again."
        return Refusal(503, error + failure.reason, hint, cause="load").response()
    return JSONResponse({"name": name, "production": version, "serving": cache.snapshot()})


def _failed(cache: ModelCache) -> dict[str, dict[str, Any]]:
    """name -> ``{"version", "reason"}`` of each production version the service could not load."""
    return {name: {"version": f.version, "reason": f.reason} for name, f in sorted(cache.failures().items())}


def _promotion(payload: Any) -> tuple[int, str]:
    if not isinstance(payload, dict) or not set(payload) <= {"version", "reason"}:
        raise BadRequest(422, 'send {"version": N} (and optionally "reason").')
    version = payload.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BadRequest(422, '"version" must be a positive integer.')
    return version, reason_of(payload)


def reason_of(payload: Any) -> str:
    """The optional ``"reason"`` of a JSON body (422 unless a string of at most 500 characters)."""
    reason = payload.get("reason", "") if isinstance(payload, dict) else None
    if not isinstance(reason, str) or len(reason) > 500:
        raise BadRequest(422, '"reason" must be a string of at most 500 characters.')
    return reason


def content_type(request: Request) -> str | None:
    """The request's Content-Type header."""
    return request.headers.get("content-type")


def admin_error(exc: Refusal | BadRequest | LooplineError) -> Response:
    """The JSON answer to a refused admin request: the store's NotFoundError is a 404, its ConflictError a 409,
    any other store failure a 503."""
    if isinstance(exc, Refusal):
        return exc.response()
    if isinstance(exc, BadRequest):
        return Refusal(exc.status, exc.message, cause="bad_request").response()
    status = 404 if isinstance(exc, NotFoundError) else 409 if isinstance(exc, ConflictError) else 503
    return Refusal(status, exc.message, exc.hint, cause="store").response()
