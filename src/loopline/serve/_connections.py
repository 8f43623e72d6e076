"""What one client may hold: a uvicorn HTTP protocol with read timeouts, a header size limit and a connection cap.

uvicorn closes a keep-alive connection left idle, and nothing else: a client that trickles its request headers
(slowloris), or sends headers and never finishes the body, or opens a socket and sends nothing, keeps a file
descriptor for good. :class:`BoundedHttpTools` wraps uvicorn's httptools protocol (httptools is a dependency)
with one timer per connection:

- **headers**: from the connection (or the first byte of the next request on a kept-alive one), the request line
  and headers must be in within ``header_timeout`` seconds and ``max_header_bytes`` bytes; past the time the
  client gets a 408 (nothing, when it sent nothing) and the connection closes; past the size, a 431.
- **body**: from the end of the headers, the body must be in within ``body_timeout`` seconds, else a 408 (when
  the app has not answered yet; the app sees a disconnect) and the connection closes.
- **idle**: between requests uvicorn's own keep-alive timer (``keepalive_timeout``) closes the connection.
- **connections**: past ``max_connections`` open connections a new one gets a 503 and is closed at once.

Each timeout is a total for its phase, not a gap between bytes: one byte a second does not keep it open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import resource
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

if TYPE_CHECKING:
    from loopline.serve._settings import ServeSettings

_log = logging.getLogger(__name__)
_FD_RESERVE = 64
"""File descriptors kept for everything but client connections (store, logs, models)."""


@dataclass(frozen=True)
class ConnectionLimits:
    """Per-connection bounds (seconds, bytes, a count); see the module docstring."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_header_bytes: int = 65_536
    max_connections: int = 1000


class LimitedConfig(uvicorn.Config):
    """uvicorn's config, carrying the :class:`ConnectionLimits` its protocol instances read (picklable, for
    worker processes)."""

    limits = ConnectionLimits()


def uvicorn_config(app: Any, *, host: str, port: int, settings: ServeSettings, **options: Any) -> LimitedConfig:
    """The uvicorn config every loopline server runs with: the bounded protocol and the settings' limits."""
    limits = ConnectionLimits(
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_header_bytes=settings.max_header_bytes,
        max_connections=settings.max_connections,
    )
    raise_fd_limit(limits.max_connections + _FD_RESERVE)
    config = LimitedConfig(
        app,
        host=host,
        port=port,
        http=BoundedHttpTools,
        ws="none",
        timeout_keep_alive=settings.keepalive_timeout,  # type: ignore[arg-type]  # uvicorn uses it as a float
        log_level="warning",
        access_log=False,
        **options,
    )
    config.limits = limits
    return config


def raise_fd_limit(needed: int) -> None:
    """Raise the soft limit on open files to ``needed`` when it is lower and the hard limit allows it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        _log.warning("open files are limited to %d: fewer than max_connections + %d.", hard, _FD_RESERVE)


class _Guard:
    """The one timer of a connection and the phase it is armed for (``headers``, ``body`` or none)."""

    def __init__(self, protocol: Any, limits: ConnectionLimits) -> None:
        self.protocol = protocol
        self.limits = limits
        self.timer: asyncio.TimerHandle | None = None
        self.phase: str | None = None
        self.seen: Any = None  # the request cycle whose headers were last complete
        self.header_bytes = 0

    def connected(self) -> None:
        """Refuse a connection past the cap; else give it ``header_timeout`` for its first request."""
        if len(self.protocol.connections) > self.limits.max_connections:
            self.refuse(503, "too many open connections.", "Retry in a moment, or reuse a kept-alive connection.")
            return
        self.arm("headers")

    def received(self, size: int) -> None:
        """After the parser took ``size`` bytes: move to the phase the request is in now."""
        cycle = self.protocol.cycle
        if self.protocol.transport.is_closing():
            self.cancel()
        elif cycle is not None and cycle is not self.seen:  # a request's headers are complete
            self.seen, self.header_bytes = cycle, 0
            if _header_size(cycle.scope) > self.limits.max_header_bytes:  # they came in one read
                self.too_large()
            elif cycle.more_body:
                self.arm("body")
            else:
                self.cancel()
        elif self.phase == "body":
            if not self.seen.more_body:
                self.cancel()
        else:
            self.header_bytes += size
            if self.header_bytes > self.limits.max_header_bytes:
                self.too_large()
            elif self.phase is None:
                self.arm("headers")

    def too_large(self) -> None:
        """Answer 431 and close."""
        limit = self.limits.max_header_bytes
        self.refuse(431, f"the request headers are over {limit} bytes.", "Send shorter headers.")

    def arm(self, phase: str) -> None:
        """(Re)start the timer for ``phase``."""
        self.cancel()
        delay = self.limits.header_timeout if phase == "headers" else self.limits.body_timeout
        self.phase = phase
        self.timer = self.protocol.loop.call_later(delay, self.expired)

    def cancel(self) -> None:
        """Stop the timer (idempotent)."""
        if self.timer is not None:
            self.timer.cancel()
        self.timer, self.phase = None, None

    def expired(self) -> None:
        """The phase ran out: answer 408 where a request was under way, and close."""
        phase, cycle = self.phase, self.protocol.cycle
        self.timer, self.phase = None, None
        if phase == "headers" and cycle is not None and not cycle.response_complete:
            self.arm("headers")  # bytes of a pipelined request while one is served: check again later
        elif phase == "headers":
            limit = self.limits.header_timeout
            started = self.header_bytes > 0
            self.refuse(408, f"the request headers took over {limit} s.", "Send the whole request at once.", started)
        elif cycle is self.seen and cycle.more_body:
            answered = cycle.response_started
            limit = self.limits.body_timeout
            self.refuse(408, f"the request body took over {limit} s.", "Send the whole body at once.", not answered)

    def refuse(self, status: int, error: str, hint: str, answer: bool = True) -> None:
        """Answer ``status`` with ``{"error", "hint"}`` (when ``answer``) and close; the app sees a disconnect."""
        self.cancel()
        cycle, transport = self.protocol.cycle, self.protocol.transport
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's own response, if any, is dropped from now on
            cycle.message_event.set()
        if answer and not transport.is_closing():
            transport.write(_response(status, error, hint))
        _log.debug("closed a connection from %s: %s", self.protocol.client, error)
        transport.close()


def _header_size(scope: Any) -> int:
    """The bytes of a parsed request line and headers (as sent, give or take the method and separators)."""
    target = len(scope.get("raw_path", b"")) + len(scope.get("query_string", b""))
    return target + sum(len(name) + len(value) + 4 for name, value in scope.get("headers", ()))


def _response(status: int, error: str, hint: str) -> bytes:
    body = json.dumps({"error": error, "hint": hint}).encode()
    reason = {408: "Request Timeout", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}[status]
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


class BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds of the module docstring."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.guard = _Guard(self, getattr(config, "limits", ConnectionLimits()))

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.guard.connected()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.guard.received(len(data))

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.cancel()
        super().connection_lost(exc)
