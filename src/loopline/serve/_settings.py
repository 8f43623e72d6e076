"""What a service is started with (:class:`ServeSettings`) and where it stands (:class:`Lifecycle`)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loopline.bundle import DEFAULT_MAX_STRING_LENGTH, InputPolicy
from loopline.core.errors import ConfigError, did_you_mean
from loopline.serve._challenger import Designation, parse_designations

PREDICT_TOKEN_ENV = "LOOPLINE_PREDICT_TOKEN"
TOKEN_NAME_ENV = "LOOPLINE_TOKEN_NAME"
_TOKEN_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MAX_BATCH_DELAY = 0.1
"""The longest a request may be held back for micro-batching, in seconds."""


class ServeSettings:
    """Limits, guards and intervals of one service (plain attributes, all optional).

    ``token`` opens the admin endpoints (reload, promote, rollback; closed without it); ``predict_token``, when
    set, is required by every prediction endpoint (health and metadata stay open) and never opens admin ones.
    ``token_name`` names the admin token in the model audit trail (a promotion over HTTP is by ``token:NAME``).
    ``allowed_hosts``: Host header patterns (None: the loopback names plus the bound host; ``"*"``: any).
    ``allowed_origins``: browser origins allowed by CORS (none by default). ``max_concurrency``: prediction
    requests in flight before the next gets a 503. ``drain_seconds``: after SIGTERM, how long readiness answers
    503 while requests are still served, before the listener closes; ``graceful_timeout``: how long in-flight
    requests then get to finish. ``max_batch_rows`` and ``max_batch_delay`` (seconds) bound micro-batching: the
    concurrent requests of one model version merged into one model call (see :class:`ModelRunner`); with a
    delay of 0 (the default) only requests already waiting are merged and none is held back.
    ``protocols``: the names of the wire protocols to mount (see :mod:`loopline.serve.protocols`); None (the
    default) mounts every registered one.
    What one client may hold (see :mod:`loopline.serve._connections`): ``header_timeout`` and ``body_timeout``
    (seconds for the request line and headers, then for the body; past them a 408 and the connection closes),
    ``keepalive_timeout`` (seconds a connection may idle between requests), ``max_header_bytes`` (past it a
    431) and ``max_connections`` (open connections; past it a new one gets a 503 and is closed).
    ``max_string_length`` (characters of a text value whose field has no
    ``max_length`` in the model's input schema) and ``missing_as_null`` (a missing nullable field is null, not
    a 422) set the input policy every protocol applies (see :class:`loopline.bundle.InputPolicy`).
    ``shadow`` (``"NAME=VERSION"`` items) and ``canary`` (``"NAME=VERSION:SHARE"``, SHARE in (0, 0.5]) designate
    a challenger per model (see :mod:`loopline.serve._challenger`); ``shadow_queue`` bounds the requests waiting
    for shadow scoring (past it the shadow's work is dropped and counted, the champion never waits).
    ``mounts`` (``"module:function"`` items) add routes of another package to the app: each function is called
    with the app, the store and these settings (``loopline serve --ui`` mounts the dashboard this way).
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        predict_token: str | None = None,
        token_name: str = "admin",
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
        protocols: Sequence[str] | None = None,
        header_timeout: float = 10.0,
        body_timeout: float = 30.0,
        keepalive_timeout: float = 5.0,
        max_header_bytes: int = 65_536,
        max_connections: int = 1000,
        max_string_length: int = DEFAULT_MAX_STRING_LENGTH,
        missing_as_null: bool = True,
        shadow: Sequence[str] = (),
        canary: Sequence[str] = (),
        shadow_queue: int = 256,
        mounts: Sequence[str] = (),
    ) -> None:
        self.token = token
        self.predict_token = predict_token
        self.token_name = token_name
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
        self.protocols = protocols
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.keepalive_timeout = keepalive_timeout
        self.max_header_bytes = max_header_bytes
        self.max_connections = max_connections
        self.max_string_length = max_string_length
        self.missing_as_null = missing_as_null
        self.shadow = shadow
        self.canary = canary
        self.shadow_queue = shadow_queue
        self.mounts = tuple(mounts)

    def input_policy(self) -> InputPolicy:
        """The input policy of every prediction request."""
        return InputPolicy(max_string_length=self.max_string_length, missing_as_null=self.missing_as_null)

    @classmethod
    def from_env(cls, home: str | Path | None = None, **options: Any) -> ServeSettings:
        """Settings with the tokens read from ``LOOPLINE_TOKEN`` and ``LOOPLINE_PREDICT_TOKEN`` (the admin token's
        name from ``LOOPLINE_TOKEN_NAME``, default ``admin``)."""
        from loopline.core.settings import Settings

        options.setdefault("token_name", os.environ.get(TOKEN_NAME_ENV) or "admin")
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


def check_settings(cfg: ServeSettings) -> None:
    """Refuse settings a service cannot run with, naming the setting and a value that works."""
    if not isinstance(cfg.token_name, str) or not _TOKEN_NAME.fullmatch(cfg.token_name):
        raise ConfigError(
            f"the token name {str(cfg.token_name)[:70]!r} is not 1-64 letters, digits or . _ @ -.",
            key="token_name",
            hint=f"Set {TOKEN_NAME_ENV} to e.g. ci-deployer.",
        )
    if cfg.max_concurrency < 1:
        raise ConfigError(f"max_concurrency is {cfg.max_concurrency}; it must be at least 1.", hint="Use e.g. 64.")
    if cfg.max_batch_rows < 1:
        raise ConfigError(f"max_batch_rows is {cfg.max_batch_rows}; it must be at least 1.", hint="Use e.g. 64.")
    if not 0 <= cfg.max_batch_delay <= MAX_BATCH_DELAY:
        raise ConfigError(
            f"max_batch_delay is {cfg.max_batch_delay} s; it must be between 0 and {MAX_BATCH_DELAY} s.",
            hint="Use 0 (merge only what waits already) or a millisecond or two, e.g. 0.001.",
        )
    for key in ("header_timeout", "body_timeout", "keepalive_timeout"):
        if not getattr(cfg, key) > 0:
            raise ConfigError(f"{key} is {getattr(cfg, key)} s; it must be above 0.", key=key, hint="Use e.g. 10.")
    if cfg.max_header_bytes < 1024:
        raise ConfigError(
            f"max_header_bytes is {cfg.max_header_bytes}; it must be at least 1024.", hint="Use e.g. 65536."
        )
    if cfg.max_connections < 1:
        raise ConfigError(f"max_connections is {cfg.max_connections}; it must be at least 1.", hint="Use e.g. 1000.")
    cfg.input_policy().check()
    if cfg.shadow_queue < 1:
        raise ConfigError(f"shadow_queue is {cfg.shadow_queue}; it must be at least 1.", hint="Use e.g. 256.")
    designations(cfg)
    if cfg.predict_token and cfg.predict_token == cfg.token:
        raise ConfigError(
            "LOOPLINE_PREDICT_TOKEN is the admin token LOOPLINE_TOKEN: every client could promote models.",
            hint="Give the predict token its own value.",
        )
    for origin in cfg.allowed_origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ConfigError(f"{origin!r} is not a browser origin.", hint="Write it like https://app.example.com.")


def designations(cfg: ServeSettings) -> list[Designation]:
    """The challengers ``cfg`` designates (syntax only: :func:`check_designations` asks the store)."""
    return parse_designations(cfg.shadow, cfg.canary)


def protocol_names(selected: Sequence[str] | None, registered: Sequence[str]) -> list[str]:
    """The protocols to mount: ``selected`` (in its order, once each), or every registered one when None."""
    if selected is None:
        return list(registered)
    if isinstance(selected, str) or not selected:
        raise ConfigError(
            f"protocols is {selected!r}; it must be a non-empty list of protocol names.",
            key="protocols",
            hint=f"Name one or more of {', '.join(registered)}, or leave it unset to mount them all.",
        )
    for name in selected:
        if name not in registered:
            hint = did_you_mean(str(name), registered) or f"Registered protocols: {', '.join(registered)}."
            raise ConfigError(f"protocol {name!r} is not registered.", key="protocols", hint=hint)
    return list(dict.fromkeys(selected))
