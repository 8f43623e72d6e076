"""Serving: loopline's prediction service vs ``mlflow models serve`` and a hand-written FastAPI endpoint.

The model: HistGradientBoosting (loopline's resolved defaults: 200 rounds at most, early stopping on an
internal 10% split, seed 0) behind a 20-column mixed-type preprocessing pipeline — 12 numeric columns with
~5% missing values, 5 string categoricals (3 to 25 levels), 3 booleans — on 50,000 training rows (plus
10,000 validation rows) of seeded synthetic data with a binary target, made once under .bench/serve.
- loopline: ``train_candidate`` with a transform chain (median imputation of the numbers) and the built-in
  preprocessor (standard scaling, one-hot), registered in a SQLite store and promoted; served by
  ``loopline serve`` (one process, its defaults) on a copy of that store made for the run (the prediction
  log it writes is part of its work), single-record JSON on ``/predict/NAME``.
- The peers serve the equivalent scikit-learn ``Pipeline``, as their users do: ColumnTransformer (median
  imputation + StandardScaler on the numbers, most-frequent imputation + OneHotEncoder on the categoricals,
  the booleans passed through) then ``HistGradientBoostingClassifier`` with the same parameters and seed,
  fitted on the same rows. Equivalent, not byte-identical: their validation AUCs are printed side by side.
  - MLflow (pinned below), in its own virtualenv under .bench/mlflow-venv (its pins clash with loopline's):
    the pipeline logged with ``mlflow.sklearn.log_model`` (signature inferred, ``pyfunc_predict_fn=
    "predict_proba"``), then ``mlflow models serve -m <model> --env-manager local`` with its default worker
    count (one uvicorn worker) and thread settings; ``{"dataframe_records": [record]}`` on ``/invocations``.
    ``mlflow_1thread``: the same server with OMP_NUM_THREADS=MKL_NUM_THREADS=OPENBLAS_NUM_THREADS=1 (loopline
    predicts on one thread; a one-row HistGradientBoosting prediction gains nothing from a thread pool).
  - FastAPI: a minimal app in loopline's virtualenv (uvicorn, one worker): ``async def`` reading the JSON
    record into a one-row pandas DataFrame, ``pipeline.predict_proba``; OpenMP threads left at their default
    (one per core). ``fastapi_1thread``: the same app with one OpenMP/MKL/OpenBLAS thread.
  Each peer is given its best thread setting: a headline ratio is taken against the STRONGER variant of that
  peer at that concurrency, chosen by median (the higher req/s for a req/s ratio, the lower p99 for a p99
  ratio), and named in the output; every variant's ratios are printed too.
  Every server gets the caller's environment less OMP/MKL/OPENBLAS_NUM_THREADS, LOOPLINE_STORE_URL, the
  loopline tokens and MLFLOW_MODELS_WORKERS.
The load generator (benchmarks/_loadgen.py) is one separate process, the same for every contender, on the
same machine (it shares the cores with the server under test): N persistent HTTP/1.1 keep-alive connections
(N = 1, 8, 32), each sending single-record JSON POSTs back to back for 10 s, drawn in turn from 1,000
validation records; per-request latency. Contenders alternate (loopline, MLflow, MLflow 1 thread, FastAPI,
FastAPI 1 thread, repeat), each warmed up first at that concurrency; 5 rounds; min / median / max over the
rounds of req/s and p99 for every contender at every concurrency; ratios are paired per round (loopline's run
against the peer's run of the same round), quoted as their median, and each goal is judged on its worst round
(the p99 goal also on the worst concurrency, named). Before the load, each peer's P(1) on 50
bodies is compared with loopline's. The generator's own ceiling is measured once on loopline's
``/v2/health/live``. Server CPU time per request (process tree, user + system) and the generator's are
reported alongside.

Soak: loopline at concurrency 8 for 5 minutes; RSS (VmRSS) of the server after a warm-up and at the end.
Batch (1M rows vs calling the compiled predictor directly): benchmarks/_serve_batch.py's ``measure_batch``
when that module exists, otherwise not measured (null); ``batch_vs_floor`` = floor time / loopline time
(bigger is better: "within 1.3x of the floor" is >= 0.769). It runs after every server is stopped.

    python benchmarks/bench_serve.py [--quick] [--soak-s 300]

``--quick``: 2 s per measurement, 1 round, a 10 s soak; MLflow only if its virtualenv already exists
(--quick never creates it: no network). A full run: 5 contenders x 3 concurrencies x (3 s warm-up + 5 x 10 s)
+ a 5-minute soak = about 19 minutes of load, plus start-ups, model building on first use and the batch part.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from importlib.metadata import version
from math import inf, nan
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import final_line, goal, machine, paired_ratios, spread_table, summary
from bench_train import MLFLOW_VENV, MLFLOW_VERSION, mlflow_python

ROOT = Path(".bench/serve")
MODELS = ROOT / "models-v1"
"""The data and every contender's model, made once (bump the suffix when the recipe changes)."""
LOADGEN = Path(__file__).parent / "_loadgen.py"
VENV_BIN = Path(sys.executable).parent
NUMERIC = [f"num_{i:02d}" for i in range(12)]
CATEGORICAL = {"region": 8, "channel": 3, "plan": 5, "device": 12, "segment": 25}
BOOLEAN = ["is_member", "has_coupon", "weekend"]
TRAIN_ROWS, VALID_ROWS = 50_000, 10_000
BODIES = 1_000
MODEL_NAME = "bench"
CONCURRENCY = (1, 8, 32)
CONTENDERS = ("loopline", "mlflow", "mlflow_1thread", "fastapi", "fastapi_1thread")
PEERS = {"mlflow": ("mlflow", "mlflow_1thread"), "fastapi": ("fastapi", "fastapi_1thread")}
"""Each peer and its variants: a headline ratio is taken against the stronger variant at that concurrency."""
VARIANTS = {
    "mlflow": "mlflow (default threads)",
    "mlflow_1thread": "mlflow (1 OpenMP thread)",
    "fastapi": "fastapi (default threads)",
    "fastapi_1thread": "fastapi (1 OpenMP thread)",
}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
"""The environment of a ``_1thread`` variant: one thread for OpenMP (HistGradientBoosting) and any BLAS."""
ROUNDS, QUICK_ROUNDS = 5, 1
DURATION_S, QUICK_DURATION_S = 10.0, 2.0
WARM_S, QUICK_WARM_S = 3.0, 1.0
IMPUTE_NUMBERS = [{"type": "impute", "columns": NUMERIC, "strategy": "median"}]

FASTAPI_APP = """
import json, sys
import joblib, pandas as pd, uvicorn
from fastapi import FastAPI, Request

pipeline = joblib.load(sys.argv[1])
NUMBERS = {name: "float64" for name in json.loads(sys.argv[2])}  # a JSON null becomes NaN
app = FastAPI()

@app.post("/predict")
async def predict(request: Request):
    frame = pd.DataFrame([await request.json()]).astype(NUMBERS)
    probability = pipeline.predict_proba(frame)[0]
    return {"prediction": int(probability.argmax()), "probability": float(probability[1])}

@app.get("/health")
async def health():
    return {"ok": True}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning", access_log=False)
"""

MLFLOW_LOG = """
import json, logging, sys, warnings
warnings.filterwarnings("ignore")
logging.getLogger("mlflow").setLevel(logging.ERROR)
import joblib, mlflow, mlflow.sklearn, pandas as pd, sklearn
from mlflow.models import infer_signature
ARGS = json.loads(sys.argv[1])
pipeline = joblib.load(ARGS["model"])
sample = pd.DataFrame(ARGS["sample"]).astype({name: "float64" for name in ARGS["numeric"]})
mlflow.set_tracking_uri(f"sqlite:///{ARGS['home']}/mlflow.db")
mlflow.set_experiment(experiment_id=mlflow.create_experiment("serve", artifact_location=f"{ARGS['home']}/artifacts"))
# MLflow 3 saves scikit-learn models with skops; the types it does not trust by default:
TRUSTED = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor", "numpy.dtype"]
with mlflow.start_run():
    info = mlflow.sklearn.log_model(
        pipeline, name="model", signature=infer_signature(sample, pipeline.predict_proba(sample)),
        pyfunc_predict_fn="predict_proba", pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        skops_trusted_types=TRUSTED,
    )
path = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=ARGS["out"])
print(json.dumps({"uri": info.model_uri, "path": path, "mlflow": mlflow.__version__}))
"""


# -- data and models -----------------------------------------------------------------------------------------


def make_columns(rows: int, seed: int) -> dict[str, Any]:
    """Seeded mixed-type columns and a binary label (numpy arrays; NaN marks a missing number)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (rows, len(NUMERIC)))
    cats = {name: rng.integers(0, levels, rows) for name, levels in CATEGORICAL.items()}
    flags = {name: rng.random(rows) < p for name, p in zip(BOOLEAN, (0.3, 0.15, 0.28), strict=True)}
    logit = (
        0.9 * x[:, 0]
        - 0.7 * x[:, 1]
        + 0.5 * x[:, 2] * x[:, 3]
        + 0.4 * np.sin(2 * x[:, 4])
        + 0.3 * (cats["region"] % 3)
        - 0.5 * (cats["channel"] == 1)
        + 0.04 * cats["segment"]
        - 0.6 * flags["has_coupon"]
        + 0.4 * flags["is_member"] * (x[:, 5] > 0)
        - 0.8
    )
    label = (logit + rng.logistic(0, 1, rows) > 0).astype(np.int64)
    x[rng.random(x.shape) < 0.05] = np.nan
    columns: dict[str, Any] = {name: x[:, i] for i, name in enumerate(NUMERIC)}
    columns.update({name: np.array([f"{name}-{v:02d}" for v in cats[name]], dtype=object) for name in CATEGORICAL})
    columns.update(flags)
    columns["label"] = label
    return columns


def records(columns: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """The first ``count`` rows as JSON records (NaN -> null)."""
    import math

    out = []
    for i in range(count):
        record: dict[str, Any] = {}
        for name in [*NUMERIC, *CATEGORICAL, *BOOLEAN]:
            value = columns[name][i].item() if hasattr(columns[name][i], "item") else columns[name][i]
            record[name] = None if isinstance(value, float) and math.isnan(value) else value
        out.append(record)
    return out


def sklearn_pipeline(params: dict[str, Any]) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numbers = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categories = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    prep = ColumnTransformer(
        [("num", numbers, NUMERIC), ("cat", categories, list(CATEGORICAL)), ("flags", "passthrough", BOOLEAN)]
    )
    return Pipeline([("prep", prep), ("model", HistGradientBoostingClassifier(**params))])


def build_models(mlflow: str | None) -> dict[str, Any]:
    """Data, bodies and every contender's model under MODELS (made once); returns meta.json's content."""
    meta_path = MODELS / "meta.json"
    if not meta_path.exists():
        _build_common()
    meta: dict[str, Any] = json.loads(meta_path.read_text())
    if mlflow is not None and "mlflow_model" not in meta:
        print("logging the scikit-learn pipeline with mlflow.sklearn.log_model ...", flush=True)
        home = MODELS / "mlflow-tracking"
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        sample = records(make_columns(200, seed=2), 200)
        args = {
            "model": str(MODELS / "pipeline.joblib"),
            "sample": sample,
            "numeric": NUMERIC,
            "home": str(home.resolve()),
            "out": str((MODELS / "mlflow-model").resolve()),
        }
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
        out = subprocess.run([mlflow, "-c", MLFLOW_LOG, json.dumps(args)], capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise SystemExit(f"mlflow.sklearn.log_model failed:\n{out.stderr[-3000:]}")
        logged = json.loads(out.stdout.strip().splitlines()[-1])
        meta["mlflow_model"], meta["mlflow_uri"] = logged["path"], logged["uri"]
        meta_path.write_text(json.dumps(meta, indent=1))
    return meta


def _build_common() -> None:
    import joblib
    import pandas as pd
    import polars as pl
    from sklearn.metrics import roc_auc_score

    from loopline.store import Store
    from loopline.train import ESTIMATORS, TrainSpec, train_candidate

    print(f"making the data and the models under {MODELS} (once) ...", flush=True)
    shutil.rmtree(MODELS, ignore_errors=True)
    MODELS.mkdir(parents=True)
    train_cols = make_columns(TRAIN_ROWS, seed=0)
    valid_cols = make_columns(VALID_ROWS, seed=1)
    train, valid = pl.DataFrame(train_cols), pl.DataFrame(valid_cols)
    params = ESTIMATORS.get("hist_gradient_boosting").resolve_params("binary", None, 0)

    started = time.perf_counter()
    result = train_candidate(
        train,
        valid,
        TrainSpec(
            target="label",
            numeric=[*NUMERIC, *BOOLEAN],
            categorical=list(CATEGORICAL),
            estimator="hist_gradient_boosting",
            transforms=IMPUTE_NUMBERS,
            seed=0,
        ),
    )
    loopline_fit_s = time.perf_counter() - started
    home = MODELS / "loopline-home"
    store = Store.open(f"sqlite:///{(home / 'loopline.db').resolve()}", (home / "artifacts").resolve())
    try:
        registered = store.models.register(
            name=MODEL_NAME,
            algorithm="hist_gradient_boosting",
            bundle_digest=store.artifacts.put_bytes(result.bundle.to_bytes()),
            reference_digest=store.artifacts.put_table(train.drop("label").head(5000)),
            metrics=result.metrics,
            params=result.params,
            config={"features": {"numeric": [*NUMERIC, *BOOLEAN], "categorical": list(CATEGORICAL)}},
            input_schema=result.bundle.input_schema,
            data_fingerprint="bench-serve",
            run_id=None,
            timings=result.timings,
        )
        store.models.promote(MODEL_NAME, registered.version)
    finally:
        store.close()
    proba = result.bundle.predict_table(valid)["probability"][:, 1]
    loopline_auc = float(roc_auc_score(valid_cols["label"], proba))

    frame = pd.DataFrame({k: v for k, v in train_cols.items() if k != "label"})
    pipeline = sklearn_pipeline(params)
    started = time.perf_counter()
    pipeline.fit(frame, train_cols["label"])
    sklearn_fit_s = time.perf_counter() - started
    valid_frame = pd.DataFrame({k: v for k, v in valid_cols.items() if k != "label"})
    sklearn_auc = float(roc_auc_score(valid_cols["label"], pipeline.predict_proba(valid_frame)[:, 1]))
    joblib.dump(pipeline, MODELS / "pipeline.joblib")

    bodies = records(valid_cols, BODIES)
    (MODELS / "bodies.jsonl").write_text("".join(json.dumps(r) + "\n" for r in bodies))
    wrapped = "".join(json.dumps({"dataframe_records": [r]}) + "\n" for r in bodies)
    (MODELS / "bodies-mlflow.jsonl").write_text(wrapped)
    meta = {
        "params": params,
        "loopline_valid_auc": loopline_auc,
        "sklearn_valid_auc": sklearn_auc,
        "loopline_rounds": int(result.bundle.estimator.n_iter_),
        "sklearn_rounds": int(pipeline[-1].n_iter_),
        "loopline_fit_s": loopline_fit_s,
        "sklearn_fit_s": sklearn_fit_s,
        "features_loopline": int(result.bundle.estimator.n_features_in_),
        "features_sklearn": int(pipeline[-1].n_features_in_),
    }
    (MODELS / "meta.json").write_text(json.dumps(meta, indent=1))


# -- servers -------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), b""


class Server:
    """One contender's server process (its own process group), its port, its body format and its logs."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], path: str, bodies: Path, run_dir: Path):
        self.name, self.cmd, self.env, self.path, self.bodies = name, cmd, env, path, bodies
        self.port = 0
        self.log = run_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.error: str | None = None

    def start(self, port: int, ready_path: str, timeout: float = 120.0) -> bool:
        self.port = port
        cmd = [part.replace("{port}", str(port)) for part in self.cmd]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(OSError):
                if get(port, ready_path)[0] == 200:
                    return True
            time.sleep(0.2)
        tail = self.log.read_text(errors="replace")[-2000:]
        self.error = f"did not start ({'exited' if self.proc.poll() is not None else 'timed out'}):\n{tail}"
        self.stop()
        return False

    def pids(self) -> list[int]:
        """The server process and its children (MLflow's CLI runs uvicorn as a child)."""
        import psutil

        if self.proc is None or self.proc.poll() is not None:
            return []
        root = psutil.Process(self.proc.pid)
        with contextlib.suppress(psutil.Error):
            return [root.pid, *(p.pid for p in root.children(recursive=True))]
        return [root.pid]

    def cpu_s(self) -> float:
        """User + system CPU seconds of the server's process tree so far."""
        import psutil

        total = 0.0
        for pid in self.pids():
            with contextlib.suppress(psutil.Error):
                times = psutil.Process(pid).cpu_times()
                total += times.user + times.system
        return total

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after 10 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def make_servers(run_dir: Path, meta: dict[str, Any], mlflow: str | None) -> dict[str, Server]:
    # the caller's environment, less what would change a contender's setup (a store elsewhere, a token
    # the load generator does not send, MLflow's worker count, a thread count: every contender gets its default)
    unset = (
        "MLFLOW_MODELS_WORKERS",
        "LOOPLINE_STORE_URL",
        "LOOPLINE_TOKEN",
        "LOOPLINE_PREDICT_TOKEN",
        *ONE_THREAD,
    )
    env = {k: v for k, v in os.environ.items() if k not in unset}
    home = run_dir / "loopline-home"
    shutil.copytree(MODELS / "loopline-home", home)  # a fresh prediction log for every run
    servers = {
        "loopline": Server(
            "loopline",
            [str(VENV_BIN / "loopline"), "serve", "--host", "127.0.0.1", "--port", "{port}", "--home", str(home)],
            {**env, "LOOPLINE_HOME": str(home)},
            f"/predict/{MODEL_NAME}",
            MODELS / "bodies.jsonl",
            run_dir,
        ),
    }
    if mlflow is not None:
        mlflow_cli = str(Path(mlflow).parent / "mlflow")
        mlflow_env = {**env, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
        mlflow_env["PATH"] = f"{Path(mlflow).parent}:{env.get('PATH', '')}"  # its uvicorn, not ours
        cmd = [mlflow_cli, "models", "serve", "-m", meta["mlflow_model"], "--env-manager", "local"]
        # as served by default, and with one OpenMP/BLAS thread (its uvicorn worker inherits the environment)
        for name, extra in (("mlflow", {}), ("mlflow_1thread", ONE_THREAD)):
            servers[name] = Server(
                name,
                [*cmd, "-h", "127.0.0.1", "-p", "{port}"],
                {**mlflow_env, **extra},
                "/invocations",
                MODELS / "bodies-mlflow.jsonl",
                run_dir,
            )
    app = run_dir / "fastapi_app.py"
    app.write_text(FASTAPI_APP)
    # the hand-written endpoint as written (OpenMP's default: a thread per core), and the same app with
    # OMP_NUM_THREADS=1, a stronger peer that shows what controlling the thread pool alone is worth
    for name, extra in (("fastapi", {}), ("fastapi_1thread", ONE_THREAD)):
        servers[name] = Server(
            name,
            [sys.executable, str(app), str(MODELS / "pipeline.joblib"), json.dumps(NUMERIC), "{port}"],
            {**env, **extra},
            "/predict",
            MODELS / "bodies.jsonl",
            run_dir,
        )
    return servers


READY = {
    "loopline": "/ping",
    "mlflow": "/ping",
    "mlflow_1thread": "/ping",
    "fastapi": "/health",
    "fastapi_1thread": "/health",
}


# -- load ----------------------------------------------------------------------------------------------------


def post(port: int, path: str, body: bytes) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def positive_probability(name: str, answer: Any) -> float:
    """P(label = 1) from each contender's answer to one record."""
    if name == "loopline":
        return float(answer["predictions"][0]["probabilities"]["1"])
    if name.startswith("mlflow"):
        return float(answer["predictions"][0][1])  # pyfunc_predict_fn="predict_proba": [[P(0), P(1)]]
    return float(answer["probability"])


def agreement(servers: dict[str, Server], count: int = 50) -> dict[str, float]:
    """The largest |P(1)| difference from loopline's over the first ``count`` bodies, per peer."""
    answers: dict[str, list[float]] = {}
    for name, server in servers.items():
        bodies = server.bodies.read_bytes().splitlines()[:count]
        answers[name] = [positive_probability(name, post(server.port, server.path, body)) for body in bodies]
    reference = answers["loopline"]
    return {
        name: max(abs(a - b) for a, b in zip(values, reference, strict=True))
        for name, values in answers.items()
        if name != "loopline"
    }


def load(server: Server, concurrency: int, duration: float, path: str | None = None) -> dict[str, Any]:
    """One load-generator run against ``server``; adds the server's CPU seconds per successful request."""
    args = {
        "port": server.port,
        "path": path or server.path,
        "bodies": None if path else str(server.bodies),
        "concurrency": concurrency,
        "duration": duration,
        "max_requests": int(duration * 50_000),
    }
    cpu = server.cpu_s()
    out = subprocess.run(
        [sys.executable, str(LOADGEN), json.dumps(args)], capture_output=True, text=True, timeout=duration + 90
    )
    if out.returncode != 0:
        raise SystemExit(f"the load generator failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["server_cpu_ms"] = (server.cpu_s() - cpu) * 1000 / max(result["ok"], 1)
    return result


def measure(servers: dict[str, Server], rounds: int, duration: float, warm_s: float) -> dict[str, Any]:
    """Per concurrency: warm every contender up, then alternate them ``rounds`` times."""
    runs: dict[str, Any] = {}
    for concurrency in CONCURRENCY:
        for server in servers.values():
            load(server, concurrency, warm_s)
        for _ in range(rounds):
            for name, server in servers.items():
                runs.setdefault(f"{name}_c{concurrency}", []).append(load(server, concurrency, duration))
    return runs


def soak(server: Server, seconds: float, warm_s: float) -> dict[str, Any]:
    """loopline at concurrency 8 for ``seconds``: VmRSS after a warm-up, every 5 s, and at the end."""
    pid = server.pids()[0]
    load(server, 8, warm_s)
    before = rss_mb(pid)
    args = {"port": server.port, "path": server.path, "bodies": str(server.bodies), "concurrency": 8}
    args |= {"duration": seconds, "max_requests": int(seconds * 50_000)}
    samples = []
    with subprocess.Popen([sys.executable, str(LOADGEN), json.dumps(args)], stdout=subprocess.PIPE, text=True) as gen:
        deadline = time.monotonic() + seconds + 90
        while gen.poll() is None and time.monotonic() < deadline:
            time.sleep(min(5.0, max(seconds / 10, 0.5)))
            samples.append(rss_mb(pid))
        if gen.poll() is None:
            gen.kill()
            raise SystemExit("the soak's load generator did not stop")
        result: dict[str, Any] = json.loads((gen.stdout.read() if gen.stdout else "").strip().splitlines()[-1])
    after = rss_mb(pid)
    depth = None
    with contextlib.suppress(OSError, ValueError):
        for line in get(server.port, "/metrics")[1].decode().splitlines():
            if line.startswith("loopline_prediction_log_queue_depth"):
                depth = float(line.split()[-1])
    return {
        "seconds": seconds,
        "rss_after_warmup_mb": before,
        "rss_end_mb": after,
        "rss_max_mb": max([after, *samples]),
        "rss_ratio": after / before,
        "requests": result["requests"],
        "errors": result["errors"],
        "error_samples": result["error_samples"],
        "rps": result["rps"],
        "p99_ms": result["p99_ms"],
        "prediction_log_queue_depth_end": depth,
    }


# -- batch ---------------------------------------------------------------------------------------------------


def batch(quick: bool) -> dict[str, Any] | None:
    """benchmarks/_serve_batch.py's figures, when that module exists."""
    if importlib.util.find_spec("_serve_batch") is None:
        return None
    import _serve_batch

    try:
        result: dict[str, Any] = _serve_batch.measure_batch(quick)
    except Exception as exc:  # the serving figures are still reported
        print(f"batch FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return {"error": f"{type(exc).__name__}: {exc}"}
    return result


# -- report --------------------------------------------------------------------------------------------------


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r[key] is not None]
    return statistics.median(values) if values else None


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, so the servers are stopped by the same ``finally`` as Ctrl-C."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs, a smoke test")
    parser.add_argument("--soak-s", type=float, default=None, help="soak duration (default 300; --quick: 10)")
    cli = parser.parse_args()
    duration, rounds, warm_s = (
        (QUICK_DURATION_S, QUICK_ROUNDS, QUICK_WARM_S) if cli.quick else (DURATION_S, ROUNDS, WARM_S)
    )
    soak_s = cli.soak_s if cli.soak_s is not None else (10.0 if cli.quick else 300.0)

    mlflow = mlflow_python(create=not cli.quick)
    meta = build_models(mlflow)
    ROOT.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=ROOT))
    servers = make_servers(run_dir, meta, mlflow)
    planned = len(CONCURRENCY) * len(servers) * (warm_s + rounds * duration) + duration + warm_s + soak_s
    print(
        f"{len(servers)} contenders x {len(CONCURRENCY)} concurrencies x ({warm_s:g} s warm-up + {rounds} rounds x"
        f" {duration:g} s) + the soak ({soak_s:g} s): about {planned / 60:.1f} minutes of load, plus start-ups"
        " and the batch part",
        flush=True,
    )
    failed: dict[str, str] = {}
    started = time.perf_counter()
    try:
        with stop_on_sigterm():
            for name, server in list(servers.items()):
                if not server.start(free_port(), READY[name]):
                    failed[name] = server.error or "did not start"
                    print(f"{name}: {failed[name]}", file=sys.stderr)
                    del servers[name]
            if "loopline" not in servers:
                raise SystemExit(f"loopline serve did not start:\n{failed['loopline']}")
            agree = agreement(servers)
            ceiling = load(servers["loopline"], 8, duration, path="/v2/health/live")
            runs = measure(servers, rounds, duration, warm_s)
            soaked = soak(servers["loopline"], soak_s, warm_s)
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    load_s = time.perf_counter() - started
    batched = batch(cli.quick)

    report(cli, meta, mlflow, failed, agree, ceiling, runs, soaked, batched, duration, rounds, load_s)


def report(
    cli: argparse.Namespace,
    meta: dict[str, Any],
    mlflow: str | None,
    failed: dict[str, str],
    agree: dict[str, float],
    ceiling: dict[str, Any],
    runs: dict[str, Any],
    soaked: dict[str, Any],
    batched: dict[str, Any] | None,
    duration: float,
    rounds: int,
    load_s: float,
) -> None:
    import fastapi
    import sklearn
    import uvicorn

    describe(meta, mlflow, failed, agree, ceiling, duration, rounds)
    medians, spread, errors = contender_table(runs)
    ratios, samples, stronger = peer_ratios(runs)
    print_ratios(ratios, samples, stronger)

    print(
        f"soak: loopline at concurrency 8 for {soaked['seconds']:g} s: {soaked['requests']:,} requests,"
        f" {soaked['errors']} errors, {soaked['rps']:.0f} req/s, p99 {soaked['p99_ms']:.1f} ms; VmRSS"
        f" {soaked['rss_after_warmup_mb']:.1f} MB after warm-up -> {soaked['rss_end_mb']:.1f} MB at the end"
        f" (max {soaked['rss_max_mb']:.1f}), ratio {soaked['rss_ratio']:.3f}; prediction log queue depth at the end:"
        f" {soaked['prediction_log_queue_depth_end']}"
    )
    ratios["rss_end_vs_warmup"] = soaked["rss_ratio"]
    batch_samples: list[float] = []
    if batched is None:
        print("batch: not measured (benchmarks/_serve_batch.py does not exist yet)")
        ratios["batch_vs_floor"] = None
    else:
        # floor time / loopline time (bigger is better; "within 1.3x of the floor" is >= 1 / 1.3)
        ratios["batch_vs_floor"] = batched.get("ratios", {}).get("batch_vs_floor")
        batch_samples = batched.get("ratio_samples", {}).get("batch_vs_floor", [])
        times = batched.get("median", {})
        print(
            f"batch (benchmarks/_serve_batch.py, {batched.get('sizes', {}).get('rows', '?'):,} rows): loopline"
            f" {times.get('loopline_s', float('nan')):.3f} s vs the compiled predictor called directly (the floor)"
            f" {times.get('floor_s', float('nan')):.3f} s (medians); outputs equal: {batched.get('outputs_equal')}"
        )
    goals = serve_goals(samples, stronger, soaked["rss_ratio"], batch_samples)
    print_goals(goals)
    print(f"errors: {sum(errors.values()) + soaked['errors']} in all")

    final_line(
        "serve",
        sizes={
            "train_rows": TRAIN_ROWS,
            "valid_rows": VALID_ROWS,
            "columns": len(NUMERIC) + len(CATEGORICAL) + len(BOOLEAN),
            "request_bodies": BODIES,
            "concurrency": list(CONCURRENCY),
            "duration_s": duration,
            "rounds": rounds,
            "soak_s": soaked["seconds"],
            "load_phase_s": round(load_s, 1),
            "quick": cli.quick,
        },
        machine=machine(),
        versions={
            "loopline": version("loopline"),
            "mlflow": MLFLOW_VERSION if mlflow else None,
            "scikit-learn": sklearn.__version__,
            "fastapi": fastapi.__version__,
            "uvicorn": uvicorn.__version__,
        },
        labels=labels(duration),
        models={k: meta[k] for k in ("loopline_valid_auc", "sklearn_valid_auc", "loopline_rounds", "sklearn_rounds")},
        failed=failed or None,
        max_probability_difference_vs_loopline=agree,
        generator_ceiling_rps=ceiling["rps"],
        median=medians,
        spread=spread | {name: summary(values) for name, values in samples.items()},
        errors=errors,
        soak=soaked,
        batch=batched,
        ratios=ratios,
        ratio_samples=samples,
        stronger_variant=stronger,
        goals=goals,
        rps_vs_mlflow_c8=ratios.get("rps_vs_mlflow_c8"),
        rps_vs_fastapi_c8=ratios.get("rps_vs_fastapi_c8"),
        p99_vs_mlflow_c8=ratios.get("p99_vs_mlflow_c8"),
        batch_vs_floor=ratios["batch_vs_floor"],
    )


def describe(
    meta: dict[str, Any],
    mlflow: str | None,
    failed: dict[str, str],
    agree: dict[str, float],
    ceiling: dict[str, Any],
    duration: float,
    rounds: int,
) -> None:
    """The model, the load and the contenders, in words."""
    print(
        f"model: HistGradientBoosting {meta['params']} behind a 20-column pipeline (12 numeric with ~5% missing,"
        f" 5 categorical, 3 boolean); {TRAIN_ROWS:,} training rows"
    )
    print(
        f"validation AUC on {VALID_ROWS:,} rows: loopline {meta['loopline_valid_auc']:.4f}"
        f" ({meta['loopline_rounds']} rounds, {meta['features_loopline']} features) vs scikit-learn Pipeline"
        f" {meta['sklearn_valid_auc']:.4f} ({meta['sklearn_rounds']} rounds, {meta['features_sklearn']} features)"
        " — equivalent models, not byte-identical; the peers serve the scikit-learn Pipeline"
    )
    for name, diff in agree.items():
        print(f"{name} vs loopline on the first 50 request bodies: max |P(1) difference| {diff:.2e}")
    print(
        f"load: one generator process on the same machine ({os.cpu_count()} CPUs shared with the server), keep-alive"
        f" HTTP/1.1, single-record JSON POSTs back to back, {duration:g} s per run, {rounds} alternating round(s)"
        " after a warm-up at each concurrency; min / median / max over the rounds"
    )
    print(
        f"generator ceiling (loopline GET /v2/health/live, concurrency 8): {ceiling['rps']:,.0f} req/s,"
        f" p50 {ceiling['p50_ms']:.2f} ms, the generator's CPU {ceiling['generator_cpu_ms']:.3f} ms per request"
    )
    if mlflow is None:
        print(f"MLflow skipped: {MLFLOW_VENV} does not exist yet (--quick never creates it; run without --quick)")
    else:
        print(
            f"MLflow {MLFLOW_VERSION} from {MLFLOW_VENV} (its own virtualenv): mlflow models serve --env-manager"
            " local, its default worker count (1 uvicorn worker); mlflow: its default thread settings;"
            " mlflow_1thread: the same with OMP_NUM_THREADS=MKL_NUM_THREADS=OPENBLAS_NUM_THREADS=1"
        )
    print(
        "FastAPI: a hand-written async endpoint (one-row pandas DataFrame -> Pipeline.predict_proba), 1 uvicorn"
        " worker; fastapi: OpenMP threads at their default; fastapi_1thread: the same app with"
        " OMP_NUM_THREADS=MKL_NUM_THREADS=OPENBLAS_NUM_THREADS=1"
    )
    for name, error in failed.items():
        print(f"{name} FAILED to start: {error.splitlines()[0]}")


def contender_table(runs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, int]]:
    """Print min / median / max of req/s and p99 per contender and concurrency; (medians, spread, errors)."""
    print(
        f"{'contender':<16}{'conc':>5}{'req/s min':>11}{'median':>9}{'max':>9}{'p50 ms':>9}{'p99 ms min':>12}"
        f"{'median':>9}{'max':>9}{'errors':>8}{'server CPU ms/req':>19}{'gen. CPU ms/req':>17}"
    )
    medians: dict[str, Any] = {}
    spread: dict[str, Any] = {}
    errors: dict[str, int] = {}
    for concurrency in CONCURRENCY:
        for name in CONTENDERS:
            key = f"{name}_c{concurrency}"
            samples = runs.get(key)
            if not samples:
                continue
            for figure in ("rps", "p50_ms", "p99_ms"):
                values = [r[figure] for r in samples if r[figure] is not None]
                spread[f"{key}_{figure}"] = summary(values) if values else None
                medians[f"{key}_{figure}"] = statistics.median(values) if values else None
            medians[f"{key}_cpu_ms_per_req"] = _median(samples, "server_cpu_ms")
            medians[f"{key}_generator_cpu_ms_per_req"] = _median(samples, "generator_cpu_ms")
            errors[key] = sum(r["errors"] for r in samples)
            rps, p99 = spread[f"{key}_rps"], spread[f"{key}_p99_ms"] or dict.fromkeys(("min", "median", "max"), nan)
            p50 = medians[f"{key}_p50_ms"]
            print(
                f"{name:<16}{concurrency:>5}{rps['min']:>11.1f}{rps['median']:>9.1f}{rps['max']:>9.1f}"
                f"{p50 if p50 is not None else nan:>9.2f}{p99['min']:>12.2f}{p99['median']:>9.2f}{p99['max']:>9.2f}"
                f"{errors[key]:>8}{medians[f'{key}_cpu_ms_per_req']:>19.2f}"
                f"{medians[f'{key}_generator_cpu_ms_per_req']:>17.2f}"
            )
    samples_seen = [s for r in runs.values() for x in r for s in x["error_samples"]]
    if samples_seen:
        print(f"error samples: {samples_seen[:5]}")
    return medians, spread, errors


def peer_ratios(runs: dict[str, Any]) -> tuple[dict[str, float | None], dict[str, list[float]], dict[str, str]]:
    """Per-round ratios against every variant, and headline ones against each peer's stronger variant.

    ``rps_vs_<variant>_c<N>`` = loopline req/s / the variant's, ``p99_vs_<variant>_c<N>`` = the variant's p99 /
    loopline's, one per alternated round (bigger is better). The headline ``rps_vs_<peer>_c<N>`` uses the variant
    with the higher median req/s at that concurrency, ``p99_vs_<peer>_c<N>`` the one with the lower median p99
    (a per-variant key names a variant: ``mlflow_default``, ``mlflow_1thread``...). Returns (median ratios,
    per-round ratios, the stronger variant of each headline).
    """
    samples: dict[str, list[float]] = {}
    stronger: dict[str, str] = {}
    for concurrency in CONCURRENCY:
        ours = runs[f"loopline_c{concurrency}"]
        for peer, variants in PEERS.items():
            present = [v for v in variants if runs.get(f"{v}_c{concurrency}")]
            if not present:
                continue
            theirs = {v: runs[f"{v}_c{concurrency}"] for v in present}
            for v in present:
                name = v if v.endswith("_1thread") else f"{v}_default"
                samples[f"rps_vs_{name}_c{concurrency}"] = paired_ratios(_each(ours, "rps"), _each(theirs[v], "rps"))
                samples[f"p99_vs_{name}_c{concurrency}"] = paired_ratios(
                    _each(theirs[v], "p99_ms"), _each(ours, "p99_ms")
                )
            best_rps = max(present, key=lambda v: statistics.median(_each(theirs[v], "rps")))
            best_p99 = min(present, key=lambda v: statistics.median(_each(theirs[v], "p99_ms")))
            for figure, best in (("rps", best_rps), ("p99", best_p99)):
                name = best if best.endswith("_1thread") else f"{best}_default"
                samples[f"{figure}_vs_{peer}_c{concurrency}"] = samples[f"{figure}_vs_{name}_c{concurrency}"]
                stronger[f"{figure}_vs_{peer}_c{concurrency}"] = best
    ratios: dict[str, float | None] = {name: statistics.median(values) for name, values in samples.items()}
    return ratios, samples, stronger


def _each(runs: list[dict[str, Any]], figure: str) -> list[float]:
    """One figure of every round (a round without a successful request has no latency: infinitely slow)."""
    return [r[figure] if r[figure] is not None else (0.0 if figure == "rps" else inf) for r in runs]


def print_ratios(ratios: dict[str, float | None], samples: dict[str, list[float]], stronger: dict[str, str]) -> None:
    """The headline ratios at every concurrency side by side (median [worst round, best round]), then each variant's."""
    print("ratios, bigger is better for loopline: median over the rounds [worst round, best round];")
    print("  rps = loopline req/s / peer req/s; p99 = peer p99 / loopline p99; against each peer's stronger variant")
    rows: dict[str, list[str]] = {}
    for peer in PEERS:
        for figure in ("rps", "p99"):
            cells = []
            for concurrency in CONCURRENCY:
                key = f"{figure}_vs_{peer}_c{concurrency}"
                if key not in samples:
                    cells.append("n/a")
                    continue
                values = samples[key]
                cells.append(f"{ratios[key]:.2f} [{min(values):.2f}, {max(values):.2f}] vs {VARIANTS[stronger[key]]}")
            rows[f"{figure} vs {peer}"] = cells
    width = max((len(cell) for cells in rows.values() for cell in cells), default=10) + 3
    print(f"{'':<15}" + "".join(f"{f'concurrency {c}':>{width}}" for c in CONCURRENCY))
    for name, cells in rows.items():
        print(f"{name:<15}" + "".join(f"{cell:>{width}}" for cell in cells))
    per_variant = {name: values for name, values in samples.items() if name.endswith(_VARIANT_SUFFIXES)}
    if per_variant:
        print("every variant (per-round ratios):")
        print(spread_table(per_variant, unit="ratio"))


_VARIANT_SUFFIXES = tuple(f"{kind}_c{c}" for kind in ("_default", "_1thread") for c in CONCURRENCY)


def serve_goals(
    samples: dict[str, list[float]], stronger: dict[str, str], rss_ratio: float, batch: list[float]
) -> dict[str, Any]:
    """The issue's goals, each judged on its worst sample (round); p99 also on its worst concurrency."""
    goals: dict[str, Any] = {}
    for key, target in (("rps_vs_mlflow_c8", 10.0), ("p99_vs_mlflow_c8", 10.0), ("rps_vs_fastapi_c8", 3.0)):
        goals[key] = {**goal(samples[key], target), "vs": stronger[key]} if key in samples else None
    p99_keys = [f"p99_vs_mlflow_c{c}" for c in CONCURRENCY if f"p99_vs_mlflow_c{c}" in samples]
    if p99_keys:
        worst = min(p99_keys, key=lambda key: min(samples[key]))
        goals["p99_vs_mlflow_worst_concurrency"] = {
            **goal(samples[worst], 10.0),
            "vs": stronger[worst],
            "concurrency": int(worst.rsplit("_c", 1)[1]),
        }
    else:
        goals["p99_vs_mlflow_worst_concurrency"] = None
    # the one figure where smaller is better: RSS at the end of the soak / after its warm-up (one sample)
    goals["rss_end_vs_warmup"] = {
        "goal": 1.10,
        "direction": "<=",
        "worst": rss_ratio,
        "median": rss_ratio,
        "best": rss_ratio,
        "met": rss_ratio <= 1.10,
    }
    goals["batch_vs_floor"] = goal(batch, round(1 / 1.3, 3)) if batch else None
    return goals


def print_goals(goals: dict[str, Any]) -> None:
    for key, judged in goals.items():
        if judged is None:
            print(f"goal {key}: not measured")
            continue
        where = f" vs {VARIANTS[judged['vs']]}" if "vs" in judged else ""
        if "concurrency" in judged:
            where += f" (at concurrency {judged['concurrency']}, the worst of {', '.join(map(str, CONCURRENCY))})"
        direction = judged.get("direction", ">=")
        print(
            f"goal {key}{where}: {direction} {judged['goal']:g} on the worst sample: worst {judged['worst']:.3f},"
            f" median {judged['median']:.3f}, best {judged['best']:.3f} -> {'met' if judged['met'] else 'NOT met'}"
        )


def labels(duration: float) -> dict[str, str]:
    """What each figure times."""
    return {
        "<contender>_c<N>_rps": f"successful single-record JSON POSTs per second seen by the load generator over a"
        f" {duration:g} s run with N keep-alive connections, requests back to back (generator on the same cores)",
        "<contender>_c<N>_p50_ms / _p99_ms": "per-request latency at the generator, first byte written to last"
        " byte read, percentile over one run's successful requests",
        "<contender>_c<N>_cpu_ms_per_req": "user + system CPU of the server's process tree / successful requests",
        "loopline": "loopline serve (one process, its defaults), POST /predict/bench, prediction log written",
        "mlflow": "mlflow models serve --env-manager local (1 uvicorn worker), default thread settings",
        "mlflow_1thread": "mlflow models serve as above with OMP/MKL/OPENBLAS_NUM_THREADS=1",
        "fastapi": "hand-written FastAPI endpoint (1 uvicorn worker), default thread settings",
        "fastapi_1thread": "the same FastAPI endpoint with OMP/MKL/OPENBLAS_NUM_THREADS=1",
        "rps_vs_<peer>_c<N>": "loopline req/s / the peer's stronger variant's (higher median req/s), per round",
        "p99_vs_<peer>_c<N>": "the peer's stronger variant's p99 (lower median p99) / loopline's p99, per round",
        "rss_end_vs_warmup": "loopline server VmRSS at the end of the soak at concurrency 8 / after its warm-up",
        "batch_vs_floor": "floor seconds / loopline seconds per repeat (benchmarks/_serve_batch.py)",
    }


if __name__ == "__main__":
    main()
