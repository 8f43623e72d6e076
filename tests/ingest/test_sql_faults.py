"""PostgreSQL connections dropped between batches: the engine reconnects, resumes, loses and doubles nothing."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from loopline.ingest import SOURCES, Limits
from loopline.run import ingest_source
from loopline.store import Store

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ROWS = 40_000


@pytest.fixture
def table() -> Iterator[str]:
    name = f"ll_drop_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE {name} AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, {ROWS}) AS g"
        )
    yield name
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    engine.dispose()


def terminate_readers(table: str, stop: threading.Event, killed: list[int]) -> None:
    """Terminate every other backend reading ``table``, again and again, until stopped."""
    engine = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        while not stop.is_set():
            rows = conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE %(pattern)s",
                {"pattern": f"%{table}%"},
            ).all()
            killed.extend(1 for r in rows if r[0])
            time.sleep(0.1)  # let some batches through between drops
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("driver", ["sqlalchemy", "connectorx"])
def test_dropped_connections_are_retried_from_the_checkpoint(table: str, tmp_path: Path, driver: str) -> None:
    source_type = SOURCES.get("postgres")
    config = {"url": "postgresql://postgres@127.0.0.1:5432/test", "table": table, "watermark": "id", "driver": driver}
    retried = []
    for attempt in range(5):  # a drop can land between two queries (nothing to retry): try until one lands inside
        store = Store.open(f"sqlite:///{tmp_path / f'store{attempt}.db'}", tmp_path / f"artifacts{attempt}")
        stop, killed = threading.Event(), []
        killer = threading.Thread(target=terminate_readers, args=(table, stop, killed))
        killer.start()
        try:
            report = ingest_source(
                store,
                source_type(source_type.Config.model_validate(config)),
                dataset="d",
                limits=Limits(max_rows=500),
                retries=200,
                backoff=0.001,
            )
        finally:
            stop.set()
            killer.join()
        ids = store.datasets.read("d")["id"]
        store.close()
        assert ids.len() == ROWS and set(ids.to_list()) == set(range(1, ROWS + 1))  # exact, whatever the drops
        retried.append(report.retries)
        if killed and report.retries >= 1:
            break
    assert retried[-1] >= 1, f"no attempt had a read dropped and retried (retries per attempt: {retried})"


@pytest.mark.postgres
def test_rows_with_a_null_watermark_are_reported_not_silently_skipped(tmp_path: Path) -> None:
    name = f"ll_nullwm_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {name} (id int, updated_at timestamptz)")
        conn.exec_driver_sql(f"INSERT INTO {name} VALUES (1, now()), (2, NULL), (3, now()), (4, NULL)")
    source_type = SOURCES.get("postgres")
    config = {"url": "postgresql://postgres@127.0.0.1:5432/test", "table": name, "watermark": "updated_at"}
    make = lambda: source_type(source_type.Config.model_validate(config))  # noqa: E731
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "artifacts")
    try:
        report = ingest_source(store, make(), dataset="d")
        assert report.rows == 2 and report.rejected == 1
        letter = store.datasets.dead_letters("d")[0]
        assert "2 row(s)" in letter.reason and "NULL in the watermark column 'updated_at'" in letter.reason
        assert ingest_source(store, make(), dataset="d").rejected == 0  # reported once
        with engine.begin() as conn:
            conn.exec_driver_sql(f"INSERT INTO {name} VALUES (5, NULL)")
        assert ingest_source(store, make(), dataset="d").rejected == 1  # the count grew: reported again
        assert "3 row(s)" in store.datasets.dead_letters("d")[-1].reason
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        engine.dispose()
        store.close()
