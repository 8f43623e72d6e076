"""Database sources: ``postgres``, ``mysql`` (MariaDB), ``sqlite``, ``sql`` (any SQLAlchemy URL), ``duckdb``.

    type: postgres
    url: postgresql://loader@db.internal:5432/shop     # never a password here
    password_env: SHOP_DB_PASSWORD                      # or url_env: SHOP_DB_URL (the whole URL)
    table: orders                                       # or query: SELECT ... (exactly one)
    watermark: updated_at                               # increasing column: incremental reads
    key: id                                             # unique tie-breaker for rows sharing a watermark
    batch_rows: 100000                                  # default: the engine's limits.max_rows

Positions:

- With ``watermark``: ``{"watermark": <last value as JSON>, "key": <last key or None>}``. Rows are read
  ``ORDER BY watermark, key LIMIT batch_rows``, strictly after the position, so every batch's position is
  exact and restarting from it yields exactly the rest. Timestamps travel as ISO strings in UTC.
  Without ``key``, a batch that ends inside a run of equal watermark values is extended to the whole run
  (it may then exceed ``batch_rows``), and rows that later arrive with an already-read watermark value are
  not seen: give ``key`` when the watermark is not unique. Rows whose watermark is NULL are never read.
  The watermark must grow at commit time (a row committed late with an older ``updated_at`` is missed).
- Rows whose watermark is NULL cannot be ordered, so incremental reads skip them; their count is reported
  as a dead letter whenever it grows (never silently).
- Without ``watermark``: each run is a full snapshot; the last batch's position is
  ``{"snapshot": <ISO time the read began>}``. With ``key`` the snapshot is paged by key and resumable
  mid-way (``{"snapshot": ..., "key": ...}``); without it, a read interrupted mid-way starts over.
  With ``follow`` a snapshot source reads once, then idles.

Drivers (``driver: auto``): connectorx for postgres and mysql (fastest into Arrow here; ADBC with
``driver: adbc``), SQLAlchemy + fetchmany for sqlite and sql (and ``driver: sqlalchemy``), DuckDB's own
Arrow output for duckdb. Column types are stable across batches (see ``_sql_types``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field, model_validator
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from loopline.core.errors import ConfigError, DataError, did_you_mean
from loopline.ingest._source import Batch, Limits, Reject, Source, SourceConfig
from loopline.ingest._sql_drivers import AdbcDriver, ConnectorxDriver, Driver, DuckdbDriver, SqlAlchemyDriver
from loopline.ingest._sql_guard import check_query, sqlglot_dialect
from loopline.ingest._sql_query import (
    check_identifier,
    check_table,
    from_json,
    keyset_sql,
    source_sql,
    ties_sql,
    to_json,
)
from loopline.ingest._sql_types import Schema

DriverName = Literal["auto", "connectorx", "adbc", "sqlalchemy"]


class _QueryConfig(SourceConfig):
    """What to read and how to page it (shared by every database source)."""

    table: str | None = None
    query: str | None = None
    watermark: str | None = None
    key: str | None = None
    batch_rows: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check_query(self) -> _QueryConfig:
        if (self.table is None) == (self.query is None):
            raise ConfigError(
                "give exactly one of `table` and `query`.",
                key="table" if self.table is None else "query",
                hint="`table: orders` reads a whole table; `query: SELECT ...` reads what the query returns.",
            )
        if self.table is not None:
            check_table(self.table)
        if self.query is not None:
            known, dialect = self._query_dialect()
            if known:
                check_query(self.query, dialect)
            elif not self.query.strip().rstrip(";").strip():
                raise ConfigError("`query` is empty.", key="query", hint="Write a SELECT statement.")
        for key in ("watermark", "key"):
            value = getattr(self, key)
            if value is not None:
                check_identifier(value, key)
        if self.key is not None and self.key == self.watermark:
            raise ConfigError("`key` and `watermark` name the same column.", key="key", hint="Drop `key`.")
        return self

    def _query_dialect(self) -> tuple[bool, str | None]:
        """(whether the database's SQL dialect is known before connecting, its sqlglot name)."""
        return False, None


class SqlConfig(_QueryConfig):
    """A server database: ``url`` (no password) with ``password_env``, or ``url_env``."""

    url: str | None = None
    url_env: str | None = None
    password_env: str | None = None
    driver: DriverName = "auto"

    @model_validator(mode="after")
    def _check_url(self) -> SqlConfig:
        if (self.url is None) == (self.url_env is None):
            raise ConfigError(
                "give exactly one of `url` and `url_env`.",
                key="url",
                hint="`url: postgresql://user@host:5432/db` with `password_env: NAME`, "
                "or `url_env: NAME` naming an environment variable that holds the whole URL.",
            )
        if self.url is not None:
            url = _parse_url(self.url, "url")
            if url.password:
                raise ConfigError(
                    f"`url` holds a password ({url.render_as_string(hide_password=True)}).",
                    key="url",
                    hint="Remove it from the URL, put it in an environment variable and name that variable "
                    "in `password_env`.",
                )
        return self

    def _query_dialect(self) -> tuple[bool, str | None]:
        if self.url is None:  # url_env: the query is checked when the source opens
            return False, None
        return True, sqlglot_dialect(_parse_url(self.url, "url").get_backend_name())


class DuckdbConfig(_QueryConfig):
    """A DuckDB warehouse file (``:memory:`` for none) and a table or query (which may read lake files)."""

    path: str = ":memory:"
    read_only: bool = True

    @model_validator(mode="after")
    def _check_read_only(self) -> DuckdbConfig:
        if not self.read_only:
            raise ConfigError(
                "`read_only: false` is not accepted: a source never writes to its database.",
                key="read_only",
                hint="Remove `read_only` (the file is opened read-only); write to the file from another process.",
            )
        return self

    def _query_dialect(self) -> tuple[bool, str | None]:
        return True, "duckdb"


def _parse_url(text: str, key: str) -> URL:
    try:
        return make_url(text)
    except ArgumentError:
        raise ConfigError(
            "the database URL cannot be parsed.",
            key=key,
            hint="Write it as dialect://user@host:port/database, e.g. postgresql://loader@127.0.0.1:5432/shop.",
        ) from None


class _DatabaseSource(Source):
    """Keyset or snapshot reads over one :class:`Driver`; subclasses open the driver."""

    config: _QueryConfig

    def batches(self, position: Any, *, follow: bool = False, limits: Limits = Limits()) -> Iterator[Batch]:
        """Yield the rows after ``position`` (see the module docstring for positions)."""
        driver = self._open()
        try:
            reader = _Reader(self.config, driver, self._name())
            yield from reader.read(position, follow=follow, limits=limits)
        finally:
            driver.close()

    def _open(self) -> Driver:
        raise NotImplementedError

    def _name(self) -> str:
        return self.config.table or "the query"


class _ServerSource(_DatabaseSource):
    """A source with a URL and a driver choice."""

    config: SqlConfig
    schemes: ClassVar[tuple[str, ...]] = ()
    drivers: ClassVar[tuple[str, ...]] = ("sqlalchemy",)
    extra: ClassVar[str] = "postgres"

    def _url(self) -> tuple[URL, str | None]:
        cfg = self.config
        if cfg.url_env is not None:
            text = os.environ.get(cfg.url_env)
            if not text:
                raise ConfigError(
                    f"environment variable {cfg.url_env} is not set.",
                    key="url_env",
                    hint=f"Export {cfg.url_env} with the database URL.",
                )
            url = _parse_url(text, "url_env")
        else:
            url = _parse_url(cfg.url or "", "url")
        if self.schemes and url.get_backend_name() not in self.schemes:
            raise ConfigError(
                f"a {self.type_name} source needs a {self.schemes[0]}:// URL, not {url.get_backend_name()}://.",
                key="url",
                hint=f"Use `type: sql` for other databases, or fix the URL to {self.schemes[0]}://...",
            )
        if cfg.password_env is not None:
            password = os.environ.get(cfg.password_env)
            if password is None:
                raise ConfigError(
                    f"environment variable {cfg.password_env} is not set.",
                    key="password_env",
                    hint=f"Export {cfg.password_env} with the database password.",
                )
            url = url.set(password=password)
        return url, url.password if isinstance(url.password, str) else None

    def _driver_name(self) -> str:
        name = self.config.driver
        if name == "auto":
            return self.drivers[0]
        if name not in self.drivers:
            raise ConfigError(
                f"driver {name!r} cannot read a {self.type_name} source.",
                key="driver",
                hint=f"Use one of: {', '.join(self.drivers)}.",
            )
        return name

    def _open(self) -> Driver:
        url, secret = self._url()
        name = self._driver_name()
        if name == "connectorx":
            return ConnectorxDriver(url, secret, self.type_name, self.extra)
        if name == "adbc":
            return AdbcDriver(url, secret, self.type_name)
        return SqlAlchemyDriver(self._sqlalchemy_url(url), secret, self.type_name, self.extra)

    def _sqlalchemy_url(self, url: URL) -> URL:
        return url


class PostgresSource(_ServerSource):
    """PostgreSQL through connectorx (default), ADBC or SQLAlchemy + psycopg."""

    type_name = "postgres"
    Config = SqlConfig
    schemes = ("postgresql", "postgres")
    drivers = ("connectorx", "adbc", "sqlalchemy")
    extra = "postgres"

    def _sqlalchemy_url(self, url: URL) -> URL:
        return url.set(drivername="postgresql+psycopg") if "+" not in url.drivername else url


class MysqlSource(_ServerSource):
    """MySQL / MariaDB through connectorx (default) or SQLAlchemy + PyMySQL."""

    type_name = "mysql"
    Config = SqlConfig
    schemes = ("mysql", "mariadb")
    drivers = ("connectorx", "sqlalchemy")
    extra = "mysql"

    def _sqlalchemy_url(self, url: URL) -> URL:
        return url.set(drivername=f"{url.get_backend_name()}+pymysql") if "+" not in url.drivername else url


class SqliteSource(_ServerSource):
    """A SQLite file (``url: sqlite:///path/to.db``) through SQLAlchemy."""

    type_name = "sqlite"
    Config = SqlConfig
    schemes = ("sqlite",)


class GenericSqlSource(_ServerSource):
    """Any database SQLAlchemy has a dialect for (its driver installed), through SQLAlchemy + fetchmany."""

    type_name = "sql"
    Config = SqlConfig


class DuckdbSource(_DatabaseSource):
    """A DuckDB warehouse file (read-only by default), a table or a query over it and over lake files."""

    type_name = "duckdb"
    Config = DuckdbConfig
    config: DuckdbConfig

    def _open(self) -> Driver:
        return DuckdbDriver(self.config.path)


class _Reader:
    """One read: probe the columns, then keyset batches (or a snapshot) from a position."""

    def __init__(self, config: _QueryConfig, driver: Driver, name: str) -> None:
        self.cfg = config
        self.driver = driver
        self.name = name
        self.source = source_sql(config.table, config.query, driver.dialect)
        self.schema = Schema(name)
        self.types: dict[str, pa.DataType] = {}

    def read(self, position: Any, *, follow: bool, limits: Limits) -> Iterator[Batch]:
        self._probe()
        rows = self.cfg.batch_rows or limits.max_rows
        if self.cfg.watermark is None:
            yield from self._snapshot(position, rows, follow=follow, limits=limits)
        else:
            yield from self._incremental(position, rows, follow=follow, limits=limits)

    # -- columns -----------------------------------------------------------------------------------------------
    def _probe(self) -> None:
        """Fetch no (or one) row to learn the columns; unknown tables and columns get a did-you-mean."""
        bind, params = self.driver.binder()
        limit = 1 if isinstance(self.driver, SqlAlchemyDriver) else 0
        sql = keyset_sql(self.source, self.driver.dialect, watermark=None, key=None, after=None, limit=limit, bind=bind)
        try:
            table = self.driver.fetch(sql, params)
        except DataError as exc:
            self._missing_table(exc)
            raise
        self.types = {field.name: field.type for field in table.schema}
        for key in ("watermark", "key"):
            column = getattr(self.cfg, key)
            if column is not None and column not in self.types:
                hint = did_you_mean(column, self.types) or f"Columns: {', '.join(self.types)}."
                raise DataError(f"column {column!r} ({key}) is not in {self.name}.", column=column, hint=hint)
        self.schema.apply(table.slice(0, 0))

    def _missing_table(self, exc: DataError) -> None:
        if self.cfg.table is None or "cannot reach" in exc.message:
            return
        try:
            names = self.driver.tables()
        except DataError:
            return
        wanted = self.cfg.table
        if wanted in names or wanted.split(".")[-1] in names:
            return
        hint = did_you_mean(wanted, names) or (
            f"Tables: {', '.join(sorted(names)[:20])}." if names else "The database has no tables."
        )
        raise DataError(f"table {wanted!r} does not exist in {self.driver.masked_url()}.", hint=hint) from None

    # -- incremental -------------------------------------------------------------------------------------------
    def _incremental(self, position: Any, rows: int, *, follow: bool, limits: Limits) -> Iterator[Batch]:
        wm, key = self.cfg.watermark, self.cfg.key
        after = self._decode(position)
        reported = position.get("null_watermark", 0) if isinstance(position, dict) else 0
        unreadable = self._null_watermarks(reported, position)
        if unreadable is not None:
            reported = unreadable.position["null_watermark"]
            yield unreadable
        while True:
            bind, params = self.driver.binder()
            sql = keyset_sql(
                self.source, self.driver.dialect, watermark=wm, key=key, after=after, limit=rows, bind=bind
            )
            table = self.driver.fetch(sql, params)
            if table.num_rows == rows and key is None:
                table = self._complete_ties(table)
            if table.num_rows:
                after = self._last(table)
                at = _position(after, reported)
                yield self._batch(table, at)
            if table.num_rows >= rows:
                continue
            if not follow:
                return
            time.sleep(limits.max_seconds)
            last = None if after is None else _position(after, reported)
            yield Batch(rows=self.schema.empty(), position=last)

    def _null_watermarks(self, reported: int, position: Any) -> Batch | None:
        """Rows whose watermark is NULL cannot be read incrementally; say so once per new count, as a dead letter."""
        wm = self.cfg.watermark
        if wm is None:
            return None
        _, params = self.driver.binder()
        sql = f"SELECT COUNT(*) AS n FROM {self.source} WHERE {self.driver.dialect.quote(wm)} IS NULL"
        count = int(self.driver.fetch(sql, params).column(0)[0].as_py())
        if count <= reported:
            return None
        at = {**(position if isinstance(position, dict) else {"watermark": None, "key": None}), "null_watermark": count}
        reason = (
            f"{count} row(s) of {self.name} have NULL in the watermark column {wm!r}: an incremental read "
            f"cannot order them, so they are not ingested. Fill the watermark, or read without one."
        )
        return Batch(
            rows=self.schema.empty(),
            position=at,
            rejects=[Reject(reason, {"source": self.name, "null_watermark_rows": count}, "")],
        )

    def _decode(self, position: Any) -> tuple[Any, Any] | None:
        if position is None:
            return None
        if not isinstance(position, dict) or "watermark" not in position:
            raise DataError(
                f"position {position!r} is not a watermark position of {self.name}.",
                hint="The source's `watermark` changed since the last run: reset its checkpoint to read it again.",
            )
        if position["watermark"] is None:  # nothing read yet (only NULL-watermark rows were reported)
            return None
        wm_type = self.types.get(self.cfg.watermark or "")
        key_type = self.types.get(self.cfg.key or "")
        return from_json(position["watermark"], wm_type), from_json(position.get("key"), key_type)

    def _last(self, table: pa.Table) -> tuple[Any, Any]:
        wm = table.column(self.cfg.watermark)[-1].as_py()
        key = table.column(self.cfg.key)[-1].as_py() if self.cfg.key else None
        return wm, key

    def _complete_ties(self, table: pa.Table) -> pa.Table:
        """A full batch without a key: drop its last watermark run and read that run whole."""
        import pyarrow.compute as pc

        column = table.column(self.cfg.watermark or "")
        last = column[-1]
        keep = table.filter(pc.not_equal(column, last))
        bind, params = self.driver.binder()
        sql = ties_sql(
            self.source, self.driver.dialect, watermark=self.cfg.watermark or "", value=last.as_py(), bind=bind
        )
        ties = self.driver.fetch(sql, params)
        return pa.concat_tables([keep, ties.select(keep.column_names).cast(keep.schema)])

    # -- snapshot ----------------------------------------------------------------------------------------------
    def _snapshot(self, position: Any, rows: int, *, follow: bool, limits: Limits) -> Iterator[Batch]:
        started, after = _snapshot_start(position, self.cfg.key is not None)
        started = started or datetime.now(UTC).isoformat()
        pages = self._key_pages(after, rows) if self.cfg.key else self._stream_pages(rows)
        yield from self._pages(pages, started)
        while follow:
            time.sleep(limits.max_seconds)
            yield Batch(rows=self.schema.empty(), position={"snapshot": started})

    def _pages(self, pages: Iterator[tuple[pa.Table, Any]], started: str) -> Iterator[Batch]:
        """Batches with partial positions, the last one carrying ``{"snapshot": started}``."""
        previous: tuple[pa.Table, Any] | None = None
        for page in pages:
            if previous is not None:
                yield self._batch(previous[0], {"snapshot": started, **previous[1]})
            previous = page
        final = previous[0] if previous is not None else None
        if final is None:
            yield Batch(rows=self.schema.empty(), position={"snapshot": started})
        else:
            yield self._batch(final, {"snapshot": started})

    def _key_pages(self, after: Any, rows: int) -> Iterator[tuple[pa.Table, Any]]:
        key = self.cfg.key or ""
        last = None if after is None else (from_json(after, self.types.get(key)), None)
        while True:
            bind, params = self.driver.binder()
            sql = keyset_sql(
                self.source, self.driver.dialect, watermark=key, key=None, after=last, limit=rows, bind=bind
            )
            table = self.driver.fetch(sql, params)
            if table.num_rows == 0:
                return
            last = (table.column(key)[-1].as_py(), None)
            yield table, {"key": to_json(last[0])}
            if table.num_rows < rows:
                return

    def _stream_pages(self, rows: int) -> Iterator[tuple[pa.Table, Any]]:
        sql = keyset_sql(
            self.source, self.driver.dialect, watermark=None, key=None, after=None, limit=None, bind=_no_bind
        )
        done = 0
        for table in self.driver.stream(sql, rows):
            done += table.num_rows
            yield table, {"partial_rows": done}

    def _batch(self, table: pa.Table, position: dict[str, Any]) -> Batch:
        return Batch(rows=self.schema.apply(table), position=position, bytes_read=table.nbytes)


def _no_bind(name: str, value: Any) -> str:
    raise DataError(f"internal: unexpected parameter {name}={value!r} in a snapshot read.")


def _position(after: tuple[Any, Any], reported: int) -> dict[str, Any]:
    """A watermark position; ``null_watermark`` (rows already reported as unreadable) only when there are any."""
    position = {"watermark": to_json(after[0]), "key": to_json(after[1])}
    return {**position, "null_watermark": reported} if reported else position


def _snapshot_start(position: Any, keyed: bool) -> tuple[str | None, Any]:
    """(snapshot time, key) to continue a keyed snapshot read mid-way, or (None, None) for a new snapshot."""
    if position is None:
        return None, None
    if not isinstance(position, dict) or "snapshot" not in position:
        raise DataError(
            f"position {position!r} is not a snapshot position.",
            hint="The source's `watermark` was removed since the last run: reset its checkpoint to read it again.",
        )
    if keyed and "key" in position:
        return str(position["snapshot"]), position["key"]
    return None, None
