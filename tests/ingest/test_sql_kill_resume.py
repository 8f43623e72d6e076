"""Kill -9 a child ingesting a PostgreSQL table mid-run, restart it: the dataset equals the table exactly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from loopline.store import Store

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ROWS = 200_000

CHILD = """
import sys
from loopline.ingest._source import Limits
from loopline.ingest._sql_sources import PostgresSource
from loopline.run import ingest_source
from loopline.store import Store

store_url, artifacts, table = sys.argv[1:4]
store = Store.open(store_url, artifacts)
config = PostgresSource.Config.model_validate(
    {"url": "postgresql://postgres@127.0.0.1:5432/test", "table": table, "watermark": "updated_at", "key": "id"}
)
report = ingest_source(store, PostgresSource(config), dataset="orders", limits=Limits(max_rows=2_000))
print(report.status, report.rows, flush=True)
"""


@pytest.fixture
def table() -> Iterator[str]:
    name = f"ll_kill_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG)
    with engine.begin() as conn:
        # every 7 consecutive ids share one updated_at: batches end inside runs of equal watermarks
        conn.exec_driver_sql(
            f"CREATE TABLE {name} AS SELECT g AS id, timestamptz '2024-01-01 00:00:00+00' + (g / 7) * interval '1 s'"
            f" AS updated_at, md5(g::text) AS payload FROM generate_series(1, {ROWS}) AS g"
        )
    yield name
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_a_killed_ingest_resumes_with_nothing_lost_or_doubled(table: str, tmp_path: Path) -> None:
    store_url, artifacts = f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "artifacts"
    store = Store.open(store_url, artifacts)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    command = [sys.executable, str(script), store_url, str(artifacts), table]

    log = tmp_path / "child.log"
    with log.open("w") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while store.datasets.checkpoint("orders", "postgres") is None:
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            child.wait()
            pytest.fail(f"the child ended before its first commit: {log.read_text()[-2000:]}")
        time.sleep(0.02)
    time.sleep(0.3)
    child.send_signal(signal.SIGKILL)
    child.wait()
    killed_at = store.datasets.checkpoint("orders", "postgres")
    assert killed_at is not None and killed_at["watermark"] < "2024-01-01T07:56"  # killed mid-run, not at the end
    partial = store.datasets.read("orders").height
    assert 0 < partial < ROWS

    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    ids = store.datasets.read("orders")["id"].to_list()
    assert len(ids) == ROWS and set(ids) == set(range(1, ROWS + 1))
    store.close()
