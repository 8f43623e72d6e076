"""`loopline ui` as a real process: it serves the dashboard over the store of --home, reads without a token and
acts with LOOPLINE_TOKEN; a bad --allow-host is refused before it starts."""

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

from .conftest import ADMIN_TOKEN, BEARER, add_version

STARTUP = 300.0
"""Seconds the dashboard may take to answer: a hang detector only, sized for a loaded machine."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(home: Path) -> dict[str, str]:
    env = {**os.environ, "LOOPLINE_HOME": str(home), "LOOPLINE_TOKEN": ADMIN_TOKEN}
    env.pop("LOOPLINE_STORE_URL", None)
    env.pop("LOOPLINE_ARTIFACTS_URL", None)
    return env


def test_loopline_ui_serves_the_store_of_its_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Store.open(f"sqlite:///{home / 'loopline.db'}", home / "artifacts")
    store.models.promote("toy", add_version(store).version)
    add_version(store, seed=3)
    store.close()
    port = _free_port()
    command = [sys.executable, "-m", "loopline.cli", "ui", "--port", str(port)]
    process = subprocess.Popen(command, env=_environment(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    http = httpx.Client(timeout=120)  # a loaded machine: the promotion loads the bundle to check it
    try:
        deadline = time.monotonic() + STARTUP
        while True:
            try:
                if httpx.get(f"{url}/api/").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "the dashboard exited before answering"
            assert time.monotonic() < deadline, "the dashboard did not answer"
            time.sleep(0.2)
        assert http.get(f"{url}/api/").json()["models"][0]["production"]["version"] == 1
        assert "production v1" in http.get(f"{url}/ui/").text
        assert http.post(f"{url}/api/actions/promote", json={"model": "toy", "version": 2}).status_code == 401
        done = http.post(f"{url}/api/actions/promote", json={"model": "toy", "version": 2}, headers=BEARER)
        assert done.status_code == 200 and http.get(f"{url}/api/").json()["models"][0]["production"]["version"] == 2
        refused = http.get(f"{url}/ui/", headers={"Host": "dashboard.example"})
        assert refused.status_code == 400  # only the loopback names and --host by default
    finally:
        http.close()
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    banner = output.decode()
    assert f"dashboard on http://127.0.0.1:{port}/ui/ (actions open to the admin token)" in banner


def test_a_bad_host_pattern_is_refused_before_starting(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "loopline.cli", "ui", "--allow-host", "bad host!", "--home", str(tmp_path)]
    finished = subprocess.run(command, env=_environment(tmp_path), capture_output=True, text=True, timeout=300)
    assert finished.returncode != 0
    assert "is not a host pattern" in finished.stdout + finished.stderr
