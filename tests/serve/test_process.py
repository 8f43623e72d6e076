"""`loopline serve` as a real process: it answers, and SIGTERM flushes the prediction log and exits 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from loopline.store import Store

from .conftest import register


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sigterm_flushes_the_log_and_exits_cleanly(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Store.open(f"sqlite:///{home / 'loopline.db'}", home / "artifacts")
    store.models.promote("toy", register(store).version)
    store.close()
    port = free_port()
    env = {**os.environ, "LOOPLINE_HOME": str(home)}
    env.pop("LOOPLINE_STORE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "loopline.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/v2/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not become ready"
            time.sleep(0.1)
        for _ in range(10):
            response = httpx.post(f"{url}/predict/toy", json=[{"x": 1.0, "n": 2, "group": "b"}] * 3)
            assert response.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    store = Store.open(f"sqlite:///{home / 'loopline.db'}", home / "artifacts")
    assert store.predictions.count("toy") == 30
    store.close()
