"""Datasets summarised, paged and counted in SQL (the dashboard's datasets pages)."""

from __future__ import annotations

import polars as pl

from loopline.store import Rejected, Store


def commit(store: Store, dataset: str, source: str, offset: int, rows: int = 1, rejects: int = 0) -> None:
    digest = store.artifacts.put_table(pl.DataFrame({"v": list(range(rows))}))
    bad = [Rejected(f"bad {offset}.{i}", {"offset": offset}, f"raw {offset}.{i}") for i in range(rejects)]
    store.datasets.commit_batch(
        dataset, source, digest=digest, rows=rows, size=8, position={"offset": offset}, rejects=bad
    )


def test_summaries_aggregate_versions_parts_checkpoints_and_waiting_dead_letters(store: Store) -> None:
    assert store.datasets.summaries() == []
    store.datasets.set_schema("b", {"v": "Int64", "w": "String"})
    commit(store, "b", "kafka", 1, rows=3, rejects=2)
    store.datasets.create_version("b")
    commit(store, "b", "files", 2, rows=4)
    second = store.datasets.create_version("b")
    commit(store, "b", "kafka", 3, rows=5, rejects=1)  # after the latest version
    store.datasets.set_schema("a", {"v": "Int64"})  # never ingested: no part, no version
    store.datasets.mark_replayed([store.datasets.dead_letters("b")[0].id])

    a, b = store.datasets.summaries()
    assert (a.dataset, a.version, a.rows, a.parts, a.part_rows, a.last_ingest_at, a.dead_letters, a.columns) == (
        "a", None, None, 0, 0, None, 0, 1,
    )  # fmt: skip
    assert (b.dataset, b.version, b.rows, b.parts, b.part_rows, b.dead_letters, b.columns) == (
        "b", 2, 7, 3, 12, 2, 2,
    )  # fmt: skip
    assert b.last_ingest_at is not None and b.last_ingest_at >= second.created_at
    assert b.last_ingest_at.tzinfo is not None
    assert [s.dataset for s in store.datasets.summaries(offset=1, limit=5)] == ["b"]
    assert [s.dataset for s in store.datasets.summaries(limit=1)] == ["a"]
    assert store.datasets.summaries(name="b") == [b]
    assert store.datasets.summaries(name="nope") == []


def test_versions_page_is_newest_first_and_counted(store: Store) -> None:
    store.datasets.set_schema("d", {"v": "Int64"})
    for offset in range(5):
        commit(store, "d", "src", offset)
        store.datasets.create_version("d")
    assert [v.version for v in store.datasets.versions_page("d", limit=2)] == [5, 4]
    assert [v.version for v in store.datasets.versions_page("d", offset=4, limit=2)] == [1]
    assert store.datasets.versions_page("d", offset=2, limit=1)[0] == store.datasets.version("d", 3)
    assert store.datasets.version_count("d") == 5
    assert store.datasets.version_count("other") == 0


def test_sources_give_each_checkpoint_with_its_parts(store: Store) -> None:
    store.datasets.set_schema("d", {"v": "Int64"})
    commit(store, "d", "kafka", 1, rows=2)
    commit(store, "d", "kafka", 2, rows=3)
    commit(store, "d", "files", 7, rows=1)
    store.datasets.commit_batch("d", "empty", digest=None, rows=0, size=0, position={"offset": 0})
    commit(store, "other", "kafka", 99)
    empty, files, kafka = store.datasets.sources("d")
    assert (kafka.source, kafka.position, kafka.rows, kafka.parts) == ("kafka", {"offset": 2}, 5, 2)
    assert (files.source, files.position, files.rows, files.parts) == ("files", {"offset": 7}, 1, 1)
    assert (empty.source, empty.rows, empty.parts, empty.newest_part_at) == ("empty", 0, 0, None)
    assert kafka.newest_part_at is not None and kafka.newest_part_at <= kafka.updated_at
    assert store.datasets.sources("nope") == []


def test_dead_letters_page_is_newest_first_with_or_without_the_replayed(store: Store) -> None:
    store.datasets.set_schema("d", {"v": "Int64"})
    commit(store, "d", "src", 1, rejects=3)
    commit(store, "d", "src", 2, rejects=2)
    commit(store, "other", "src", 3, rejects=4)
    oldest_first = store.datasets.dead_letters("d")
    store.datasets.mark_replayed([oldest_first[0].id])
    newest = store.datasets.dead_letters_page("d", limit=2)
    assert [d.reason for d in newest] == ["bad 2.1", "bad 2.0"]
    assert [d.reason for d in store.datasets.dead_letters_page("d", offset=2, limit=10)] == [
        "bad 1.2", "bad 1.1", "bad 1.0",
    ]  # fmt: skip
    waiting = store.datasets.dead_letters_page("d", include_replayed=False)
    assert [d.reason for d in waiting] == ["bad 2.1", "bad 2.0", "bad 1.2", "bad 1.1"]
    assert store.datasets.dead_letter_count("d") == 5
    assert store.datasets.dead_letter_count("d", include_replayed=False) == 4
    assert store.datasets.dead_letter_count("nope") == 0
