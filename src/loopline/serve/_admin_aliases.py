"""Admin endpoints for a model's aliases: read them, point one at a version, remove one.

``GET /admin/models/{name}/aliases`` answers ``{"name", "aliases": {alias: version}}``;
``PUT /admin/models/{name}/aliases/{alias}`` takes ``{"version": N, "expect": M | null, "reason": "..."}`` and
``DELETE /admin/models/{name}/aliases/{alias}`` an optional ``{"expect": M | null, "reason": "..."}``. Each needs
the admin token and is recorded in the audit trail as by ``token:NAME``, like promote and rollback.

``expect`` is the CLI's ``--expect``: a compare-and-set on the version the alias points at now (0: at none); when
another change came first the answer is a 409 saying where the alias points now, and nothing changes. Moving
``production`` is a promotion (the served version is swapped before the answer, as ``/promote`` does); a
challenger that follows the alias (``--shadow NAME@ALIAS``, ``--canary NAME@ALIAS:SHARE``) is reloaded before the
answer too, instead of at the service's next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, TypeGuard

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from loopline.bundle import check_servable
from loopline.core.errors import LooplineError, StoreError
from loopline.serve._admin import MAX_ADMIN_BODY, admin_error, content_type, reason_of, swap
from loopline.serve._guards import Refusal, check_model_name, check_token, read_body
from loopline.serve._validation import BadRequest, parse_json
from loopline.store._aliases import check_alias

if TYPE_CHECKING:
    from loopline.serve._challenger import Challengers
    from loopline.serve._metrics import ServiceMetrics
    from loopline.serve._models import ModelCache
    from loopline.store import Store

PRODUCTION = "production"
_SET_FIELDS = ("version", "expect", "reason")
_REMOVE_FIELDS = ("expect", "reason")


def alias_router(
    store: Store,
    cache: ModelCache,
    metrics: ServiceMetrics,
    challengers: Challengers,
    token: str | None,
    token_name: str = "admin",
) -> APIRouter:
    """The alias routes of one service, guarded by ``token`` (closed when it is None); changes are recorded as by
    ``token:TOKEN_NAME``."""
    actor = f"token:{token_name}"
    router = APIRouter()
    models = store.models.with_check(check_servable)

    def guard(request: Request, name: str, alias: str | None = None) -> None:
        check_token(request, token, role="admin")
        check_model_name(name)
        if alias is not None:
            _check_alias_name(alias)

    @router.get("/admin/models/{name}/aliases")
    async def read_aliases(request: Request, name: str) -> Response:
        try:
            guard(request, name)
            found = await asyncio.to_thread(models.aliases, name)
        except (Refusal, LooplineError) as exc:
            return admin_error(exc)
        return JSONResponse({"name": name, "aliases": found})

    @router.put("/admin/models/{name}/aliases/{alias}")
    async def set_alias(request: Request, name: str, alias: str) -> Response:
        try:
            guard(request, name, alias)
            payload = parse_json(await read_body(request, MAX_ADMIN_BODY), content_type(request))
            version, expect, reason = _set_body(payload)
            changed = await asyncio.to_thread(
                lambda: models.set_alias(name, alias, version, reason, actor=actor, expect=expect)
            )
        except (Refusal, BadRequest, LooplineError) as exc:
            return admin_error(exc)
        if alias == PRODUCTION:
            return await swap(cache, metrics, name, changed.version)
        return await _answer(challengers, name, alias, {"name": name, "alias": alias, "version": changed.version})

    @router.delete("/admin/models/{name}/aliases/{alias}")
    async def remove_alias(request: Request, name: str, alias: str) -> Response:
        try:
            guard(request, name, alias)
            body = await read_body(request, MAX_ADMIN_BODY)
            expect, reason = _remove_body(parse_json(body, content_type(request))) if body else (None, "")
            removed = await asyncio.to_thread(
                lambda: models.remove_alias(name, alias, reason, actor=actor, expect=expect)
            )
        except (Refusal, BadRequest, LooplineError) as exc:
            return admin_error(exc)
        return await _answer(challengers, name, alias, {"name": name, "alias": alias, "removed_from": removed})

    return router


async def _answer(challengers: Challengers, name: str, alias: str, content: dict[str, Any]) -> Response:
    """``content``, after reloading the challenger that follows ``alias`` of ``name`` (with its state added)."""
    designation = challengers.designations.get(name)
    if designation is None or designation.alias != alias:
        return JSONResponse(content)
    with contextlib.suppress(LooplineError):  # the store could not be read: the next poll tries again
        await asyncio.to_thread(challengers.refresh)
    return JSONResponse({**content, "challenger": challengers.snapshot()[name]})


def _check_alias_name(alias: str) -> None:
    try:
        check_alias(alias)
    except StoreError as exc:
        raise Refusal(400, exc.message, exc.hint, cause="bad_name") from None


def _fields(payload: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    shape = "{" + ", ".join(_SHAPES[field] for field in allowed) + "}"
    if not isinstance(payload, dict):
        raise BadRequest(422, f"send a JSON object {shape}.")
    unknown = sorted(set(payload) - set(allowed))
    if unknown:
        raise BadRequest(422, f"unknown field {unknown[0]!r}; send {shape}.")
    return payload


_SHAPES = {"version": '"version": N', "expect": '"expect": M or null', "reason": '"reason": "..."'}


def _set_body(payload: Any) -> tuple[int, int | None, str]:
    body = _fields(payload, _SET_FIELDS)
    version = body.get("version")
    if not _is_int(version) or version < 1:
        raise BadRequest(422, '"version" must be a positive integer: the version the alias points at.')
    return version, _expect(body), reason_of(body)


def _remove_body(payload: Any) -> tuple[int | None, str]:
    body = _fields(payload, _REMOVE_FIELDS)
    return _expect(body), reason_of(body)


def _expect(body: dict[str, Any]) -> int | None:
    expect = body.get("expect")
    if expect is not None and (not _is_int(expect) or expect < 0):
        raise BadRequest(422, '"expect" must be null or the version the alias points at now (0: at none).')
    return expect


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
