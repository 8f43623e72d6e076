"""The step boundary: tasks pickle, carry no password, and run the same in another process."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy.engine import make_url

from loopline import Pipeline
from loopline.run import Executor, Runner, SequentialExecutor, StepResult, StepTask, execute_step
from loopline.run._task import store_location, with_password
from loopline.store import Store


class Recording(Executor):
    """Runs tasks like the sequential executor and keeps each task it was given."""

    def __init__(self) -> None:
        self.tasks: list[StepTask] = []

    def submit(self, task: StepTask) -> Future[StepResult]:
        self.tasks.append(task)
        return SequentialExecutor().submit(task)


class InProcessPool(Executor):
    """Steps in fresh worker processes (spawned), the task crossing with the standard pickle module."""

    def __init__(self) -> None:
        self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, task: StepTask) -> Future[StepResult]:
        return self.pool.submit(execute_step, task)

    def shutdown(self) -> None:
        self.pool.shutdown()


def scale(frame: pl.DataFrame, *, factor: int) -> pl.DataFrame:
    return frame.with_columns(pl.col("x") * factor)


def table_pipeline(data: Path) -> Pipeline:
    return (
        Pipeline("tables")
        .add("data", "file", path=str(data))
        .add("more", "derive", inputs=["data"], columns={"z": "x * 2"}, filter="y = 1")
        .add("scaled", scale, inputs=["more"], factor=3)
        .add("parts", "split", inputs=["scaled"], target="y", method="random", valid_fraction=0.25, test_fraction=0.25)
    )


def write_data(path: Path) -> Path:
    pl.DataFrame({"x": list(range(40)), "y": [i % 2 for i in range(40)]}).write_csv(path)
    return path


def test_every_task_pickles_and_names_its_inputs_by_reference(store: Store, tmp_path: Path) -> None:
    executor = Recording()
    result = Runner(store, executor, cache=False).run(table_pipeline(write_data(tmp_path / "d.csv")))
    assert result.status == "succeeded"
    by_step = {task.step: task for task in executor.tasks}
    assert set(by_step) == {"data", "more", "scaled", "parts"}
    for task in executor.tasks:
        again = pickle.loads(pickle.dumps(task))
        assert replace(again, function=None) == replace(task, function=None)
        if task.function is not None:  # a module-level function travels by reference
            assert again.function is not None and again.function.func is task.function.func
    more = by_step["more"]
    assert more.step_type == "derive" and more.function is None
    assert more.inputs == (result.steps["data"].outputs["out"],)
    assert more.config["columns"] == {"z": "x * 2"}
    assert (more.store_url, more.artifacts) == store_location(store)
    assert by_step["scaled"].function is not None and by_step["scaled"].config["factor"] == 3


def test_in_this_process_a_step_runs_the_runners_config_and_a_pickled_task_validates_its_own(
    store: Store, tmp_path: Path
) -> None:
    executor = Recording()
    Runner(store, executor, cache=False).run(table_pipeline(write_data(tmp_path / "d.csv")))
    more = next(task for task in executor.tasks if task.step == "more")
    assert more.validated is not None and more.validated.model_dump(mode="json") == more.config
    travelled = pickle.loads(pickle.dumps(more))
    assert travelled.validated is None and travelled == more  # validated from ``config`` where it runs
    # proof of which config each one runs: the JSON form now names a column that does not exist
    wrong = {**more.config, "columns": {"z": "no_such_column * 2"}}
    assert execute_step(replace(more, config=wrong)).status == "succeeded"  # the runner's own object
    failed = execute_step(replace(travelled, config=wrong))
    assert failed.status == "failed" and "no_such_column" in (failed.error or "")


def test_a_task_runs_in_another_process_like_in_this_one(tmp_path: Path) -> None:
    data = write_data(tmp_path / "d.csv")
    results = {}
    for name, executor in (("here", SequentialExecutor()), ("spawned", InProcessPool())):
        with Store.open(f"sqlite:///{tmp_path / name / 'db'}", tmp_path / name / "artifacts") as store, executor:
            result = Runner(store, executor, cache=False).run(table_pipeline(data))
            assert result.status == "succeeded"
            results[name] = {step: outcome.outputs for step, outcome in result.steps.items()}
            workers = {outcome.worker for outcome in result.steps.values()}
            assert len(workers) == 1
            results[name + " worker"] = workers.pop()
    assert results["here"] == results["spawned"]  # content-addressed: the same digests
    assert results["here worker"] != results["spawned worker"]


def test_a_password_never_travels_in_a_task(tmp_path: Path, pg_database: object) -> None:
    url = make_url(str(pg_database)).set(password="s3cret-pw")
    with Store.open(url.render_as_string(hide_password=False), tmp_path / "artifacts") as store:
        executor = Recording()
        Runner(store, executor).run(Pipeline("pw").add("a", scale_free))
    (task,) = executor.tasks
    assert b"s3cret-pw" not in pickle.dumps(task)
    assert make_url(task.store_url).password is None
    assert make_url(task.store_url).database == url.database


def scale_free() -> int:
    return 7


def test_the_worker_takes_the_password_from_its_own_environment() -> None:
    task_url = "postgresql+psycopg://loop@db.internal:5432/loopline"
    same = {"LOOPLINE_STORE_URL": "postgresql://loop:pw@db.internal:5432/loopline"}
    assert make_url(with_password(task_url, same)).password == "pw"
    other = {"LOOPLINE_STORE_URL": "postgresql://loop:pw@db.internal:5432/elsewhere"}
    assert with_password(task_url, other) == task_url  # another database: libpq's PGPASSWORD applies
    assert with_password(task_url, {}) == task_url


def test_an_unknown_step_type_fails_naming_the_step_and_the_fix(store: Store) -> None:
    location = store_location(store)
    task = StepTask("r1", "clean", "no_such_type", {}, (), {}, 1, *location)
    result = execute_step(task)
    assert result.status == "failed" and result.outputs == {}
    assert "step 'clean' has type 'no_such_type'" in (result.error or "")
    assert "loopline.steps" in (result.error or "")


def test_a_config_that_no_longer_validates_fails_naming_the_key(store: Store) -> None:
    task = StepTask("r1", "more", "derive", {"colums": {}}, (), {}, 1, *store_location(store))
    result = execute_step(task)
    assert result.status == "failed" and "steps.more.colums" in (result.error or "")


def test_a_nested_config_error_in_a_worker_names_the_full_key(store: Store) -> None:
    """A worker where an estimator is not registered (a plugin installed on the scheduler only) says where."""
    config = {"target": "y", "numeric": ["x"], "estimator": "only_on_the_scheduler"}
    task = StepTask("r1", "fit", "train", config, (), {}, 1, *store_location(store))
    result = execute_step(task)
    assert result.status == "failed" and "steps.fit.estimator: unknown estimator" in (result.error or "")


def test_a_failed_result_pickles_without_its_exception() -> None:
    result = StepResult("s", "failed", {}, datetime.now(UTC), 0.1, "ValueError: bad", "trace", cause=ValueError("bad"))
    again = pickle.loads(pickle.dumps(result))
    assert again.cause is None and again == result and again.record_error == "ValueError: bad\ntrace"


def test_the_local_executor_hands_values_over_in_memory(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = Pipeline("fan").add("data", "file", path=str(write_data(tmp_path / "d.csv")))
    for name in ("a", "b", "c"):
        pipeline.add(name, scale, inputs=["data"], factor=2)
    loaded: list[str] = []
    get_table = store.artifacts.get_table

    def counted(digest: str) -> pl.DataFrame:
        loaded.append(digest)
        return get_table(digest)

    monkeypatch.setattr(store.artifacts, "get_table", counted)
    result = Runner(store, cache=False).run(pipeline)
    assert result.status == "succeeded" and loaded == []  # the file step's table was handed over in memory
    assert result.output("a")["x"].to_list()[:3] == [0, 2, 4]


def test_a_step_returning_other_outputs_than_declared_fails_with_the_fix(store: Store) -> None:
    from loopline.core import STEP_TYPES, StepConfig, StepContext, StepType

    class Sloppy(StepType[StepConfig]):
        type_name = "sloppy_test"
        outputs = ("model", "report")

        def run(self, config: StepConfig, inputs: list[object], ctx: StepContext) -> dict[str, object]:
            return {"model": b"weights"}

    STEP_TYPES.register("sloppy_test", Sloppy(), replace=True)
    result = Runner(store).run(Pipeline("sloppy").add("fit", "sloppy_test"), raise_on_error=False)
    assert result.steps["fit"].status == "failed"
    assert result.steps["fit"].error == (
        "step 'fit' returned outputs ['model'], but its type declares ['model', 'report']. "
        "Return a mapping with exactly the declared output names (the step type's `outputs`)."
    )
