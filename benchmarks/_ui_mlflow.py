"""The peer of bench_ui's run list: MLflow's tracking server listing the same number of runs.

MLflow (pinned in bench_train.py, in its own virtualenv .bench/mlflow-venv: its pins clash with loopline's) logs
as many runs as the generated store holds through its own client (``MlflowClient.create_run`` + ``log_batch`` +
``set_terminated``: two params and a metric each) into a SQLite tracking store cached under ``.bench/ui``. Then
``mlflow server`` serves it, and its UI's own call, ``POST /ajax-api/2.0/mlflow/runs/search`` (the newest 50),
is timed over HTTP beside loopline's ``GET /api/runs`` (the newest 50) served by uvicorn from the generated store:
both from the same client, alternated, so both sides include HTTP and JSON.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import timed

ROOT = Path(".bench/ui")
PAUSE_S = 0.5
LOG_RUNS = """
import json, sys, time
import mlflow
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

db, runs = sys.argv[1], int(sys.argv[2])
client = MlflowClient(tracking_uri=f"sqlite:///{db}")
experiment = client.create_experiment("bench-ui")
start = int(time.time() * 1000) - runs * 60_000
for i in range(runs):
    at = start + i * 60_000
    run = client.create_run(experiment, start_time=at, run_name=f"run-{i}")
    params = [Param("start", "2013-01-01"), Param("end", f"2013-{1 + i % 12:02d}-28")]
    client.log_batch(run.info.run_id, metrics=[Metric("roc_auc", 0.8 + (i % 100) / 1000, at, 0)], params=params)
    client.set_terminated(run.info.run_id, "FAILED" if i % 12 == 0 else "FINISHED", end_time=at + 30_000)
print("@@" + json.dumps({"experiment": experiment, "version": mlflow.__version__}), flush=True)
"""
SERVE_LOOPLINE = """
import sys, uvicorn
from loopline.store import Store
from loopline.ui import create_ui_app
store = Store.open(sys.argv[1], sys.argv[2])
uvicorn.run(create_ui_app(store), host="127.0.0.1", port=int(sys.argv[3]), log_level="warning")
"""


def mlflow_store(python: str, runs: int) -> tuple[Path, dict[str, Any]]:
    """The MLflow tracking database with ``runs`` runs (logged once, cached); its experiment id and version."""
    folder = ROOT / f"mlflow-r{runs}"
    meta = folder / "meta.json"
    if not meta.exists():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "mlflow.db").unlink(missing_ok=True)
        print(f"logging {runs:,} runs through MLflow's client into {folder} ...", flush=True)
        started = time.perf_counter()
        out = subprocess.run(
            [python, "-c", LOG_RUNS, str(folder / "mlflow.db"), str(runs)],
            capture_output=True, text=True, check=True, env=_quiet(),
        )  # fmt: skip
        answer = json.loads(next(line[2:] for line in out.stdout.splitlines() if line.startswith("@@")))
        answer["log_s"] = time.perf_counter() - started
        meta.write_text(json.dumps(answer))
    return folder / "mlflow.db", json.loads(meta.read_text())


def compare_runs(python: str, store_url: str, artifacts: str, runs: int, repeats: int) -> dict[str, Any]:
    """Alternated client-side times (s) of MLflow's runs search and loopline's ``/api/runs``, after 2 warm-ups."""
    import httpx

    db, meta = mlflow_store(python, runs)
    ports = _free_port(), _free_port()
    mlflow_bin = str(Path(python).parent / "mlflow")
    servers = [
        subprocess.Popen(
            [mlflow_bin, "server", "--backend-store-uri", f"sqlite:///{db.resolve()}", "--host", "127.0.0.1",
             "--port", str(ports[0]), "--workers", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_quiet(),
        ),
        subprocess.Popen(
            [sys.executable, "-c", SERVE_LOOPLINE, store_url, artifacts, str(ports[1])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ),
    ]  # fmt: skip
    try:
        with httpx.Client(timeout=120) as client:
            search = {
                "experiment_ids": [meta["experiment"]],
                "max_results": 50,
                "order_by": ["attributes.start_time DESC"],
            }
            base = [f"http://127.0.0.1:{port}" for port in ports]
            _wait(client, f"{base[0]}/health")
            _wait(client, f"{base[1]}/api/runs")

            def mlflow_call() -> None:
                answer = client.post(f"{base[0]}/ajax-api/2.0/mlflow/runs/search", json=search)
                answer.raise_for_status()
                assert len(answer.json()["runs"]) == 50

            def loopline_call() -> None:
                client.get(f"{base[1]}/api/runs").raise_for_status()

            times: dict[str, list[float]] = {"mlflow_runs_search_s": [], "loopline_api_runs_s": []}
            for _ in range(2):
                mlflow_call()
                loopline_call()
            for _ in range(repeats):  # a pause before each call: neither server is still busy with the other's
                time.sleep(PAUSE_S)
                times["mlflow_runs_search_s"].append(timed(mlflow_call))
                time.sleep(PAUSE_S)
                times["loopline_api_runs_s"].append(timed(loopline_call))
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
    return {"times": times, "mlflow": meta["version"], "mlflow_log_s": meta.get("log_s")}


def _wait(client: Any, url: str, seconds: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if client.get(url).status_code == 200:
                return
        except httpx.TransportError:  # not listening yet
            pass
        time.sleep(0.5)
    raise SystemExit(f"bench_ui: {url} did not answer within {seconds:.0f} s")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _quiet() -> dict[str, str]:
    import os

    # no job runner: MLflow 3's server otherwise starts ~8 huey consumer processes whose start-up (an MLflow import
    # each) eats both cores during the timing; searching runs does not use them
    quiet = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return {**os.environ, **quiet}
