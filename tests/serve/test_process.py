"""`loopline serve` as a real process: it answers; on SIGTERM readiness turns 503 at once, the request in flight
finishes, the prediction log is flushed and the process exits 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
from tests._candidates import refused_type_bundle

from loopline.bundle import ModelBundle
from loopline.serve import ServeSettings
from loopline.store import Store

from .conftest import register, register_bytes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


STARTUP = 300.0
"""Seconds a service may take to become ready: only a hang detector (the deadline is polled), so it is sized for
a machine running a dozen other test processes, where a service with two workers once took over 120 s."""

CLI_GUARDS = ["--allow-host", "127.0.0.1", "--allow-host", "api.internal", "--max-concurrency", "4"]


def test_sigterm_flushes_the_log_and_exits_cleanly(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Store.open(f"sqlite:///{home / 'loopline.db'}", home / "artifacts")
    store.models.promote("toy", register(store).version)
    store.close()
    port = free_port()
    env = {**os.environ, "LOOPLINE_HOME": str(home)}
    env.pop("LOOPLINE_STORE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "loopline.cli", "serve", "--port", str(port), *CLI_GUARDS],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP
        while True:
            try:
                if httpx.get(f"{url}/v2/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not become ready"
            time.sleep(0.1)
        assert httpx.get(f"{url}/v2/health/ready", headers={"host": "api.internal"}).status_code == 200
        assert httpx.get(f"{url}/v2/health/ready", headers={"host": "localhost"}).status_code == 400  # replaced
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


def test_workers_share_the_port_and_the_log_and_all_stop_cleanly_on_sigterm(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Store.open(f"sqlite:///{home / 'loopline.db'}", home / "artifacts")
    store.models.promote("toy", register(store).version)
    store.close()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LOOPLINE_HOME": str(home), "LOOPLINE_SERVE_HEADER_TIMEOUT": "1"}
    env.pop("LOOPLINE_STORE_URL", None)
    command = [sys.executable, "-m", "loopline.cli", "serve", "--port", str(port), "--workers", "2", *CLI_GUARDS]
    with (tmp_path / "stderr.txt").open("wb") as stderr:
        process = subprocess.Popen(command, env=env, stdout=stderr, stderr=stderr)

    def predict(_: int) -> httpx.Response:
        return httpx.post(f"{url}/predict/toy", json={"x": 1.0, "n": 2, "group": "b"}, timeout=30)

    try:
        wait_ready(url, process)
        workers: set[int] = set()  # both answer readiness (the second may still be loading its models)
        deadline = time.monotonic() + STARTUP
        while len(workers) < 2:
            assert time.monotonic() < deadline, f"only the worker(s) {workers} became ready"
            response = httpx.get(f"{url}/v2/health/ready")
            if response.status_code == 200:
                workers.add(int(response.headers["x-loopline-worker"]))
        assert workers <= {child.pid for child in psutil.Process(process.pid).children()}  # the supervisor's
        # at most 4 in flight (CLI_GUARDS' --max-concurrency, per worker): however the kernel spreads the connections,
        # no worker is over its limit (8 threads were: a slow worker then answered 503s under load)
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(predict, range(50)))
        assert [a.status_code for a in answers] == [200] * 50
        outputs = [_without_ids(a.json()) for a in answers]
        assert all(o == outputs[0] for o in outputs) and outputs[0]["version"] == 1
        assert {int(a.headers["x-loopline-worker"]) for a in answers} == workers
        # every worker cuts off a slow client with the header timeout of 1 s it was given: after it, and before the
        # 10 s default a worker that lost the setting would wait
        default = ServeSettings().header_timeout
        with ThreadPoolExecutor(max_workers=6) as pool:
            seconds = list(pool.map(lambda _: cut_off_after(port), range(6)))
        assert all(0.9 < s < default for s in seconds), seconds

        process.send_signal(signal.SIGTERM)
        readiness = []  # the workers turn readiness off, then drain for a second before they close the listener
        while process.poll() is None and 503 not in readiness:
            try:
                readiness.append(httpx.get(f"{url}/v2/health/ready", timeout=5).status_code)
            except httpx.TransportError:
                break
            time.sleep(0.05)
        assert 503 in readiness
        assert process.wait(timeout=60) == 0, (tmp_path / "stderr.txt").read_text()
        assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in workers)
    finally:
        if process.poll() is None:
            for child in psutil.Process(process.pid).children():
                child.kill()
            process.kill()
            process.wait()
    store = Store.open(f"sqlite:///{home / 'loopline.db'}", home / "artifacts")
    assert store.predictions.count("toy") == 50  # every worker flushed its log into the store
    store.close()
    assert "Traceback" not in (tmp_path / "stderr.txt").read_text()


def cut_off_after(port: int) -> float:
    """Send half a request line and wait: seconds until the service answers 408 and closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /v2/health/re")
        answer = b"".join(iter(lambda: sock.recv(4096), b""))
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    return time.monotonic() - started


def _without_ids(answer: dict[str, Any]) -> dict[str, Any]:
    predictions = [{k: v for k, v in p.items() if k != "prediction_id"} for p in answer["predictions"]]
    return {**answer, "predictions": predictions}


SLOW_SERVER = """
import os, sys, time
from loopline.serve import ServeSettings, serve
from loopline.store import Store
from loopline.train import ModelBundle

real = ModelBundle.predict_records


def slow(self, records):  # a record with n == 9 waits for the test's release file: the request in flight at SIGTERM
    if any(r.get("n") == 9 for r in records):
        deadline = time.monotonic() + 120
        while not os.path.exists(sys.argv[4]) and time.monotonic() < deadline:
            time.sleep(0.01)
    return real(self, records)


ModelBundle.predict_records = slow
store = Store.open(sys.argv[1], sys.argv[2])
serve(store, port=int(sys.argv[3]), settings=ServeSettings(drain_seconds=DRAIN, log_flush_interval=30))
store.close()
"""


DRAIN = 5.0
"""The drain after SIGTERM: long enough for the test's requests to land in it on a loaded machine."""


def test_sigterm_turns_readiness_off_at_once_and_finishes_the_request_in_flight(tmp_path: Path) -> None:
    url_db, artifacts = f"sqlite:///{tmp_path / 'loopline.db'}", tmp_path / "artifacts"
    store = Store.open(url_db, artifacts)
    store.models.promote("toy", register(store).version)
    store.close()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    release = str(tmp_path / "release")
    with (tmp_path / "stderr.txt").open("wb") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                SLOW_SERVER.replace("DRAIN", str(DRAIN)),
                url_db,
                str(artifacts),
                str(port),
                release,
            ],
            stdout=stderr,
            stderr=stderr,
        )
    answers: dict[str, httpx.Response] = {}

    def post(key: str, n: int) -> None:
        answers[key] = httpx.post(f"{url}/predict/toy", json={"x": 1.0, "n": n, "group": "b"}, timeout=30)

    try:
        wait_ready(url, process)
        for _ in range(5):
            assert httpx.post(f"{url}/predict/toy", json=[{"x": 1.0, "n": 2, "group": "b"}] * 3).status_code == 200
        in_flight = threading.Thread(target=post, args=("slow", 9))
        in_flight.start()
        deadline = time.monotonic() + 60
        while "loopline_requests_in_flight 1.0" not in httpx.get(f"{url}/metrics").text:
            assert time.monotonic() < deadline, "the slow request never started"
            time.sleep(0.01)

        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        first = httpx.get(f"{url}/v2/health/ready")
        # at once: the first probe after the signal gets a 503, while the request in flight is still held
        assert first.status_code == 503 and "slow" not in answers
        assert httpx.get(f"{url}/ping").status_code == 503
        during_drain = threading.Thread(target=post, args=("drain", 2))  # still answered while the LB catches up
        during_drain.start()
        readiness = []
        while process.poll() is None and time.monotonic() - signalled < DRAIN + 30:
            try:
                readiness.append(httpx.get(f"{url}/v2/health/ready", timeout=1).status_code)
            except httpx.TransportError:
                break  # the listener is closed
            time.sleep(0.05)
        assert readiness and set(readiness) == {503}
        assert "slow" not in answers  # still held when the listener closed
        Path(release).touch()  # the request in flight may finish now, in the graceful shutdown
        in_flight.join(timeout=30)
        during_drain.join(timeout=30)
        assert answers["slow"].status_code == 200 and answers["slow"].json()["version"] == 1
        assert answers["drain"].status_code == 200
        assert process.wait(timeout=30) == 0, (tmp_path / "stderr.txt").read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    store = Store.open(url_db, artifacts)
    assert store.predictions.count("toy") == 17  # 5 x 3, the one in flight and the one in the drain: flushed
    store.close()
    assert "Traceback" not in (tmp_path / "stderr.txt").read_text()


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP
    while True:
        try:
            if httpx.get(f"{url}/v2/health/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, "the service exited"
        assert time.monotonic() < deadline, "the service did not become ready"
        time.sleep(0.1)


def test_serve_starts_with_the_models_it_can_load_and_reports_the_others_not_ready(tmp_path: Path) -> None:
    """One good, one corrupt and one refused production model (made production around the check, as an older
    loopline did): `loopline serve` starts, serves the good one and names each other one's reason in one line."""
    home = tmp_path / "home"
    store = Store.open(f"sqlite:///{home / 'loopline.db'}", home / "artifacts")
    good = register(store)
    store.models.promote("toy", good.version)
    bundle = ModelBundle.from_bytes(store.artifacts.get_bytes(good.bundle_digest))
    for name, data in (("corrupt", bundle.to_bytes() + b" "), ("refused", refused_type_bundle(bundle))):
        store.models.promote(name, register_bytes(store, data, name).version)
    corrupt = store.models.production("corrupt")
    assert corrupt is not None
    store.artifacts.path(corrupt.bundle_digest).write_bytes(b"bit rot")
    store.close()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LOOPLINE_HOME": str(home)}
    env.pop("LOOPLINE_STORE_URL", None)
    with (tmp_path / "stderr.txt").open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "loopline.cli", "serve", "--port", str(port)], env=env, stdout=stderr, stderr=stderr
        )
    try:
        wait_ready(url, process)
        assert httpx.post(f"{url}/predict/toy", json={"x": 1.0, "n": 2, "group": "b"}).status_code == 200
        health = httpx.get(f"{url}/health").json()
        assert health["ready"] is True and health["models"] == {"toy": 1}
        assert set(health["not_ready"]) == {"corrupt", "refused"}
        assert "corrupt" in health["not_ready"]["corrupt"]["reason"]
        assert "not an estimator loopline trusts" in health["not_ready"]["refused"]["reason"]
        for name in ("corrupt", "refused"):
            reason = health["not_ready"][name]["reason"]
            answer = httpx.post(f"{url}/predict/{name}", json={"x": 1.0, "n": 2, "group": "b"})
            assert answer.status_code == 503 and reason in answer.json()["error"]
            ready = httpx.get(f"{url}/v2/models/{name}/ready")
            assert ready.status_code == 503 and ready.json() == {"name": name, "ready": False, "error": reason}
        assert httpx.get(f"{url}/v2/models/toy/ready").status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    logged = (tmp_path / "stderr.txt").read_text()
    assert "Traceback" not in logged
    lines = [line for line in logged.splitlines() if "could not be loaded" in line]
    assert len(lines) == 2 and all("; not ready: " in line for line in lines), logged


def test_serve_mounts_only_the_protocols_it_is_given(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Store.open(f"sqlite:///{home / 'loopline.db'}", home / "artifacts")
    store.models.promote("toy", register(store).version)
    store.close()
    env = {**os.environ, "LOOPLINE_HOME": str(home)}
    env.pop("LOOPLINE_STORE_URL", None)
    serve = [sys.executable, "-m", "loopline.cli", "serve", *CLI_GUARDS]
    refused = subprocess.run([*serve, "--protocol", "jsn"], env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "protocol 'jsn' is not registered. Did you mean 'json'?" in refused.stderr
    assert "listening" not in refused.stdout  # refused before anything started
    port = free_port()
    command = [*serve, "--port", str(port), "--protocol", "mlflow", "--protocol", "json"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not become ready"
            time.sleep(0.1)
        assert httpx.post(f"{url}/predict/toy", json={"x": 1.0, "n": 2, "group": "b"}).status_code == 200
        assert httpx.post(f"{url}/invocations", json={"inputs": [[1.0, 2, "b"]]}).status_code == 200
        oip = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}]}
        assert httpx.post(f"{url}/v2/models/toy/infer", json=oip).status_code == 404  # not mounted
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
