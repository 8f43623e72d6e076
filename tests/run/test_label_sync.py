"""The loop's label sync is incremental: a tick reads only the outcome rows committed since the last one (the
position is in the store), late labels still attach, and a failed sync reads the same rows again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from tests._candidates import put_dataset, register

from loopline.core.config import LabelSourceConfig
from loopline.run import sync_label_source
from loopline.store import PredictionRow, Store

T0 = datetime(2025, 3, 1, tzinfo=UTC)
SOURCE = LabelSourceConfig(dataset="outcomes", key="customer", label="churned", time="observed")


def predict(store: Store, ids: range) -> None:
    inputs = [{"x": 0.1, "group": "a", "customer": i} for i in ids]
    at = [T0 + timedelta(days=i) for i in ids]
    store.predictions.append(
        [
            PredictionRow(f"p{i}", "churn", 1, t, x, {"prediction": True}, 1.0)
            for i, t, x in zip(ids, at, inputs, strict=True)
        ]
    )


def outcomes(customers: list[int], days: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer": customers,
            "churned": [c % 2 == 0 for c in customers],
            "observed": [T0 + timedelta(days=d) for d in days],
        }
    )


def labels(store: Store) -> dict[str, object]:
    return {pid: label.label for pid, label in store.feedback.get("churn", [f"p{i}" for i in range(10)]).items()}


def sync(store: Store, *, overlap: timedelta = timedelta(0)) -> tuple[int, int]:
    load = sync_label_source(store, "churn", SOURCE, incremental=True, overlap=overlap)
    return load.outcomes, load.stored


def test_a_second_sync_reads_only_the_new_rows_and_late_labels_still_attach(store: Store) -> None:
    register(store)
    store.models.promote("churn", 1)
    predict(store, range(6))
    put_dataset(store, "outcomes", outcomes([0, 1, 2], [0, 1, 2]))
    assert sync(store) == (3, 3)  # the first sync reads every row
    assert store.feedback.sync_position("churn", "outcomes").seq == 1  # type: ignore[union-attr]
    assert sync(store) == (0, 0)  # nothing new: nothing read
    put_dataset(store, "outcomes", outcomes([3, 4], [3, 4]))
    assert sync(store) == (2, 2)  # only the new part
    put_dataset(store, "outcomes", outcomes([1, 5], [9, 30]))  # p5's label arrives 25 days late
    assert sync(store) == (2, 1)  # p1 kept its first label; p5's late one attaches
    assert labels(store) == {"p0": True, "p1": False, "p2": True, "p3": False, "p4": True, "p5": False}
    position = store.feedback.sync_position("churn", "outcomes")
    assert position is not None and (position.seq, position.rows) == (3, 7)
    full = sync_label_source(store, "churn", SOURCE)  # `loopline feedback sync`: the whole dataset, as before
    assert (full.outcomes, full.stored) == (7, 0)


def test_the_overlap_reads_again_what_was_committed_before_a_prediction_was_logged(store: Store) -> None:
    register(store)
    store.models.promote("churn", 1)
    predict(store, range(2))
    put_dataset(store, "outcomes", outcomes([0, 1, 7], [0, 1, 7]))
    assert sync(store) == (3, 2)  # p7 is not logged yet (the service's log flushes asynchronously)
    predict(store, range(7, 8))
    assert sync(store) == (0, 0)  # without an overlap its outcome is behind the position
    assert sync(store, overlap=timedelta(minutes=1)) == (3, 1)  # committed within the minute: read again
    assert labels(store)["p7"] is False


def test_a_dataset_rewritten_shorter_is_read_again_from_the_start(store: Store) -> None:
    register(store)
    store.models.promote("churn", 1)
    predict(store, range(3))
    store.feedback.set_sync_position("churn", "outcomes", 99, 0)  # ahead of every part: the dataset was replaced
    put_dataset(store, "outcomes", outcomes([0, 1, 2], [0, 1, 2]))
    assert sync(store) == (3, 3)


def test_a_loop_tick_syncs_only_the_new_rows(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from loopline.core.config import LoopConfig, MonitorConfig
    from loopline.run import _feedback
    from loopline.run._loop_windows import prepare

    monkeypatch.setattr(_feedback, "SYNC_OVERLAP", timedelta(0))  # ticks here are milliseconds apart
    register(store)
    store.models.promote("churn", 1)
    predict(store, range(4))
    config = MonitorConfig(model="churn", labels=SOURCE, loop=LoopConfig(window=None, label_horizon="1000w"))
    put_dataset(store, "outcomes", outcomes([0, 1], [0, 1]))
    now = datetime.now(UTC)
    assert prepare(store, config, now).details["labels"] == {"stored": 2, "updated": 0, "rows": 4, "outcomes": 2}
    assert prepare(store, config, now).details["labels"]["outcomes"] == 0
    put_dataset(store, "outcomes", outcomes([3], [40]))  # p3's label, 37 days late
    assert prepare(store, config, now).details["labels"] == {"stored": 1, "updated": 0, "rows": 2, "outcomes": 1}
    assert labels(store) == {"p0": True, "p1": False, "p3": False}
