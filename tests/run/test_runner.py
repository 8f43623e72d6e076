"""The runner: DAG order, concurrency, caching by content, records, failure and resume."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import polars as pl
import pytest

from loopline import Pipeline, StepError
from loopline.run import Runner, SequentialExecutor
from loopline.store import Store

CALLS: list[str] = []


def source(*, value: int = 1) -> int:
    CALLS.append("source")
    return value


def plus(value: int, *, amount: int = 1) -> int:
    CALLS.append("plus")
    return value + amount


def total(*values: int) -> int:
    return sum(values)


def write_csv(path: Path, rows: int) -> None:
    pl.DataFrame({"x": list(range(rows)), "y": [i % 2 for i in range(rows)]}).write_csv(path)


def test_chain_runs_in_order_and_records_every_step(store: Store) -> None:
    pipeline = Pipeline("chain").add("a", source, value=2).add("b", plus, inputs=["a"], amount=3)
    result = Runner(store).run(pipeline)
    assert result.status == "succeeded"
    assert result.output("b") == 5
    record = store.runs.get(result.run_id)
    assert record.status == "succeeded"
    assert {s.step: s.status for s in record.steps} == {"a": "succeeded", "b": "succeeded"}
    assert all(s.duration_s >= 0 and s.outputs for s in record.steps)


def test_unchanged_steps_come_from_the_cache(store: Store) -> None:
    pipeline = Pipeline("cache").add("a", source, value=2).add("b", plus, inputs=["a"])
    Runner(store).run(pipeline)
    CALLS.clear()
    again = Runner(store).run(pipeline)
    assert CALLS == []
    assert {n: o.status for n, o in again.steps.items()} == {"a": "cached", "b": "cached"}
    assert again.output("b") == 3
    CALLS.clear()
    changed = Runner(store).run(Pipeline("cache").add("a", source, value=5).add("b", plus, inputs=["a"]))
    assert changed.output("b") == 6 and CALLS == ["source", "plus"]


def test_a_changed_input_file_is_noticed(store: Store, tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    write_csv(data, 10)
    pipeline = Pipeline("files").add("data", "file", path=str(data))
    assert Runner(store).run(pipeline).output("data").height == 10
    assert Runner(store).run(pipeline).steps["data"].status == "cached"
    write_csv(data, 12)  # same name, new content
    rerun = Runner(store).run(pipeline)
    assert rerun.steps["data"].status == "succeeded"
    assert rerun.output("data").height == 12


def test_independent_branches_run_concurrently(store: Store) -> None:
    barrier = threading.Barrier(2, timeout=5)

    def branch(*, name: str) -> str:
        barrier.wait()  # both branches must be running at the same time, or this times out
        return name

    pipeline = Pipeline("par").add("left", branch, name="l").add("right", branch, name="r")
    pipeline.add("both", lambda left, right: left + right, inputs=["left", "right"])
    assert Runner(store, cache=False).run(pipeline).output("both") == "lr"


def test_failure_is_recorded_and_the_run_resumes_from_the_failed_step(store: Store, tmp_path: Path) -> None:
    flag = tmp_path / "fixed"

    def fragile(value: int) -> int:
        if not flag.exists():
            raise RuntimeError("the disk is full")
        return value * 10

    pipeline = (
        Pipeline("fragile").add("a", source, value=4).add("b", fragile, inputs=["a"]).add("c", plus, inputs=["b"])
    )
    with pytest.raises(StepError, match="step 'b' failed.*disk is full.*loopline run --resume") as caught:
        Runner(store).run(pipeline)
    record = store.runs.list(limit=1)[0]
    assert record.status == "failed"
    run = store.runs.get(record.run_id)
    statuses = {s.step: s.status for s in run.steps}
    assert statuses == {"a": "succeeded", "b": "failed"}
    assert "disk is full" in (next(s for s in run.steps if s.step == "b").error or "")
    assert caught.value.step == "b"
    flag.touch()
    CALLS.clear()
    resumed = Runner(store).run(pipeline, resume=record.run_id)
    assert resumed.run_id == record.run_id and resumed.status == "succeeded"
    assert resumed.steps["a"].status == "reused" and CALLS == ["plus"]
    assert resumed.output("c") == 41
    assert store.runs.get(record.run_id).status == "succeeded"


def test_dependents_of_a_failed_step_are_skipped_but_others_finish(store: Store) -> None:
    def boom(value: int) -> int:
        raise ValueError("bad")

    pipeline = Pipeline("skip").add("a", source).add("bad", boom, inputs=["a"]).add("after", plus, inputs=["bad"])
    pipeline.add("other", plus, inputs=["a"])
    result = Runner(store, SequentialExecutor()).run(pipeline, raise_on_error=False)
    assert result.status == "failed"
    assert {n: o.status for n, o in result.steps.items()} == {
        "a": "succeeded",
        "bad": "failed",
        "after": "skipped",
        "other": "succeeded",
    }


def test_targets_run_only_what_they_need(store: Store) -> None:
    pipeline = Pipeline("to").add("a", source).add("b", plus, inputs=["a"]).add("slow", lambda: time.sleep(5))
    result = Runner(store).run(pipeline, targets=["b"])
    assert set(result.steps) == {"a", "b"}


def test_tables_travel_as_parquet_artifacts(store: Store, tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    write_csv(data, 5)
    pipeline = (
        Pipeline("t")
        .add("data", "file", path=str(data))
        .add("more", "derive", inputs=["data"], columns={"z": "x * 2"}, filter="y = 1")
    )
    result = Runner(store).run(pipeline)
    ref = result.steps["more"].outputs["out"]
    assert ref["kind"] == "table"
    assert store.artifacts.get_table(ref["digest"])["z"].to_list() == [2, 6]


def test_a_step_served_from_the_cache_never_loads_its_inputs(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "d.csv"
    write_csv(data, 5)
    pipeline = Pipeline("lazy").add("data", "file", path=str(data)).add("more", "derive", inputs=["data"])
    Runner(store).run(pipeline)
    loaded: list[str] = []
    get_table = store.artifacts.get_table

    def counted(digest: str) -> pl.DataFrame:
        loaded.append(digest)
        return get_table(digest)

    monkeypatch.setattr(store.artifacts, "get_table", counted)
    again = Runner(store).run(pipeline)
    assert {n: o.status for n, o in again.steps.items()} == {"data": "cached", "more": "cached"}
    assert loaded == []


def test_closures_are_never_served_from_the_cache(store: Store) -> None:
    box = {"value": 1}
    pipeline = Pipeline("closure").add("read", lambda: box["value"])
    assert Runner(store).run(pipeline).output("read") == 1
    box["value"] = 2
    again = Runner(store).run(pipeline)
    assert again.steps["read"].status == "succeeded" and again.output("read") == 2


def test_a_failed_step_leaves_nothing_half_written(store: Store, tmp_path: Path) -> None:
    def explode(value: int) -> int:
        raise RuntimeError("midway")

    pipeline = Pipeline("half").add("a", source, value=123456).add("b", explode, inputs=["a"])
    Runner(store).run(pipeline, raise_on_error=False)
    files_before = sorted(p for p in (tmp_path / "artifacts").rglob("*") if p.is_file())
    failed = Runner(store, cache=False).run(pipeline, raise_on_error=False)
    files_after = sorted(p for p in (tmp_path / "artifacts").rglob("*") if p.is_file())
    assert files_after == files_before  # the failing step wrote no artifact, not even a temp file
    step = next(s for s in store.runs.get(failed.run_id).steps if s.step == "b")
    assert step.status == "failed" and step.outputs == {}


def test_a_store_failure_while_recording_is_not_swallowed(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from loopline.core.errors import StoreError

    def refuse(run_id: str, records: list[object]) -> None:
        raise StoreError("the metadata store is read-only.")

    monkeypatch.setattr(store.runs, "record_steps", refuse)
    with pytest.raises(StoreError, match="read-only"):
        Runner(store).run(Pipeline("ro").add("a", source))


def test_long_step_type_names_are_recorded(store: Store) -> None:
    def a_function_whose_qualified_name_is_long_enough_to_exceed_one_hundred_characters_in_total() -> int:
        return 1

    result = Runner(store).run(
        Pipeline("long").add(
            "a", a_function_whose_qualified_name_is_long_enough_to_exceed_one_hundred_characters_in_total
        )
    )
    assert len(store.runs.get(result.run_id).steps[0].type) > 100


def test_a_change_in_an_output_nobody_reads_keeps_consumers_cached(store: Store) -> None:
    from loopline.core import STEP_TYPES, StepConfig, StepContext, StepType

    class TwoOutputs(StepType):
        type_name = "two_outputs_test"
        Config = StepConfig
        outputs = ("data", "stats")
        cacheable = False
        calls = 0

        def run(self, config: object, inputs: list[object], ctx: StepContext) -> dict[str, object]:
            TwoOutputs.calls += 1
            return {"data": [1, 2, 3], "stats": {"call": TwoOutputs.calls}}  # stats differ on every run

    STEP_TYPES.register("two_outputs_test", TwoOutputs(), replace=True)
    pipeline = Pipeline("outs").add("src", "two_outputs_test").add("use", total_of, inputs=["src.data"])
    Runner(store).run(pipeline)
    again = Runner(store).run(pipeline)
    assert again.steps["src"].status == "succeeded" and again.steps["use"].status == "cached"


def total_of(values: list[int]) -> int:
    return sum(values)


def test_a_run_stopped_by_an_interrupt_ends_failed_not_succeeded(store: Store) -> None:
    def interrupt(step: str, event: str) -> None:
        if (step, event) == ("b", "started"):
            raise KeyboardInterrupt

    pipeline = Pipeline("stopped").add("a", source, value=4).add("b", plus, inputs=["a"])
    with pytest.raises(KeyboardInterrupt):
        Runner(store, progress=interrupt).run(pipeline)
    run = store.runs.list(limit=1)[0]
    assert (run.status, run.error) == ("failed", "the run stopped: KeyboardInterrupt")
    assert {s.step: s.status for s in store.runs.get(run.run_id).steps} == {"a": "succeeded"}
