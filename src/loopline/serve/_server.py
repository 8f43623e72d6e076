"""Run the service with uvicorn: in the foreground (CLI) or in a background thread (quickstart, tests)."""

from __future__ import annotations

import signal
import socket
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

from loopline.core.errors import LooplineError
from loopline.serve._app import create_app
from loopline.serve._connections import uvicorn_config
from loopline.serve._factory import serve_workers
from loopline.serve._heap import freeze_after_startup
from loopline.serve._settings import Lifecycle, ServeSettings

if TYPE_CHECKING:
    from loopline.store import Store


def serve(
    store: Store,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: ServeSettings | None = None,
    workers: int = 1,
) -> None:
    """Serve until SIGINT/SIGTERM, then stop gracefully and return (the process exits 0).

    On SIGTERM readiness turns 503 at once; requests are still answered for ``drain_seconds`` (so a load balancer
    sees the probe fail and stops sending), then the listener closes, in-flight requests finish (at most
    ``graceful_timeout`` seconds), the prediction log is flushed. SIGINT and a second SIGTERM skip the drain.

    With ``workers`` > 1, uvicorn's supervisor runs that many worker processes on the port, each with its own
    models, batching, prediction logger and metrics, and stops each the same way (see ``_factory``).
    """
    cfg = settings or ServeSettings()
    if workers != 1:
        serve_workers(store, host=host, port=port, settings=cfg, workers=workers)
        return
    app = create_app(store, cfg, host=host)
    freeze_after_startup(app)  # this process is the server's own
    config = uvicorn_config(
        app, host=host, port=port, settings=cfg, timeout_graceful_shutdown=int(cfg.graceful_timeout) or None
    )
    server = _DrainingServer(config, app.state.lifecycle, cfg.drain_seconds)
    # uvicorn re-raises the stop signal after its graceful shutdown; a no-op handler turns that into a normal exit
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        server.run()
    finally:
        signal.signal(signal.SIGTERM, previous)


class _DrainingServer(uvicorn.Server):
    """uvicorn's server, with readiness turned off on the stop signal and a drain period on SIGTERM."""

    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle, drain_seconds: float) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle
        self.drain_seconds = drain_seconds
        self.drain_until: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.lifecycle.stop()
        if sig == signal.SIGTERM and self.drain_seconds > 0 and self.drain_until is None:
            self.drain_until = time.monotonic() + self.drain_seconds  # on_tick stops the server after it
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self.drain_until is not None and time.monotonic() >= self.drain_until:
            self.should_exit = True
        return await super().on_tick(counter)


class BackgroundServer:
    """A uvicorn server in a daemon thread on a free loopback port; a context manager."""

    def __init__(self, store: Store, settings: ServeSettings | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = _free_port(host)
        cfg = settings or ServeSettings()
        self.app = create_app(store, cfg, host=host)
        config = uvicorn_config(self.app, host=host, port=self.port, settings=cfg, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="loopline-serve", daemon=True)

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:54321."""
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise LooplineError("the prediction service did not start.", hint="Run `loopline serve` to see why.")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.app.state.lifecycle.stop()
        self._server.should_exit = True
        self._thread.join(timeout=30)


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
