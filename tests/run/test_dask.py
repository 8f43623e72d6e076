"""Steps on a real Dask cluster: a scheduler and two worker processes started here, on loopback ports.

The cluster's scheduler allows one worker death per task (``allowed-failures: 1``), so the bounded-retry
test kills exactly two workers; their nannies start them again.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar

import distributed  # the dask extra, part of the dev install (`all`): never skipped
import numpy as np
import polars as pl
import pytest

from loopline import ConfigError, Pipeline, StepError
from loopline.core.cpu import usable_cores
from loopline.run import DaskExecutor, Runner, RunResult
from loopline.store import Store

pytestmark = pytest.mark.slow

T = TypeVar("T")
QUICK = {"start": "2013-01-01", "valid_from": "2013-01-08", "test_from": "2013-01-10", "end": "2013-01-12"}
"""The quickstart template's params, narrowed to its first eleven days (train, valid, test)."""


S3_WORKER_ENV = {
    "AWS_ACCESS_KEY_ID": "loopline-test-key",
    "AWS_SECRET_ACCESS_KEY": "loopline-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": os.environ.get("LOOPLINE_TEST_S3_ENDPOINT", "http://127.0.0.1:5555"),
}
"""What the s3_env fixture gives the test process: the same S3-compatible server and keys."""

SCHEDULER = ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--no-dashboard"]  # `dask scheduler`
WORKER = ["distributed.cli.dask_worker", "--host", "127.0.0.1", "--no-dashboard"]  # `dask worker`


@dataclass
class Cluster:
    address: str
    client: Any
    logs: Path

    def ready(self, timeout: float = 90) -> None:
        """Wait until both workers are up (a killed worker's nanny starts it again)."""
        try:
            self.client.wait_for_workers(2, timeout=timeout)
        except TimeoutError:
            tails = "\n".join(f"{p.name}: {p.read_text()[-2000:]}" for p in sorted(self.logs.glob("*.log")))
            pytest.fail(f"the Dask workers did not come up in {timeout} s:\n{tails}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    logs = tmp_path_factory.mktemp("dask-logs")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
        "PYTHONWARNINGS": "ignore",
        # the step functions of this module travel by reference, as a user's module does: make it importable
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
        # the workers' own object-storage credentials, as on a team's machines (the tasks carry none)
        **S3_WORKER_ENV,
    }
    commands = {
        "scheduler": [*SCHEDULER, "--port", str(port)],
        **{f"worker{i}": [*WORKER, address, "--nworkers", "1", "--nthreads", "1", "--name", f"w{i}"] for i in (1, 2)},
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name, args in commands.items():
            with (logs / f"{name}.log").open("wb") as log:  # the `dask scheduler` / `dask worker` CLI
                processes.append(subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=log, env=env))
        client = connect(address, logs)
        found = Cluster(address, client, logs)
        found.ready()
        yield found
        client.close()
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def connect(address: str, logs: Path) -> Any:
    deadline = time.monotonic() + 60
    while True:
        try:
            return distributed.Client(address, timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"no Dask scheduler at {address}: {(logs / 'scheduler.log').read_text()[-2000:]}")
            time.sleep(0.5)


def bounded(call: Callable[[], T], seconds: float = 240) -> T:
    """``call()``, failing the test (instead of hanging it) past ``seconds``."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result(timeout=seconds)


# -- the quickstart pipeline, local and on the cluster ---------------------------------------------------


def quickstart(sources: Path) -> Pipeline:
    from loopline.core.yamlfile import parse_pipeline

    text = files("loopline.templates").joinpath("quickstart.yaml").read_text(encoding="utf-8")
    pipeline = parse_pipeline(text, source="quickstart.yaml")
    pipeline.params["sources"] = str(sources)
    return pipeline


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from loopline.cli._seed import seed_flights_table, seed_weather_files

    folder = tmp_path_factory.mktemp("sources")
    with sqlite3.connect(seed_flights_table(folder)) as conn:  # only the flights the narrowed params reach
        conn.execute("DELETE FROM flights WHERE time_hour >= ?", (QUICK["end"],))
    seed_weather_files(folder)
    return folder


def predictions(store: Store, test: pl.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    from loopline.train import ModelBundle

    return {
        v.algorithm: ModelBundle.from_bytes(store.artifacts.get_bytes(v.bundle_digest)).predict_table(test)
        for v in store.models.list("flights-delay")
    }


def test_the_quickstart_pipeline_gives_the_same_results_on_the_cluster(
    cluster: Cluster, sources: Path, tmp_path: Path
) -> None:
    from threadpoolctl import threadpool_limits

    cluster.ready()
    runs: dict[str, tuple[RunResult, Store]] = {}
    for name in ("local", "dask"):
        store = Store.open(f"sqlite:///{tmp_path / name / 'loopline.db'}", tmp_path / name / "artifacts")
        if name == "local":
            # Dask's nanny gives each worker one BLAS thread; a BLAS sum over two threads adds in another order
            with threadpool_limits(limits=1, user_api="blas"):
                result = bounded(partial(Runner(store).run, quickstart(sources), QUICK))
        else:
            with DaskExecutor(cluster.address) as executor:
                result = bounded(partial(Runner(store, executor).run, quickstart(sources), QUICK))
        assert result.status == "succeeded", result.error
        runs[name] = (result, store)
    (local, local_store), (dask, dask_store) = runs["local"], runs["dask"]
    here = f"{socket.gethostname()}/{os.getpid()}"
    assert all(o.worker == here for o in local.steps.values())
    assert all(o.worker and o.worker != here for o in dask.steps.values())  # every step ran in a worker
    tables = 0
    for step, outcome in local.steps.items():
        for output, ref in outcome.outputs.items():
            if ref["kind"] in ("table", "dataset"):  # content-addressed: equal bytes, equal digests
                assert dask.steps[step].outputs[output] == ref, (step, output)
                tables += 1
    assert tables >= 10
    metrics = {name: [v.metrics for v in store.models.list("flights-delay")] for name, (_, store) in runs.items()}
    assert metrics["local"] == metrics["dask"] and len(metrics["local"]) == 2
    test = local.output("split", "test")
    assert test.height > 500
    local_predictions, dask_predictions = predictions(local_store, test), predictions(dask_store, test)
    assert set(local_predictions) == {"logistic_regression", "hist_gradient_boosting"}
    for algorithm, columns in local_predictions.items():
        for column, values in columns.items():
            assert values.tobytes() == dask_predictions[algorithm][column].tobytes(), (algorithm, column)
    for store in (local_store, dask_store):
        store.close()


# -- team mode: a PostgreSQL store and S3 artifacts shared by the workers ---------------------------------


def labelled_rows(*, rows: int) -> pl.DataFrame:
    rng = np.random.default_rng(3)
    x, z = rng.normal(size=rows), rng.normal(size=rows)
    kind = rng.choice(["a", "b", "c"], size=rows)
    return pl.DataFrame({"x": x, "z": z, "kind": kind, "y": x + 0.5 * (kind == "a") + rng.normal(size=rows) > 0})


def team_pipeline() -> Pipeline:
    features = {"target": "y", "numeric": ["x", "z"], "categorical": ["kind"]}
    return (
        Pipeline("team")
        .add("data", labelled_rows, rows=3000)
        .add("split", "split", inputs=["data"], target="y", method="random")
        .add("hgb", "train", inputs=["split.train", "split.valid"], estimator="hist_gradient_boosting", **features)
        .add("lr", "train", inputs=["split.train", "split.valid"], estimator="logistic_regression", **features)
        .add("best", "select", inputs=["hgb", "lr", "split.test"], model="team", metric="roc_auc")
    )


def test_team_mode_postgres_store_and_s3_artifacts_on_the_cluster(
    cluster: Cluster, pg_url: str, s3_url: str, tmp_path: Path
) -> None:
    """Workers on "other machines" share nothing but the PostgreSQL store and the bucket: every step runs on a
    worker, every artifact lands in the bucket, the model is registered and promoted, and the outputs equal a
    run of the local executor on a folder (content-addressed: equal digests, equal bytes)."""
    from threadpoolctl import threadpool_limits

    cluster.ready()
    shared = Store.open(pg_url, s3_url, local_dir=tmp_path / "team-home")
    with DaskExecutor(cluster.address) as executor:
        team = bounded(lambda: Runner(shared, executor).run(team_pipeline()))
    local = Store.open(f"sqlite:///{tmp_path / 'local.db'}", tmp_path / "local-artifacts")
    with threadpool_limits(limits=1, user_api="blas"):
        alone = bounded(lambda: Runner(local).run(team_pipeline()))
    assert team.status == alone.status == "succeeded", team.error
    here = f"{socket.gethostname()}/{os.getpid()}"
    assert all(o.worker and o.worker != here for o in team.steps.values())
    assert not (tmp_path / "team-home").exists() or not any((tmp_path / "team-home").rglob("*.parquet"))
    for step, outcome in alone.steps.items():
        for output, ref in outcome.outputs.items():
            if ref["kind"] == "table":
                assert team.steps[step].outputs[output] == ref, (step, output)
                assert shared.artifacts.exists(ref["digest"]) and shared.artifacts.local_path(ref["digest"]) is None
    production = shared.models.production("team")
    assert production is not None and production.run_id == team.run_id
    assert shared.artifacts.get_bytes(production.bundle_digest)  # verified against its digest, from the bucket
    assert [v.metrics for v in shared.models.list("team")] == [v.metrics for v in local.models.list("team")]
    for store in (shared, local):
        store.close()


# -- a worker that dies mid-step ---------------------------------------------------------------------


def start(*, value: int) -> int:
    return value


def die_once(value: int, *, marker: str) -> int:
    """Kill the worker process running this on the first attempt; later attempts succeed."""
    path = Path(marker)
    if not path.exists():
        path.write_text(str(os.getpid()))
        os._exit(17)
    return value + 1


def die_always(value: int, *, marker: str) -> int:
    with Path(marker).open("a") as deaths:
        deaths.write(f"{os.getpid()}\n")
    os._exit(17)


def test_a_step_whose_worker_dies_runs_again_on_another_worker(cluster: Cluster, store: Store, tmp_path: Path) -> None:
    cluster.ready()
    marker = tmp_path / "died"
    pipeline = Pipeline("phoenix").add("a", start, value=41).add("b", die_once, inputs=["a"], marker=str(marker))
    with DaskExecutor(cluster.address) as executor:
        result = bounded(lambda: Runner(store, executor, cache=False).run(pipeline))
    assert result.status == "succeeded" and result.output("b") == 42
    killed = int(marker.read_text())
    assert result.steps["b"].worker and not result.steps["b"].worker.endswith(f"/{killed}")
    records = {s.step: s for s in store.runs.get(result.run_id).steps}
    assert records["b"].status == "succeeded" and records["b"].attempt == 2  # the first attempt died
    assert records["a"].attempt == 1


def test_a_step_that_kills_every_worker_fails_after_bounded_retries(
    cluster: Cluster, store: Store, tmp_path: Path
) -> None:
    cluster.ready()
    deaths = tmp_path / "deaths"
    pipeline = Pipeline("doom").add("a", start, value=1).add("b", die_always, inputs=["a"], marker=str(deaths))
    with DaskExecutor(cluster.address) as executor:
        result = bounded(lambda: Runner(store, executor, cache=False).run(pipeline, raise_on_error=False))
    assert result.status == "failed"
    assert len(deaths.read_text().split()) == 2  # the first run and one retry (allowed-failures: 1)
    assert "2 Dask worker(s) died while running it" in (result.steps["b"].error or "")
    record = next(s for s in store.runs.get(result.run_id).steps if s.step == "b")
    assert record.status == "failed" and record.attempt == 3
    cluster.ready()


# -- what cannot travel ------------------------------------------------------------------------------


def test_a_step_that_cannot_be_pickled_fails_naming_the_step(cluster: Cluster, store: Store) -> None:
    lock = threading.Lock()

    def guarded(value: int) -> int:
        with lock:
            return value

    pipeline = Pipeline("locked").add("a", start, value=1).add("guarded", guarded, inputs=["a"])
    with DaskExecutor(cluster.address) as executor:
        result = bounded(lambda: Runner(store, executor).run(pipeline, raise_on_error=False))
    assert result.status == "failed" and result.steps["guarded"].status == "failed"
    assert "step 'guarded' cannot be sent to a Dask worker" in (result.steps["guarded"].error or "")
    assert "module level" in (result.steps["guarded"].error or "")


def test_a_step_type_the_workers_do_not_know_fails_naming_the_step(cluster: Cluster, store: Store) -> None:
    from loopline.core import STEP_TYPES, StepConfig, StepContext, StepType

    class OnlyHere(StepType[StepConfig]):
        type_name = "only_here_test"

        def run(self, config: StepConfig, inputs: list[Any], ctx: StepContext) -> dict[str, Any]:
            return {"out": 1}

    STEP_TYPES.register("only_here_test", OnlyHere(), replace=True)
    pipeline = Pipeline("x").add("mine", "only_here_test")
    with DaskExecutor(cluster.address) as executor, pytest.raises(StepError) as caught:
        bounded(lambda: Runner(store, executor).run(pipeline))
    assert caught.value.step == "mine"
    assert "step 'mine' has type 'only_here_test', which is not registered in the worker process" in str(caught.value)
    assert "`loopline.steps` entry point" in str(caught.value)


def test_an_in_memory_store_cannot_be_shared_with_workers(cluster: Cluster, tmp_path: Path) -> None:
    with Store.open("sqlite://", tmp_path / "artifacts") as store, DaskExecutor(cluster.address) as executor:
        result = Runner(store, executor).run(Pipeline("mem").add("a", start, value=1), raise_on_error=False)
    assert "in-memory SQLite database" in (result.steps["a"].error or "")


# -- the command line --------------------------------------------------------------------------------


def test_loopline_run_with_a_dask_scheduler(cluster: Cluster, tmp_path: Path) -> None:
    cluster.ready()
    pl.DataFrame({"x": list(range(10)), "y": [i % 2 for i in range(10)]}).write_csv(tmp_path / "d.csv")
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(
        "name: on-dask\nsteps:\n"
        f"  cli_data:\n    type: file\n    path: {tmp_path / 'd.csv'}\n"
        "  cli_more:\n    type: derive\n    inputs: [cli_data]\n    columns: {z: x * 2}\n    filter: y = 1\n"
    )
    home = tmp_path / "home"
    command = [sys.executable, "-m", "loopline.cli", "run", str(pipeline), "--home", str(home), "--json"]
    done = subprocess.run(
        [*command, "--executor", "dask://" + cluster.address.removeprefix("tcp://")],
        capture_output=True,
        text=True,
        timeout=180,
        env={k: v for k, v in os.environ.items() if k != "LOOPLINE_STORE_URL"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "succeeded"
    assert {name: step["status"] for name, step in report["steps"].items()} == {
        "cli_data": "succeeded",
        "cli_more": "succeeded",
    }
    prefixes = cluster.client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
    assert {"loopline:cli_data", "loopline:cli_more"} <= set(prefixes)  # the steps ran on the cluster
    with Store.open(f"sqlite:///{home / 'loopline.db'}", home / "artifacts") as store:
        run = store.runs.get(report["run_id"])
        more = next(s for s in run.steps if s.step == "cli_more")
        assert store.artifacts.get_table(more.outputs["out"]["digest"])["z"].to_list() == [2, 6, 10, 14, 18]


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from loopline.cli import app

    pipeline = tmp_path / "p.yaml"
    pl.DataFrame({"x": [1]}).write_csv(tmp_path / "d.csv")
    pipeline.write_text(f"name: nowhere\nsteps:\n  a:\n    type: file\n    path: {tmp_path / 'd.csv'}\n")
    port = free_port()
    result = CliRunner().invoke(
        app, ["run", str(pipeline), "--home", str(tmp_path / "home"), "--executor", f"dask://127.0.0.1:{port}"]
    )
    assert result.exit_code != 0
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in " ".join(result.output.split())


# -- without the extra -------------------------------------------------------------------------------

BLOCK_DASK = """
import sys

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("dask", "distributed"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Blocker())
import loopline.run, loopline.cli  # importing loopline never needs dask
from loopline.core.errors import MissingExtraError
from loopline.run import make_executor

for spec in ("dask", "dask://127.0.0.1:8786"):
    try:
        make_executor(spec)
    except MissingExtraError as exc:
        print(exc)
"""


def test_without_the_dask_extra_the_error_names_it() -> None:
    done = subprocess.run([sys.executable, "-c", BLOCK_DASK], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert all("pip install 'loopline[dask]'" in line for line in lines)


# -- choosing an executor ----------------------------------------------------------------------------


def test_executors_by_name() -> None:
    from loopline.run import LocalExecutor, SequentialExecutor, make_executor

    assert isinstance(make_executor("local"), LocalExecutor)
    assert isinstance(make_executor("sequential"), SequentialExecutor)
    remote = make_executor("dask://10.0.0.5:8786")
    assert isinstance(remote, DaskExecutor) and remote.address == "dask://10.0.0.5:8786"
    assert isinstance(make_executor("dask"), DaskExecutor) and make_executor("dask").address is None
    with pytest.raises(ConfigError, match=r"unknown executor 'threads'.*--executor local"):
        make_executor("threads")
    with pytest.raises(ConfigError, match=r"executor 'dask://' names no scheduler address"):
        make_executor("dask://")


def test_a_local_dask_cluster_runs_steps_in_worker_processes(store: Store) -> None:
    pipeline = Pipeline("local-cluster").add("a", start, value=41).add("b", worker_pid, inputs=["a"])
    with DaskExecutor(n_workers=1) as executor:
        result = bounded(lambda: Runner(store, executor, cache=False).run(pipeline))
        workers = executor.client.scheduler_info()["workers"]
        assert len(workers) == 1
        assert set(executor.client.run(usable_cores).values()) == {1}  # a worker's core budget: its one thread
    assert result.status == "succeeded"
    assert result.output("b")[0] == 42 and result.output("b")[1] != os.getpid()
    assert executor._cluster is None  # stopped with the executor


def worker_pid(value: int) -> list[int]:
    return [value + 1, os.getpid()]
