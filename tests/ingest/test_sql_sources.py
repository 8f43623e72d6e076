"""Database sources on the real PostgreSQL, MariaDB, SQLite and DuckDB of the machine (never skipped)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from loopline.core.errors import ConfigError, DataError, MissingExtraError
from loopline.ingest._source import SOURCES, Batch, Limits, Source
from loopline.ingest._sql_drivers import DuckdbDriver
from loopline.ingest._sql_sources import DuckdbSource
from loopline.testing._sources import check_source

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
MY_URL = "mysql://root@127.0.0.1:3306/test"
T0 = datetime(2024, 3, 1, 12, 0, 0)


class Backend:
    """A database under test: run SQL on it, and build a source of ``type_name`` reading one table."""

    def __init__(self, type_name: str, tmp_path: Path, driver: str = "auto") -> None:
        self.type_name = type_name
        self.driver = driver
        self.table = f"ll_{uuid.uuid4().hex[:10]}"
        self.path = tmp_path / "db.duckdb" if type_name == "duckdb" else tmp_path / "db.sqlite"
        self.url = {"postgres": PG_URL, "mysql": MY_URL, "sqlite": f"sqlite:///{self.path}"}.get(type_name, "")
        sa_url = {"postgres": "postgresql+psycopg://", "mysql": "mysql+pymysql://"}
        self.engine = (
            sa.create_engine(self.url.replace(self.url.split("//")[0] + "//", sa_url.get(type_name, "sqlite://")))
            if type_name != "duckdb"
            else None
        )
        ts = {"postgres": "timestamptz", "mysql": "datetime(6)", "sqlite": "timestamp", "duckdb": "timestamp"}
        self.execute(
            f"CREATE TABLE {self.table} (id bigint primary key, updated_at {ts[type_name]} null,"
            f" amount decimal(10,2), name varchar(40))"
        )

    def execute(self, sql: str, rows: list[dict[str, Any]] | None = None) -> None:
        if self.engine is None:
            import duckdb

            with duckdb.connect(str(self.path)) as conn:
                if rows:
                    conn.executemany(sql, [list(r.values()) for r in rows])
                else:
                    conn.execute(sql)
            return
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql), rows or {})

    def insert(self, rows: list[dict[str, Any]]) -> None:
        marks = ", ".join("?" for _ in range(4)) if self.engine is None else ":id, :updated_at, :amount, :name"
        self.execute(f"INSERT INTO {self.table} (id, updated_at, amount, name) VALUES ({marks})", rows)

    def source(self, **config: Any) -> Source:
        config = {"table": self.table, "watermark": "updated_at", "key": "id", **config}
        if self.type_name == "duckdb":
            config.setdefault("path", str(self.path))
        else:
            config.setdefault("url", self.url)
            if self.driver != "auto":
                config.setdefault("driver", self.driver)
        cls = SOURCES.get(self.type_name)
        return cls(cls.Config.model_validate(config))

    def close(self) -> None:
        self.execute(f"DROP TABLE IF EXISTS {self.table}")
        if self.engine is not None:
            self.engine.dispose()


BACKENDS = [
    pytest.param(("postgres", "connectorx"), id="postgres-connectorx"),
    pytest.param(("postgres", "adbc"), id="postgres-adbc"),
    pytest.param(("postgres", "sqlalchemy"), id="postgres-sqlalchemy"),
    pytest.param(("mysql", "connectorx"), id="mysql-connectorx"),
    pytest.param(("mysql", "sqlalchemy"), id="mysql-sqlalchemy"),
    pytest.param(("sqlite", "auto"), id="sqlite"),
    pytest.param(("duckdb", "auto"), id="duckdb"),
]


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    type_name, driver = request.param
    try:
        backend = Backend(type_name, tmp_path, driver)
    except sa.exc.OperationalError as exc:
        pytest.fail(f"{type_name} is unreachable: {exc.orig}", pytrace=False)
    yield backend
    backend.close()


def rows(start: int, count: int, *, every: int = 3, at: datetime = T0) -> list[dict[str, Any]]:
    """``count`` rows from id ``start``; ``every`` consecutive rows share one updated_at (ties)."""
    return [
        {"id": i, "updated_at": at + timedelta(seconds=i // every), "amount": f"{i}.25", "name": f"n'{i}\\"}
        for i in range(start, start + count)
    ]


def read(source: Source, position: Any = None, batch_rows: int = 4) -> list[Batch]:
    with source:
        return list(source.batches(position, limits=Limits(max_rows=batch_rows)))


def ids(batches: list[Batch]) -> list[int]:
    return [i for b in batches for i in b.rows["id"].to_list()]


def test_the_source_contract_holds(db: Backend) -> None:
    check_source(db.source, db.insert, key="id", rows=rows, batch_rows=4)


def test_full_then_incremental_reads_see_inserts_and_updates_once(db: Backend) -> None:
    db.insert(rows(0, 10))
    first = read(db.source())
    assert ids(first) == list(range(10)) and [b.rows.height for b in first] == [4, 4, 2]
    schema = first[0].rows.schema
    assert all(b.rows.schema == schema for b in first)
    assert schema["amount"] == pl.Float64 and schema["id"] == pl.Int64
    if db.type_name != "sqlite":  # SQLite stores timestamps as text
        assert schema["updated_at"] == pl.Datetime("us", "UTC")
        assert first[0].rows["updated_at"][0] == T0.replace(tzinfo=UTC)
    assert first[0].rows["amount"][1] == 1.25 and first[0].rows["name"][2] == "n'2\\"
    later = T0 + timedelta(hours=1)
    db.insert(rows(10, 2, at=later))
    db.execute(f"UPDATE {db.table} SET updated_at = '{(later + timedelta(hours=1)).isoformat(sep=' ')}' WHERE id = 4")
    second = read(db.source(), first[-1].position)
    assert ids(second) == [10, 11, 4]
    assert read(db.source(), second[-1].position) == []
    assert second[-1].rows.schema == schema


def test_resuming_from_any_position_gives_exactly_the_rest(db: Backend) -> None:
    db.insert(rows(0, 11, every=5))  # runs of 5 equal watermarks cross batch boundaries
    batches = read(db.source(), batch_rows=3)
    assert ids(batches) == list(range(11))
    for index, batch in enumerate(batches):
        assert ids(read(db.source(), batch.position, batch_rows=3)) == ids(batches[index + 1 :])


def test_without_a_key_a_batch_takes_the_whole_run_of_equal_watermarks(db: Backend) -> None:
    db.insert(rows(0, 10, every=4))
    batches = read(db.source(key=None), batch_rows=3)
    assert sorted(ids(batches)) == list(range(10))
    assert [b.rows.height for b in batches] == [4, 4, 2]


def test_without_a_watermark_each_read_is_a_snapshot(db: Backend) -> None:
    db.insert(rows(0, 7))
    batches = read(db.source(watermark=None, key=None), batch_rows=3)
    assert sorted(ids(batches)) == list(range(7))
    assert set(batches[-1].position) == {"snapshot"}
    keyed = read(db.source(watermark=None), batch_rows=3)
    assert ids(keyed) == list(range(7)) and set(keyed[-1].position) == {"snapshot"}
    assert ids(read(db.source(watermark=None), keyed[0].position, batch_rows=3)) == [3, 4, 5, 6]
    assert sorted(ids(read(db.source(watermark=None), keyed[-1].position))) == list(range(7))


def test_a_query_reads_like_a_table(db: Backend) -> None:
    db.insert(rows(0, 6))
    source = db.source(table=None, query=f"SELECT id, updated_at, amount * 2 AS twice FROM {db.table} WHERE id <> 3;")
    batches = read(source)
    assert ids(batches) == [0, 1, 2, 4, 5]
    assert batches[0].rows["twice"].to_list()[:2] == [0.5, 2.5]


def test_unknown_table_and_column_get_a_did_you_mean(db: Backend) -> None:
    db.insert(rows(0, 1))
    with pytest.raises(DataError, match=rf"table '{db.table}x' does not exist.*Did you mean '{db.table}'"):
        read(db.source(table=db.table + "x"))
    with pytest.raises(DataError, match=r"column 'updatd_at' \(watermark\) is not in .*Did you mean 'updated_at'"):
        read(db.source(watermark="updatd_at"))


def test_follow_polls_and_yields_empty_batches_while_idle(db: Backend) -> None:
    db.insert(rows(0, 2))
    seen: list[Batch] = []
    with db.source() as source:
        for batch in source.batches(None, follow=True, limits=Limits(max_rows=10, max_seconds=0.05)):
            seen.append(batch)
            if len(seen) == 2:
                assert batch.rows.height == 0 and batch.position == seen[0].position
                db.insert(rows(2, 1, at=T0 + timedelta(days=1)))
            if ids(seen) == [0, 1, 2]:
                break
    assert ids(seen) == [0, 1, 2]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"table": "t; DROP TABLE x"}, r"table 't; DROP TABLE x' is not a plain identifier"),
        ({"table": 'a"."b'}, r"is not a plain identifier"),
        ({"table": "a.b.c"}, r"too many dots"),
        ({"table": "t", "watermark": "x`) OR 1=1 --"}, r"watermark .* is not a plain identifier"),
        ({"table": "t", "key": "id\x00"}, r"key .* is not a plain identifier"),
        ({"table": "t", "query": "SELECT 1"}, r"exactly one of `table` and `query`"),
        ({}, r"exactly one of `table` and `query`"),
        ({"table": "t", "watermark": "id", "key": "id"}, r"name the same column"),
    ],
)
def test_bad_configs_are_refused_before_any_sql(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SOURCES.get("postgres").Config.model_validate({"url": PG_URL, **config})


def test_a_password_never_reaches_config_or_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s3cr3t-Pa55"
    cls = SOURCES.get("postgres")
    with pytest.raises(ConfigError, match=r"holds a password \(postgresql://u:\*\*\*@h/d\).*password_env") as caught:
        cls.Config.model_validate({"url": f"postgresql://u:{secret}@h/d", "table": "t"})
    assert secret not in str(caught.value)
    monkeypatch.setenv("LL_TEST_PW", secret)
    for driver, url in [("connectorx", PG_URL.replace("5432", "5999")), ("sqlalchemy", PG_URL + "_missing_db")]:
        source = cls(
            cls.Config.model_validate({"url": url, "password_env": "LL_TEST_PW", "table": "t", "driver": driver})
        )
        with pytest.raises(
            DataError, match=r"cannot reach the postgres database at .*\*\*\*.*Check that the server"
        ) as c:
            read(source)
        assert secret not in str(c.value) and secret not in repr(c.value.__cause__)
    monkeypatch.setenv("LL_TEST_URL", f"mysql://root:{secret}@127.0.0.1:3306/test")
    source = SOURCES.get("mysql")(SOURCES.get("mysql").Config.model_validate({"url_env": "LL_TEST_URL", "table": "t"}))
    with pytest.raises(DataError, match="cannot reach the mysql database") as c:
        read(source)
    assert secret not in str(c.value)


def test_a_missing_environment_variable_names_the_key() -> None:
    cls = SOURCES.get("postgres")
    source = cls(cls.Config.model_validate({"url": PG_URL, "password_env": "LL_NOT_SET_ANYWHERE", "table": "t"}))
    with pytest.raises(ConfigError, match="LL_NOT_SET_ANYWHERE is not set"):
        read(source)


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "connectorx", None)
    cls = SOURCES.get("mysql")
    with pytest.raises(MissingExtraError, match=r"pip install 'loopline\[mysql\]'"):
        read(cls(cls.Config.model_validate({"url": MY_URL, "table": "t"})))
    monkeypatch.setitem(sys.modules, "duckdb", None)
    with pytest.raises(MissingExtraError, match=r"loopline\[duckdb\]"):
        read(DuckdbSource(DuckdbSource.Config.model_validate({"path": str(tmp_path / "x.duckdb"), "table": "t"})))


def test_duckdb_queries_lake_files(tmp_path: Path) -> None:
    lake = tmp_path / "lake.parquet"
    pl.DataFrame({"id": [3, 1, 2], "ts": [T0, T0, T0 + timedelta(days=1)]}).write_parquet(lake)
    source = DuckdbSource(
        DuckdbSource.Config.model_validate(
            {"query": f"SELECT * FROM read_parquet('{lake}')", "watermark": "ts", "key": "id"}
        )
    )
    batches = read(source, batch_rows=2)
    assert ids(batches) == [1, 3, 2]
    assert batches[0].position == {"watermark": "2024-03-01T12:00:00+00:00", "key": 3}


def test_sqlite_and_sql_read_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "same.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id integer primary key, v text)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    engine.dispose()
    for type_name in ("sqlite", "sql"):
        cls = SOURCES.get(type_name)
        source = cls(cls.Config.model_validate({"url": f"sqlite:///{path}", "table": "t", "watermark": "id"}))
        assert [b.position for b in read(source)] == [{"watermark": 2, "key": None}]


# -- a source never changes the source -------------------------------------------------------------------------


def test_a_query_that_could_write_is_refused_before_it_is_sent(db: Backend) -> None:
    db.insert(rows(0, 3))
    t = db.table
    for query in [
        f"SELECT 1 AS id) AS x; DROP TABLE {t}; --",
        f"SELECT 1 AS id) AS x; COMMIT; DELETE FROM {t}; COMMIT; --",
        f"SELECT * FROM {t}; DELETE FROM {t}",
        f"WITH d AS (DELETE FROM {t} RETURNING id) SELECT id FROM d",
        f"WITH i AS (INSERT INTO {t} (id) VALUES (99) RETURNING id) SELECT id FROM i",
        f"SELECT * INTO {t}_copy FROM {t}",
        f"SELECT * FROM {t} FOR UPDATE",
        f"SELECT id /*!, 1) AS x; DELETE FROM {t}; -- */ FROM {t}",
    ]:
        with pytest.raises(ConfigError, match=r"`query` (must be exactly one read-only SELECT|cannot be parsed)"):
            read(db.source(table=None, query=query))
    assert ids(read(db.source())) == [0, 1, 2]


def test_a_trailing_comment_in_a_query_reads(db: Backend) -> None:
    db.insert(rows(0, 2))
    assert ids(read(db.source(table=None, query=f"SELECT * FROM {db.table} -- all of it"))) == [0, 1]


def test_the_connection_itself_cannot_write(db: Backend) -> None:
    """The database-level guarantee, without the parser: the driver's own connection refuses a write."""
    db.insert(rows(0, 3))
    expected = {"duckdb": "a source runs exactly one SELECT"}.get(  # DuckDB's own parser, before the read-only file
        db.type_name, "tried to write .* which a source never does.*read-only"
    )
    driver = db.source()._open()  # type: ignore[attr-defined]
    try:
        for sql in (f"DELETE FROM {db.table} RETURNING id", f"INSERT INTO {db.table} (id) VALUES (99) RETURNING id"):
            with pytest.raises(DataError, match=expected):
                driver.fetch(sql)
    finally:
        driver.close()
    assert ids(read(db.source())) == [0, 1, 2]


@pytest.mark.parametrize("driver", ["connectorx", "adbc", "sqlalchemy"])
def test_postgres_functions_that_write_fail_in_the_read_only_transaction(driver: str, tmp_path: Path) -> None:
    db = Backend("postgres", tmp_path, driver)
    t = db.table
    try:
        db.insert(rows(0, 3))
        db.execute(f"CREATE SEQUENCE {t}_seq")
        db.execute(
            f"CREATE FUNCTION {t}_wipe() RETURNS int LANGUAGE plpgsql AS $$ BEGIN DELETE FROM {t}; RETURN 1; END $$"
        )
        db.execute(  # a function that first turns the session's default read-write, then writes
            f"CREATE FUNCTION {t}_flip() RETURNS int LANGUAGE plpgsql AS $$ BEGIN"
            f" PERFORM set_config('default_transaction_read_only', 'off', false); INSERT INTO {t} (id) VALUES (99);"
            f" RETURN 1; END $$"
        )
        for query in [
            f"SELECT id, updated_at, {t}_wipe() AS w FROM {t}",
            f"SELECT id, updated_at, {t}_flip() AS w FROM {t}",
            f"SELECT id, updated_at, nextval('{t}_seq') AS n FROM {t}",
            f"SELECT id, updated_at, setval('{t}_seq', 42) AS n FROM {t}",
        ]:
            with pytest.raises(DataError, match=r"tried to write .*read-only transaction.*remove the statement"):
                read(db.source(table=None, query=query))
        assert ids(read(db.source())) == [0, 1, 2]
        assert db.engine is not None
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql(f"SELECT last_value, is_called FROM {t}_seq").one() == (1, False)
    finally:
        db.execute(f"DROP FUNCTION IF EXISTS {t}_wipe(); DROP FUNCTION IF EXISTS {t}_flip()")
        db.execute(f"DROP SEQUENCE IF EXISTS {t}_seq")
        db.close()


@pytest.mark.parametrize("driver", ["connectorx", "sqlalchemy"])
def test_mariadb_functions_that_write_fail_in_the_read_only_transaction(driver: str, tmp_path: Path) -> None:
    db = Backend("mysql", tmp_path, driver)
    t = db.table
    try:
        db.insert(rows(0, 3))
        db.execute(f"CREATE TABLE {t}_other (id int)")  # MariaDB forbids a function to write the table read
        db.execute(f"INSERT INTO {t}_other VALUES (1), (2)")
        db.execute(
            f"CREATE FUNCTION {t}_wipe() RETURNS INT MODIFIES SQL DATA BEGIN DELETE FROM {t}_other; RETURN 1; END"
        )
        db.execute(  # a function that first makes the session read-write, then writes
            f"CREATE FUNCTION {t}_flip() RETURNS INT MODIFIES SQL DATA BEGIN SET SESSION TRANSACTION READ WRITE;"
            f" INSERT INTO {t}_other (id) VALUES (99); RETURN 1; END"
        )
        for name in ("wipe", "flip"):
            with pytest.raises(DataError, match=r"tried to write .*READ ONLY transaction"):
                read(db.source(table=None, query=f"SELECT id, updated_at, {t}_{name}() AS w FROM {t}"))
        assert ids(read(db.source())) == [0, 1, 2]
        assert ids(read(db.source(table=f"{t}_other", watermark="id", key=None))) == [1, 2]
    finally:
        db.execute(f"DROP FUNCTION IF EXISTS {t}_wipe")
        db.execute(f"DROP FUNCTION IF EXISTS {t}_flip")
        db.execute(f"DROP TABLE IF EXISTS {t}_other")
        db.close()


def test_duckdb_opens_the_file_read_only(tmp_path: Path) -> None:
    db = Backend("duckdb", tmp_path)
    try:
        db.insert(rows(0, 3))
        db.execute(f"CREATE SEQUENCE {db.table}_seq")
        with pytest.raises(DataError, match="tried to write"):
            read(db.source(table=None, query=f"SELECT id, updated_at, nextval('{db.table}_seq') AS n FROM {db.table}"))
        driver = DuckdbDriver(str(db.path))
        conn = driver._connect()
        try:
            with pytest.raises(Exception, match="read-only mode"):
                conn.execute(f"DELETE FROM {db.table}")
        finally:
            conn.close()
        assert ids(read(db.source())) == [0, 1, 2]
    finally:
        db.close()


def test_a_duckdb_pivot_reads_when_it_lists_its_values(tmp_path: Path) -> None:
    def source(query: str) -> Source:
        return DuckdbSource(DuckdbSource.Config.model_validate({"query": query, "watermark": "k"}))

    values = "(VALUES (1, 'a', 10), (1, 'b', 20), (2, 'a', 30)) AS v(k, c, x)"
    batches = read(source(f"PIVOT (SELECT * FROM {values}) ON c IN ('a', 'b') USING sum(x)"))
    assert batches[0].rows.sort("k").to_dicts() == [{"k": 1, "a": 10, "b": 20}, {"k": 2, "a": 30, "b": None}]
    with pytest.raises(DataError, match=r"refused to run MULTI .*must list its values"):
        read(source(f"PIVOT (SELECT * FROM {values}) ON c USING sum(x)"))
