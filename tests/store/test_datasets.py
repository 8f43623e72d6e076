"""Dataset versions: a snapshot only when the parts changed, identical snapshots never duplicated."""

from __future__ import annotations

import threading

import polars as pl

from loopline.store import DatasetVersion, Rejected, Store


def commit_part(store: Store, dataset: str, offset: int) -> None:
    digest = store.artifacts.put_table(pl.DataFrame({"v": [offset]}))
    store.datasets.commit_batch(dataset, "src", digest=digest, rows=1, size=8, position={"offset": offset})


def test_a_version_is_created_only_when_parts_were_committed_since_the_latest(store: Store) -> None:
    store.datasets.set_schema("d", {"v": "Int64"})
    commit_part(store, "d", 0)
    first = store.datasets.create_version("d", run_id="r1")
    assert (first.version, first.rows, first.upto_seq) == (1, 1, 1)

    assert store.datasets.create_version("d", run_id="r2") == first  # nothing new: the latest, no new row
    store.datasets.commit_batch(  # a batch of dead letters only: no part, the content is unchanged
        "d", "src", digest=None, rows=0, size=0, position={"offset": 1}, rejects=[Rejected("bad", 1, "x")]
    )
    assert store.datasets.create_version("d", run_id="r3") == first
    assert [v.version for v in store.datasets.versions("d")] == [1]

    commit_part(store, "d", 2)
    second = store.datasets.create_version("d", run_id="r4")
    assert (second.version, second.rows, second.upto_seq, second.run_id) == (2, 2, 2, "r4")
    assert second.checksum != first.checksum
    assert second.positions == {"src": {"offset": 2}}


def test_an_empty_dataset_gets_one_version(store: Store) -> None:
    store.datasets.set_schema("empty", {"v": "Int64"})
    first = store.datasets.create_version("empty")
    assert (first.version, first.rows, first.upto_seq) == (1, 0, 0)
    assert store.datasets.create_version("empty") == first


def snapshot_together(store: Store, dataset: str, threads: int) -> list[DatasetVersion | BaseException]:
    """``create_version`` from ``threads`` threads released at once; each one's version or error."""
    barrier = threading.Barrier(threads)
    found: list[DatasetVersion | BaseException] = []

    def snapshot() -> None:
        barrier.wait()
        try:
            found.append(store.datasets.create_version(dataset))
        except BaseException as exc:
            found.append(exc)

    workers = [threading.Thread(target=snapshot) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return found


def test_concurrent_snapshots_of_the_same_parts_share_one_version(store: Store) -> None:
    store.datasets.set_schema("c", {"v": "Int64"})
    rounds = 5
    for round_ in range(rounds):
        commit_part(store, "c", round_)
        found = snapshot_together(store, "c", threads=4)
        assert {v.version if isinstance(v, DatasetVersion) else repr(v) for v in found} == {round_ + 1}
    assert [v.upto_seq for v in store.datasets.versions("c")] == list(range(1, rounds + 1))
