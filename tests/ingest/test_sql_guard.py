"""A source's query is exactly one read-only SELECT, checked by sqlglot in the database's dialect."""

from __future__ import annotations

import pytest

from loopline.core.errors import ConfigError
from loopline.ingest._source import SOURCES
from loopline.ingest._sql_guard import check_query
from loopline.ingest._sql_query import POSTGRES, source_sql

READS = [
    ("postgres", "SELECT id, amount * 2 AS twice FROM orders WHERE id <> 3;"),
    ("postgres", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r"),
    ("postgres", "(SELECT 1 AS id) UNION ALL (SELECT 2)"),
    ("postgres", "SELECT $$it's ) AS x; DROP TABLE t; --$$ AS text"),
    ("postgres", "SELECT 1 AS id /* a /* nested */ comment ) */ -- and a trailing one"),
    ("postgres", "SELECT nextval('s') AS n"),  # parses; the read-only transaction refuses it at run time
    ("postgres", "VALUES (1), (2)"),
    ("mysql", "SELECT /*+ MAX_EXECUTION_TIME(1000) */ `id` FROM `orders` USE INDEX (i) WHERE name REGEXP 'a'"),
    ("mysql", "SELECT 'a\\') AS x; DROP TABLE t; -- ' AS s"),  # the backslash escapes the quote: one string
    ("sqlite", "SELECT * FROM t WHERE name GLOB 'a*'"),
    ("duckdb", "SELECT * FROM read_parquet('lake/*.parquet')"),
    ("duckdb", "FROM orders SELECT id"),
    (None, "SELECT 1;;"),
]

WRITES = [
    ("postgres", "SELECT 1 AS id) AS x; DROP TABLE orders; --", "cannot be parsed as postgres SQL"),
    ("postgres", "SELECT 1 AS id) AS x; COMMIT; DROP TABLE orders; COMMIT; --", "cannot be parsed"),
    ("postgres", "SELECT * FROM orders; DELETE FROM orders", "holds 2 statements"),
    ("postgres", "WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d", "contains a DELETE"),
    ("postgres", "WITH i AS (INSERT INTO orders (id) VALUES (9) RETURNING id) SELECT id FROM i", "contains an INSERT"),
    ("postgres", "WITH u AS (UPDATE orders SET id = 0 RETURNING id) SELECT id FROM u", "contains an UPDATE"),
    ("postgres", "SELECT * INTO orders_copy FROM orders", r"SELECT \.\.\. INTO"),
    ("postgres", "SELECT * FROM orders FOR UPDATE", "row lock"),
    ("postgres", "SELECT * FROM orders FOR SHARE", "row lock"),
    ("postgres", "DELETE FROM orders RETURNING *", "is a DELETE statement"),
    ("postgres", "TRUNCATE orders", "TRUNCATE"),
    ("postgres", "COPY orders TO '/tmp/orders.csv'", "is a COPY statement"),
    ("postgres", "SET default_transaction_read_only = off", "is a SET statement"),
    ("postgres", "EXPLAIN ANALYZE DELETE FROM orders", "EXPLAIN"),
    ("postgres", "SELECT dblink_exec('dbname=shop', 'DROP TABLE orders')", "outside the read-only transaction"),
    ("postgres", "SELECT 'unterminated", "cannot be parsed"),
    ("mysql", "SELECT 1 AS id /*!) AS x; DROP TABLE orders; -- */", "executable comment"),
    ("mysql", "SELECT 1 /*M!100000 , (SELECT 1) */", "executable comment"),
    ("mysql", "SELECT * FROM orders LOCK IN SHARE MODE", "row lock"),
    ("mysql", "SELECT id INTO @x FROM orders", "INTO"),
    ("sqlite", "PRAGMA query_only = 0", "PRAGMA"),
    ("sqlite", "ATTACH 'other.db' AS other", "ATTACH"),
    ("duckdb", "COPY (SELECT 1) TO 'out.csv'", "COPY"),
    ("duckdb", "INSTALL httpfs", "INSTALL"),
    ("duckdb", "SELECT 1; DROP TABLE orders", "holds 2 statements"),
    (None, "", "is empty"),
]


@pytest.mark.parametrize(("dialect", "query"), READS)
def test_read_only_queries_pass_unchanged(dialect: str | None, query: str) -> None:
    assert check_query(query, dialect) == query.rstrip(";")


@pytest.mark.parametrize(("dialect", "query", "reason"), WRITES)
def test_anything_but_one_read_only_select_is_refused(dialect: str | None, query: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as caught:
        check_query(query, dialect)
    assert caught.value.key == "query"
    assert caught.value.hint is not None and "one SELECT" in caught.value.hint


def test_a_trailing_comment_cannot_swallow_the_wrapper() -> None:
    assert source_sql(None, "SELECT 1 AS id -- the rest of the line", POSTGRES).endswith("\n) AS _ll_src")


@pytest.mark.parametrize(
    ("type_name", "config"),
    [
        ("postgres", {"url": "postgresql://u@h/d"}),
        ("mysql", {"url": "mysql://u@h/d"}),
        ("sqlite", {"url": "sqlite:///x.db"}),
        ("sql", {"url": "mssql+pyodbc://u@h/d"}),
        ("duckdb", {}),
    ],
)
def test_each_source_checks_its_query_when_the_pipeline_loads(type_name: str, config: dict[str, str]) -> None:
    cls = SOURCES.get(type_name)
    with pytest.raises(ConfigError, match="holds 2 statements"):
        cls.Config.model_validate({**config, "query": "SELECT 1 AS a; DROP TABLE t"})
    assert cls.Config.model_validate({**config, "query": "SELECT 1 AS a"}).query == "SELECT 1 AS a"


def test_a_url_from_the_environment_has_its_query_checked_when_the_source_opens() -> None:
    cls = SOURCES.get("postgres")
    config = cls.Config.model_validate({"url_env": "LL_NEVER_READ", "query": "SELECT 1; DROP TABLE t"})
    assert config.query is not None  # the dialect is unknown until the URL is read: the source checks on open


def test_duckdb_cannot_be_opened_for_writing() -> None:
    with pytest.raises(ConfigError, match="read_only: false.*never writes"):
        SOURCES.get("duckdb").Config.model_validate({"path": "x.duckdb", "table": "t", "read_only": False})
