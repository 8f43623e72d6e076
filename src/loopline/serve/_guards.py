"""What stands before the model: bearer tokens, the model-name pattern, the concurrency limit, the Host header.

Each guard raises :class:`Refusal` (a status and ``{"error", "hint"?}``) or lets the request through; none of
them reads the store.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fastapi.responses import JSONResponse
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect

from loopline.core.config import MODEL_NAME_PATTERN
from loopline.core.errors import ConfigError
from loopline.serve._validation import BadRequest

if TYPE_CHECKING:
    from fastapi import Request
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_NAME = re.compile(MODEL_NAME_PATTERN)
_HOST_PATTERN = re.compile(r"^(\*|(\*\.)?[A-Za-z0-9_.-]+|\[?[0-9A-Fa-f:.]+\]?)$")
_PASSED = "loopline.host_checked"


class Refusal(Exception):
    """A request refused before the model: ``status``, ``error``, an optional ``hint`` and headers; ``cause``
    names it in the error metrics."""

    def __init__(
        self, status: int, error: str, hint: str | None = None, *, cause: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(error)
        self.status, self.error, self.hint, self.cause, self.headers = status, error, hint, cause, headers

    def content(self) -> dict[str, Any]:
        """``{"error", "hint"?}``."""
        return {"error": self.error, **({"hint": self.hint} if self.hint else {})}

    def response(self) -> JSONResponse:
        """The JSON response."""
        return JSONResponse(self.content(), status_code=self.status, headers=self.headers)


def check_token(request: Request, token: str | None, *, role: str) -> None:
    """Refuse unless the ``Authorization: Bearer`` header holds ``token`` (constant-time compare).

    ``role`` is ``"admin"`` or ``"predict"``: with no admin token configured, admin endpoints are closed (403);
    with no predict token configured, predictions are open.
    """
    if not token:
        if role == "predict":
            return
        hint = "Start the service with LOOPLINE_TOKEN set and send it as `Authorization: Bearer TOKEN`."
        raise Refusal(403, "admin endpoints are disabled: no token is configured.", hint, cause="forbidden")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Refusal(401, "missing bearer token.", "Send `Authorization: Bearer TOKEN`.", cause="unauthorized")
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Refusal(403, f"this token may not call {role} endpoints.", cause="forbidden")


def check_model_name(name: str) -> None:
    """Refuse a model name that is not ``MODEL_NAME_PATTERN`` (``../x``, NUL, backslashes, 64+ characters)."""
    if not _NAME.fullmatch(name):
        shown = name if len(name) <= 64 and name.isprintable() else name[:64]
        hint = f"Model names match {MODEL_NAME_PATTERN}."
        raise Refusal(400, f"{shown!r} is not a model name.", hint, cause="bad_name")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with a 413 as soon as it is declared or read past ``limit`` bytes, and with a 408 when
    the connection closes before it is complete (the answer is then dropped, but counted)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, f"the body has {declared} bytes; the limit is {limit}.")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BadRequest(413, f"the body exceeds the limit of {limit} bytes.")
            chunks.append(chunk)
    except ClientDisconnect:  # the client left, or was cut off by the body timeout: nobody reads the answer
        raise BadRequest(408, "the connection closed before the body was complete.") from None
    return b"".join(chunks)


class ConcurrencyLimit:
    """At most ``limit`` requests in flight; one more is refused at once, never queued.

    Used from the event loop only (not thread-safe, and needs no lock there).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    def try_acquire(self) -> bool:
        """Take a slot if one is free."""
        if self.in_flight >= self.limit:
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        """Give a slot back."""
        self.in_flight -= 1

    def refusal(self) -> Refusal:
        """The 503 answered while every slot is taken."""
        message = f"the service is at its limit of {self.limit} requests in flight."
        hint = "Retry after a second, or start the service with a higher --max-concurrency."
        return Refusal(503, message, hint, cause="overload", headers={"Retry-After": "1"})


def allowed_hosts(patterns: Sequence[str] | None, bound_host: str | None) -> list[str] | None:
    """The Host patterns to accept: ``patterns``, or the loopback names plus ``bound_host``; None accepts any."""
    if patterns is None:
        if bound_host is None:
            return None
        patterns = [*LOOPBACK_HOSTS, bound_host]
    hosts = []
    for pattern in patterns:
        if not _HOST_PATTERN.match(pattern):
            raise ConfigError(
                f"{pattern!r} is not a host pattern.", hint="Write a host name, an address, '*.example.com' or '*'."
            )
        ipv6 = ":" in pattern and not pattern.startswith("[")
        hosts.append(f"[{pattern}]" if ipv6 else pattern)
    return hosts


class HostCheck(TrustedHostMiddleware):
    """Starlette's Host-header check; the refusal is a JSON 400 naming the option that admits the host."""

    def __init__(self, app: ASGIApp, allowed: Sequence[str]) -> None:
        super().__init__(self._passed, allowed_hosts=allowed, www_redirect=False)
        self.inner = app

    async def _passed(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[_PASSED] = True
        await self.inner(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return

        async def send_or_refuse(message: Message) -> None:
            if scope.get(_PASSED):
                await send(message)
            elif message["type"] == "http.response.start":  # the refusal: answer it as JSON instead
                error = "the Host header names a host this service does not answer for."
                hint = "Start the service with --allow-host HOST (or '*' to accept any host)."
                await Refusal(400, error, hint, cause="bad_host").response()(scope, receive, send)

        await super().__call__(scope, receive, send_or_refuse)
