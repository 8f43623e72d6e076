"""Dataset versions: a snapshot only when the parts changed, identical snapshots never duplicated."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from alembic import command
from sqlalchemy import Column, MetaData, Table, insert, inspect

from loopline.core.errors import NotFoundError
from loopline.store import DatasetVersion, Rejected, Store
from loopline.store._engine import create_store_engine, parse_url
from loopline.store._migrate import alembic_config
from loopline.store._tables import dataset_versions


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


def test_a_version_references_its_profile_once_set(store: Store) -> None:
    store.datasets.set_schema("p", {"v": "Int64"})
    commit_part(store, "p", 0)
    first = store.datasets.create_version("p")
    assert first.profile_digest is None
    digest = store.artifacts.put_json({"rows": 1})
    store.datasets.set_profile("p", 1, digest)
    assert store.datasets.version("p", 1).profile_digest == digest
    assert store.datasets.create_version("p").profile_digest == digest  # the unchanged latest, as stored
    commit_part(store, "p", 1)
    assert store.datasets.create_version("p").profile_digest is None  # a new version has none yet
    assert [v.profile_digest for v in store.datasets.versions("p")] == [digest, None]
    with pytest.raises(NotFoundError, match="dataset 'p' has no version 9"):
        store.datasets.set_profile("p", 9, digest)


def test_migration_0003_keeps_the_versions_of_a_0002_store(store_url: str, tmp_path: Path) -> None:
    engine = create_store_engine(parse_url(store_url))
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
        conn.execute(
            insert(_without_profile()).values(
                dataset="old",
                version=1,
                rows=3,
                upto_seq=1,
                checksum="c" * 64,
                schema={"v": "Int64"},
                positions={},
                run_id=None,
                created_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
    engine.dispose()
    with Store.open(store_url, tmp_path / "artifacts") as store:
        old = store.datasets.version("old", 1)
        assert (old.rows, old.profile_digest) == (3, None)
        with store.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0002")
            assert "profile_digest" not in {c["name"] for c in inspect(conn).get_columns("dataset_versions")}
            command.upgrade(config, "head")
        assert store.datasets.version("old", 1).rows == 3


def _without_profile() -> Table:
    """``dataset_versions`` as migration 0002 left it."""
    columns = [
        Column(c.name, c.type, primary_key=c.primary_key) for c in dataset_versions.c if c.name != "profile_digest"
    ]
    return Table("dataset_versions", MetaData(), *columns)
