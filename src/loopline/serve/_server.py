"""Run the service with uvicorn: in the foreground (CLI) or in a background thread (quickstart, tests)."""

from __future__ import annotations

import signal
import socket
import threading
import time
from typing import TYPE_CHECKING

import uvicorn

from loopline.core.errors import LooplineError
from loopline.serve._app import ServeSettings, create_app

if TYPE_CHECKING:
    from loopline.store import Store


def serve(store: Store, *, host: str = "127.0.0.1", port: int = 8000, settings: ServeSettings | None = None) -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests finish, the log is flushed, and the process exits 0."""
    config = uvicorn.Config(create_app(store, settings), host=host, port=port, log_level="warning", access_log=False)
    # uvicorn re-raises the stop signal after its graceful shutdown; a no-op handler turns that into a normal exit
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        uvicorn.Server(config).run()
    finally:
        signal.signal(signal.SIGTERM, previous)


class BackgroundServer:
    """A uvicorn server in a daemon thread on a free loopback port; a context manager."""

    def __init__(self, store: Store, settings: ServeSettings | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = _free_port(host)
        config = uvicorn.Config(
            create_app(store, settings), host=host, port=self.port, log_level="warning", access_log=False, lifespan="on"
        )
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
        self._server.should_exit = True
        self._thread.join(timeout=30)


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
