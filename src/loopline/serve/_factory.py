"""Several worker processes behind uvicorn's own supervisor, each building its app from the environment.

How it works: :func:`serve_workers` (the parent) pins what the workers need in its environment, then runs
uvicorn's ``Multiprocess`` supervisor with the import string of :func:`app_from_env`, which every worker calls:

- the store: ``LOOPLINE_STORE_URL`` (set to the parent's store URL) and, in ``LOOPLINE_SERVE_SETTINGS``, its
  artifact location (a folder or a URL without credentials: those stay in the inherited environment) and its
  local folder;
- the serve settings: ``LOOPLINE_SERVE_SETTINGS``, JSON of every :class:`ServeSettings` attribute but the tokens,
  plus the bound host;
- the tokens: ``LOOPLINE_TOKEN`` and ``LOOPLINE_PREDICT_TOKEN``, set (or removed) to match the settings given.
  Tokens are never in argv, and never in the JSON.

The parent's environment is restored when the supervisor returns.

Each worker has its own model cache, micro-batching thread, prediction logger (the loggers share the segment
folder: each holds an ``flock`` on its own segment) and metrics: ``/metrics`` reports the worker that answered,
named by the ``X-Loopline-Worker`` response header (its PID). Prometheus multiprocess mode is not supported.

Stopping: SIGTERM to the parent makes the supervisor send SIGTERM to every worker. A worker turns readiness off
at once, keeps answering for ``drain_seconds``, then closes its listener, lets in-flight requests finish (at most
``graceful_timeout`` seconds), flushes its prediction log into the store and exits 0; the parent then exits 0.
A second SIGTERM to a worker skips its drain.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from loopline.core.errors import ConfigError, LooplineError
from loopline.core.settings import STORE_URL_ENV, TOKEN_ENV, Settings
from loopline.serve._app import create_app
from loopline.serve._connections import uvicorn_config
from loopline.serve._heap import freeze_after_startup
from loopline.serve._settings import PREDICT_TOKEN_ENV, Lifecycle, ServeSettings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from loopline.store import Store

SETTINGS_ENV = "LOOPLINE_SERVE_SETTINGS"
WORKER_HEADER = "X-Loopline-Worker"
_SECRETS = ("token", "predict_token")


def serve_workers(store: Store, *, host: str, port: int, settings: ServeSettings, workers: int) -> None:
    """Serve with ``workers`` processes until SIGINT/SIGTERM, then stop them gracefully and return.

    The workers are started with ``spawn``: a script calling this needs the ``if __name__ == "__main__":`` guard.
    """
    from uvicorn.supervisors import Multiprocess  # lazily: importing it registers multiprocessing reducers

    if workers < 1:
        raise ConfigError(f"workers is {workers}; it must be at least 1.", hint="Use e.g. --workers 2.")
    create_app(store, settings, host=host)  # checks the settings here, where a mistake is one clear message
    config = uvicorn_config(  # pickled into each worker, with its connection limits
        f"{__name__}:app_from_env",
        host=host,
        port=port,
        settings=settings,
        factory=True,
        workers=workers,
        timeout_graceful_shutdown=int(settings.graceful_timeout) or None,
    )
    with _worker_environment(store, host, settings), _restored_signal_handlers():
        supervisor = Multiprocess(config, sockets=[config.bind_socket()])
        supervisor.run()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        raise LooplineError("a worker of the prediction service failed to start.", hint="Its error is above.")


def app_from_env() -> FastAPI:
    """The app of one worker: store, settings and tokens from the environment (see the module doc)."""
    options: dict[str, Any] = json.loads(os.environ.get(SETTINGS_ENV) or "{}")
    host, artifacts, local_dir = (options.pop(key, None) for key in ("host", "artifacts", "local_dir"))
    env = Settings.from_env()
    from loopline.store import Store

    store = Store.open(env.store_url, artifacts or env.artifacts, local_dir=local_dir or env.home)
    settings = ServeSettings.from_env(**options)
    app = create_app(store, settings, host=host)
    _close_with_lifespan(app, store)
    freeze_after_startup(app)  # a worker process is the server's own
    app.add_middleware(_WorkerHeader)
    _drain_on_sigterm(app.state.lifecycle, settings.drain_seconds)
    return app


@contextlib.contextmanager
def _worker_environment(store: Store, host: str, settings: ServeSettings) -> Iterator[None]:
    options = {k: v for k, v in vars(settings).items() if k not in _SECRETS}
    options.update(host=host, artifacts=store.artifacts.location, local_dir=str(store.local_dir))
    values = {
        SETTINGS_ENV: json.dumps(options, default=list),
        STORE_URL_ENV: store.url.render_as_string(hide_password=False),
        TOKEN_ENV: settings.token,
        PREDICT_TOKEN_ENV: settings.predict_token,
    }
    previous = {name: os.environ.get(name) for name in values}
    try:
        _set_environment(values)
        yield
    finally:
        _set_environment(previous)


def _set_environment(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@contextlib.contextmanager
def _restored_signal_handlers() -> Iterator[None]:
    """The supervisor replaces the handlers of the signals it forwards; put the caller's back afterwards."""
    from uvicorn.supervisors.multiprocess import SIGNALS

    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _close_with_lifespan(app: FastAPI, store: Store) -> None:
    """Close the worker's store after the app's own shutdown (which flushes the prediction log into it)."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(started: Any) -> AsyncIterator[Any]:
        try:
            async with inner(started) as state:
                yield state
        finally:
            store.close()

    app.router.lifespan_context = lifespan


def _drain_on_sigterm(lifecycle: Lifecycle, drain_seconds: float) -> None:
    """In a uvicorn worker, SIGTERM: readiness off, drain, then stop without re-raising the signal (exit 0).

    Called while uvicorn's worker loads the app, after it installed its own handler (``Server.handle_exit``):
    this one replaces it for SIGTERM and stops that server itself. Outside a uvicorn worker it does nothing.
    """
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    if threading.current_thread() is not threading.main_thread() or not isinstance(server, uvicorn.Server):
        return
    draining: list[threading.Timer] = []

    def stop() -> None:
        server.should_exit = True

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        lifecycle.stop()
        if drain_seconds <= 0 or draining:
            stop()
            return
        draining.append(threading.Timer(drain_seconds, stop))
        draining[0].daemon = True
        draining[0].start()

    signal.signal(signal.SIGTERM, on_sigterm)


class _WorkerHeader:
    """ASGI middleware: every HTTP response names the worker process that answered it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.header = (WORKER_HEADER.lower().encode(), str(os.getpid()).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_named(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), self.header]}
            await send(message)

        await self.app(scope, receive, send_named)
