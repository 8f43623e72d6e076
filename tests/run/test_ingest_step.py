"""The ``ingest`` step in a pipeline: its dataset travels by reference, so nothing new costs no full read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from loopline import Pipeline
from loopline.core import DatasetRef
from loopline.run import LocalExecutor, Runner, SequentialExecutor
from loopline.store import Store

SEEN: list[int] = []
FAILURES: list[str] = []  # count_rows raises each of these once


def count_rows(frame: pl.DataFrame) -> int:
    if FAILURES:
        raise RuntimeError(FAILURES.pop())
    SEEN.append(frame.height)
    return frame.height


def first_id(frame: pl.DataFrame) -> int:
    return int(frame["id"].sort()[0])


def write_csv(folder: Path, name: str, ids: range) -> None:
    pl.DataFrame({"id": list(ids), "v": [i * 10 for i in ids]}).write_csv(folder / name)


def pipeline(folder: Path) -> Pipeline:
    return (
        Pipeline("ingest-then-count")
        .add("orders", "ingest", source={"type": "file", "path": str(folder / "*.csv")})
        .add("count", count_rows, inputs=["orders"])
    )


def counting(monkeypatch: pytest.MonkeyPatch, obj: object, name: str) -> list[Any]:
    """Record the calls to ``obj.name`` (an instance's method) while still making them."""
    calls: list[Any] = []
    original: Callable[..., Any] = getattr(obj, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, name, wrapper)
    return calls


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    write_csv(tmp_path / "in", "a.csv", range(3))
    return tmp_path / "in"


def test_nothing_new_keeps_the_version_and_reads_nothing(
    store: Store, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = Runner(store, SequentialExecutor())
    first = runner.run(pipeline(folder))
    assert first.output("count") == 3
    SEEN.clear()
    reads = counting(monkeypatch, store.datasets, "read")
    tables = counting(monkeypatch, store.artifacts, "put_table")

    again = runner.run(pipeline(folder))
    assert {n: o.status for n, o in again.steps.items()} == {"orders": "succeeded", "count": "cached"}
    assert (reads, tables, SEEN) == ([], [], [])  # no read of the dataset, no table written, no consumer run
    assert [v.version for v in store.datasets.versions("orders")] == [1]
    assert again.steps["orders"].outputs["out"] == first.steps["orders"].outputs["out"]
    assert again.steps["orders"].outputs["out"]["kind"] == "dataset"


def test_a_new_file_makes_a_new_version_and_its_consumers_see_the_rows(
    store: Store, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = Runner(store, SequentialExecutor())
    first = runner.run(pipeline(folder))
    write_csv(folder, "b.csv", range(3, 5))
    reads = counting(monkeypatch, store.datasets, "read")
    SEEN.clear()

    second = runner.run(pipeline(folder))
    assert {n: o.status for n, o in second.steps.items()} == {"orders": "succeeded", "count": "succeeded"}
    assert SEEN == [5] and len(reads) == 1  # read once, by the consumer that ran
    assert [v.version for v in store.datasets.versions("orders")] == [1, 2]
    assert second.steps["orders"].outputs["out"] != first.steps["orders"].outputs["out"]
    assert second.output("orders")["id"].sort().to_list() == [0, 1, 2, 3, 4]
    assert second.output("orders", "version")["version"] == 2


def test_the_reference_names_the_latest_version(store: Store, folder: Path) -> None:
    result = Runner(store).run(pipeline(folder))
    version = store.datasets.version("orders")
    ref = store.artifacts.get_json(result.steps["orders"].outputs["out"]["digest"])
    assert DatasetRef(**ref) == DatasetRef("orders", 1, version.checksum)
    assert result.output("orders").equals(store.datasets.read("orders", 1))


def test_a_resumed_run_reads_the_rows_of_the_recorded_version(store: Store, folder: Path) -> None:
    FAILURES.append("flaky consumer")
    failed = Runner(store).run(pipeline(folder), raise_on_error=False)
    assert failed.steps["count"].status == "failed"
    write_csv(folder, "b.csv", range(3, 5))  # arrives after the run: the resumed run uses the version it ingested

    resumed = Runner(store).run(pipeline(folder), resume=failed.run_id)
    assert {n: o.status for n, o in resumed.steps.items()} == {"orders": "reused", "count": "succeeded"}
    assert resumed.output("count") == 3


def test_consumers_starting_together_read_the_dataset_once(
    store: Store, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fan_out = pipeline(folder).add("first", first_id, inputs=["orders"])
    reads = counting(monkeypatch, store.datasets, "read")
    result = Runner(store, LocalExecutor(max_workers=2)).run(fan_out)
    assert (result.output("count"), result.output("first")) == (3, 0)
    assert len(reads) == 1
