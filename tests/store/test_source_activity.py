"""New rows since a time (the volume trigger's figure) and one source's committed activity, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from loopline.store import Store


def commit(store: Store, dataset: str, source: str, rows: int, offset: int) -> None:
    digest = store.artifacts.put_table(pl.DataFrame({"v": list(range(rows))}))
    store.datasets.commit_batch(dataset, source, digest=digest, rows=rows, size=8, position={"offset": offset})


def test_rows_since_counts_the_parts_committed_after_the_time_per_dataset_and_source(store: Store) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    assert store.datasets.rows_since("events", before) == 0  # nobody ingested it: no rows, no error
    commit(store, "events", "a", 3, 3)
    commit(store, "events", "b", 5, 5)
    commit(store, "other", "a", 7, 7)
    middle = datetime.now(UTC)
    commit(store, "events", "a", 2, 5)

    assert store.datasets.rows_since("events", before) == 10
    assert store.datasets.rows_since("events", before, source="a") == 5
    assert store.datasets.rows_since("events", middle) == 2
    assert store.datasets.rows_since("events", datetime.now(UTC) + timedelta(seconds=1)) == 0


def test_source_activity_joins_the_checkpoint_and_the_newest_part(store: Store) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    empty = store.datasets.source_activity("events", "a", start)
    assert (empty.rows, empty.checkpoint_at, empty.newest_part_at, empty.rows_since) == (0, None, None, 0)

    commit(store, "events", "a", 4, 4)
    commit(store, "events", "b", 9, 9)  # another source of the same dataset does not count
    store.datasets.commit_batch("events", "a", digest=None, rows=0, size=0, position={"offset": 4})  # idle batch
    activity = store.datasets.source_activity("events", "a", start)

    assert (activity.rows, activity.rows_since) == (4, 4)
    assert activity.checkpoint_at is not None and activity.newest_part_at is not None
    assert activity.checkpoint_at >= activity.newest_part_at >= start
    assert activity.newest_part_at.tzinfo is not None
    assert store.datasets.source_activity("events", "a", datetime.now(UTC) + timedelta(seconds=1)).rows_since == 0
