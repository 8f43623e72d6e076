"""Database drivers behind one small interface: a query in, an Arrow table (or a stream of them) out.

Measured on this machine (PostgreSQL 15, 2M rows x 12 columns, see benchmarks/bench_ingest_sql.py):
connectorx is the fastest into Arrow, ADBC next, SQLAlchemy + fetchmany far behind; so the postgres
and mysql sources default to connectorx. Every driver is imported when first used and a missing one
raises :class:`MissingExtraError` naming the extra. Error messages never carry the password.

A source never changes its database. Every connection is read-only at the database level and nothing
is ever committed on it (reads end with a rollback or a close):

- PostgreSQL: the session starts with ``default_transaction_read_only=on`` (the ``options`` startup
  parameter), connectorx runs its work inside ``BEGIN READ ONLY``, SQLAlchemy asks psycopg for
  ``BEGIN READ ONLY``: a function that writes (``nextval``, an INSERT in PL/pgSQL) fails.
- MySQL / MariaDB: ``SET SESSION TRANSACTION READ ONLY`` (and connectorx's ``START TRANSACTION READ ONLY``).
- SQLite: ``PRAGMA query_only = ON`` on every connection.
- DuckDB: the file is opened with ``read_only=True``; each statement is checked by DuckDB's own parser to be
  one SELECT (an in-memory database cannot be opened read-only).

Other SQLAlchemy dialects (``type: sql``) get the parser check and rollback-only, but no database-level
setting: give such a source a database user that may only SELECT.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from loopline.core.errors import DataError, MissingExtraError, SourceUnavailableError
from loopline.ingest._sql_guard import sqlglot_dialect
from loopline.ingest._sql_query import DUCKDB, MYSQL, POSTGRES, SQLITE, Binder, Dialect, literal

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

_DROPPED_WORDS = (
    "terminating connection",
    "server closed the connection",
    "adminshutdown",
    "lost connection",
    "broken pipe",
    "reset by peer",
)
_READ_ONLY_WORDS = (
    "read-only transaction",  # PostgreSQL
    "read only transaction",  # MySQL / MariaDB
    "attempt to write a readonly database",  # SQLite query_only
    "read-only mode",  # DuckDB
    "read only mode",
)
_CONNECTION_WORDS = (
    "connect",
    "connection",
    "refused",
    "timed out",
    "timeout",
    "could not translate host",
    "name or service not known",
    "server has gone away",
    "lost connection",
    "terminat",
    "authentication",
    "password",
    "access denied",
)


def _import(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(module.split(".")[0], extra) from None


class Driver:
    """One connection to one database; ``fetch`` and ``stream`` return Arrow, ``tables`` the catalog."""

    dialect: Dialect = POSTGRES

    def __init__(self, url: URL, secret: str | None, kind: str) -> None:
        self.url = url
        self.secret = secret
        self.kind = kind

    # -- to implement ------------------------------------------------------------------------------------------
    def binder(self) -> tuple[Binder, Any]:
        """A fresh ``bind(name, value)`` and the parameter collection it fills."""
        return (lambda _name, value: literal(value, self.dialect)), None

    def _fetch(self, sql: str, params: Any) -> pa.Table:
        raise NotImplementedError

    def _stream(self, sql: str, batch_rows: int) -> Iterator[pa.Table]:
        yield self._fetch(sql, None)

    def _tables(self) -> list[str]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the connection; idempotent."""

    # -- shared ------------------------------------------------------------------------------------------------
    def fetch(self, sql: str, params: Any = None) -> pa.Table:
        return self._guard(lambda: self._fetch(sql, params))

    def stream(self, sql: str, batch_rows: int) -> Iterator[pa.Table]:
        iterator = self._guard(lambda: self._stream(sql, batch_rows))
        while True:
            table = self._guard(lambda: next(iterator, None))
            if table is None:
                return
            yield table

    def tables(self) -> list[str]:
        """Table names of the database (``schema.name`` outside the default schema)."""
        names: list[str] = self._guard(self._tables)
        return names

    def masked_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def scrub(self, text: str) -> str:
        """``text`` with the password (plain or URL-encoded) replaced by ``***``."""
        if self.secret:
            from urllib.parse import quote, quote_plus

            for form in {self.secret, quote(self.secret, safe=""), quote_plus(self.secret)}:
                text = text.replace(form, "***")
        return text

    def _guard(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except (DataError, MissingExtraError):
            raise
        except Exception as exc:
            raise self.error(exc) from None

    def error(self, exc: BaseException) -> DataError:
        """A DataError for a driver failure: masked URL, the driver's reason, the fix."""
        reason = self.scrub(" ".join(str(exc).split()))[:500] or type(exc).__name__
        if any(word in reason.lower() for word in _CONNECTION_WORDS + _DROPPED_WORDS):
            return SourceUnavailableError(
                f"cannot reach the {self.kind} database at {self.masked_url()}: {reason}",
                hint="Check that the server is running and reachable at that host and port, that the database "
                "and user exist, and that the password environment variable (password_env) is set.",
            )
        if any(word in reason.lower() for word in _READ_ONLY_WORDS):
            return DataError(
                f"{self.kind} query tried to write on {self.masked_url()}, which a source never does: {reason}",
                hint="A source's connection is read-only: remove the statement or function that writes from `query`.",
            )
        return DataError(f"{self.kind} query failed on {self.masked_url()}: {reason}")

    def check_reachable(self) -> None:
        """Fail fast (seconds, not the driver's pool timeout) when nothing listens at host:port."""
        host, port = self.url.host, self.url.port or {"postgres": 5432, "mysql": 3306}.get(self.kind)
        if not host or not port or host.startswith("/"):
            return
        try:
            socket.create_connection((host, port), timeout=5).close()
        except OSError as exc:
            raise self.error(ConnectionError(f"connection to {host}:{port} failed: {exc}")) from None


def _catalog_sql(kind: str) -> str:
    if kind == "mysql":
        return "SELECT table_name AS n FROM information_schema.tables WHERE table_schema = DATABASE()"
    return (
        "SELECT CASE WHEN table_schema = 'public' THEN table_name ELSE table_schema || '.' || table_name END"
        " AS n FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
    )


#: Run first on every MySQL / MariaDB connection: UTC, and the session's transactions read-only.
_MYSQL_READ_ONLY = "SET SESSION TRANSACTION READ ONLY"
_PG_READ_ONLY_OPTION = "-c default_transaction_read_only=on"


def postgres_read_only(url: URL) -> URL:
    """``url`` whose sessions start read-only (``options`` startup parameter, added to any the URL has)."""
    options = url.query.get("options")
    current = " ".join(options) if isinstance(options, tuple) else options or ""
    if _PG_READ_ONLY_OPTION in current:
        return url
    return url.update_query_dict({"options": f"{current} {_PG_READ_ONLY_OPTION}".strip()})


def _conninfo(url: URL) -> str:
    """``url`` as a libpq / connectorx URI: the password in, query values %-encoded (``+`` is no space there)."""
    from urllib.parse import quote, urlencode

    text: str = url.set(query={}).render_as_string(hide_password=False)
    if url.query:
        text += "?" + urlencode(dict(url.query), doseq=True, quote_via=quote)
    return text


class ConnectorxDriver(Driver):
    """connectorx: no bound parameters, so values are rendered by :func:`literal`.

    connectorx runs in autocommit mode, so its work is wrapped in a read-only transaction that is never
    committed (the connection is dropped after the read), on a session that is read-only from its start.
    """

    def __init__(self, url: URL, secret: str | None, kind: str, extra: str) -> None:
        super().__init__(url, secret, kind)
        self.dialect = MYSQL if kind == "mysql" else POSTGRES
        self._cx = _import("connectorx", extra)
        if kind == "mysql":
            url = url.set(drivername="mysql")
            self._pre = ["SET time_zone = '+00:00'", _MYSQL_READ_ONLY, "START TRANSACTION READ ONLY"]
        else:
            url = postgres_read_only(url.set(drivername="postgresql"))
            self._pre = ["BEGIN READ ONLY"]
        self._conn = _conninfo(url)
        self.check_reachable()

    def _read(self, sql: str, **kwargs: Any) -> Any:
        return self._cx.read_sql(self._conn, sql, pre_execution_query=self._pre, **kwargs)

    def _fetch(self, sql: str, params: Any) -> pa.Table:
        table: pa.Table = self._read(sql, return_type="arrow")
        return table

    def _stream(self, sql: str, batch_rows: int) -> Iterator[pa.Table]:
        reader = self._read(sql, return_type="arrow_stream", batch_size=batch_rows)
        for batch in reader:
            yield pa.Table.from_batches([batch])

    def _tables(self) -> list[str]:
        names: list[str] = self._fetch(_catalog_sql(self.kind), None).column(0).to_pylist()
        return names


class AdbcDriver(Driver):
    """ADBC (PostgreSQL): binds ``$1, $2...`` parameters; read-only sessions, every read rolled back."""

    def __init__(self, url: URL, secret: str | None, kind: str) -> None:
        super().__init__(url, secret, kind)
        dbapi = _import("adbc_driver_postgresql.dbapi", "postgres")
        self.check_reachable()
        uri = _conninfo(postgres_read_only(url.set(drivername="postgresql")))
        self._conn = self._guard(lambda: dbapi.connect(uri))

    def binder(self) -> tuple[Binder, Any]:
        params: list[Any] = []

        def bind(_name: str, value: Any) -> str:
            params.append(value)
            return f"${len(params)}"

        return bind, params

    def _fetch(self, sql: str, params: Any) -> pa.Table:
        try:
            with self._conn.cursor() as cursor:
                cursor.execute(sql, params or None)
                return _plain_arrow(cursor.fetch_arrow_table())
        finally:
            self._conn.rollback()

    def _stream(self, sql: str, batch_rows: int) -> Iterator[pa.Table]:
        try:
            with self._conn.cursor() as cursor:
                cursor.execute(sql)
                for batch in cursor.fetch_record_batch():
                    yield _plain_arrow(pa.Table.from_batches([batch]))
        finally:
            self._conn.rollback()

    def _tables(self) -> list[str]:
        names: list[str] = self._fetch(_catalog_sql(self.kind), None).column(0).to_pylist()
        return names

    def close(self) -> None:
        self._conn.close()


def _plain_arrow(table: pa.Table) -> pa.Table:
    """ADBC returns NUMERIC as an opaque extension over text: make it float64 (as the other drivers do)."""
    for index, field in enumerate(table.schema):
        if isinstance(field.type, pa.BaseExtensionType):
            storage = pa.chunked_array([chunk.storage for chunk in table.column(index).chunks], field.type.storage_type)
            target = pa.float64() if "numeric" in str(field.type) else field.type.storage_type
            table = table.set_column(index, field.name, storage.cast(target))
    return table


class SqlAlchemyDriver(Driver):
    """SQLAlchemy + the dialect's DB-API driver, rows fetched with fetchmany and turned into Arrow.

    Connections are read-only at the database level for PostgreSQL, MySQL / MariaDB, SQLite and DuckDB
    (:func:`_read_only_engine`); every read ends with a rollback, nothing is committed.
    """

    def __init__(self, url: URL, secret: str | None, kind: str, extra: str) -> None:
        super().__init__(url, secret, kind)
        import sqlalchemy as sa

        self._sa = sa
        try:
            self._engine = _read_only_engine(url)
        except ImportError as exc:
            if kind == "sql":  # the generic source: name the extra of a known backend
                extra = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}.get(
                    url.get_backend_name(), extra
                )
            raise MissingExtraError(exc.name or url.get_driver_name(), extra) from None
        self.dialect = _dialect_of(self._engine.dialect.name, self._engine.dialect.identifier_preparer.initial_quote)
        self._conn = self._guard(self._engine.connect)

    def binder(self) -> tuple[Binder, Any]:
        params: dict[str, Any] = {}

        def bind(name: str, value: Any) -> str:
            params[name] = value
            return f":{name}"

        return bind, params

    def _fetch(self, sql: str, params: Any) -> pa.Table:
        try:
            result = self._conn.execute(self._sa.text(sql), params or {})
            table = _rows_to_arrow(list(result.keys()), result.fetchall())
        finally:
            self._conn.rollback()
        return table

    def _stream(self, sql: str, batch_rows: int) -> Iterator[pa.Table]:
        try:
            result = self._conn.execution_options(stream_results=True).execute(self._sa.text(sql))
            names = list(result.keys())
            while rows := result.fetchmany(batch_rows):
                yield _rows_to_arrow(names, rows)
        finally:
            self._conn.rollback()

    def _tables(self) -> list[str]:
        inspector = self._sa.inspect(self._conn)
        names: list[str] = list(inspector.get_table_names()) + list(inspector.get_view_names())
        return names

    def close(self) -> None:
        self._conn.close()
        self._engine.dispose()


def _read_only_engine(url: URL) -> Any:
    """A SQLAlchemy engine (no pool) whose connections cannot write, for the backends that have a setting."""
    import sqlalchemy as sa

    backend = url.get_backend_name()
    kwargs: dict[str, Any] = {"poolclass": sa.pool.NullPool}
    if backend == "postgresql":
        if url.get_driver_name() in ("psycopg", "psycopg2"):
            url = postgres_read_only(url)
        kwargs["execution_options"] = {"postgresql_readonly": True}
    elif backend == "duckdb":
        kwargs["connect_args"] = {"read_only": True}
    engine = sa.create_engine(url, **kwargs)
    setup = {"mysql": _MYSQL_READ_ONLY, "mariadb": _MYSQL_READ_ONLY, "sqlite": "PRAGMA query_only = ON"}.get(backend)
    if setup is not None:
        sa.event.listen(engine, "connect", lambda dbapi_conn, _record: _run_setup(dbapi_conn, setup))
    return engine


def _run_setup(dbapi_conn: Any, sql: str) -> None:
    """Run a session setting on a fresh DB-API connection (a SET / PRAGMA: nothing to commit)."""
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def _dialect_of(name: str, quote_char: str) -> Dialect:
    known = {"postgresql": POSTGRES, "mysql": MYSQL, "mariadb": MYSQL, "sqlite": SQLITE, "duckdb": DUCKDB}
    return known.get(name) or Dialect(name, quote_char=quote_char, sqlglot=sqlglot_dialect(name))


def _rows_to_arrow(names: list[str], rows: list[Any]) -> pa.Table:
    """Rows as an Arrow table, one column at a time (a column of mixed types becomes text)."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    arrays = []
    for values in columns:
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays.append(pa.array([None if v is None else str(v) for v in values], pa.string()))
    return pa.Table.from_arrays(arrays, names=names)


class DuckdbDriver(Driver):
    """DuckDB: a warehouse file (or memory), ``$name`` parameters, Arrow out natively.

    A file is opened read-only for each query and closed after it, so that a writer (DuckDB allows one
    process at a time on a file) can add rows between the polls of a ``follow`` read. Every statement is
    checked by DuckDB's own parser to be exactly one SELECT before it runs (``conn.sql`` would run several).
    """

    dialect = DUCKDB

    def __init__(self, path: str) -> None:
        from sqlalchemy.engine import make_url

        super().__init__(make_url("duckdb:///" + path), None, "duckdb")
        self._duckdb = _import("duckdb", "duckdb")
        self._path = path or ":memory:"
        self._memory = self._connect() if self._path == ":memory:" else None

    def _connect(self) -> Any:
        read_only = self._path != ":memory:"  # DuckDB cannot open an in-memory database read-only
        return self._guard(lambda: self._duckdb.connect(self._path, read_only=read_only))

    def _one_select(self, sql: str) -> None:
        """Refuse ``sql`` unless DuckDB's parser reads it as exactly one SELECT."""
        statements = self._guard(lambda: self._duckdb.extract_statements(sql))
        kinds = [str(getattr(s.type, "name", s.type)) for s in statements]
        if kinds != ["SELECT"]:
            hint = "Write `query:` as one SELECT statement."
            if kinds == ["MULTI"]:  # DuckDB expands a PIVOT without an IN list into several statements
                hint = "A PIVOT must list its values (`PIVOT t ON col IN ('a', 'b') USING ...`); " + hint
            raise DataError(
                f"duckdb refused to run {', '.join(kinds) or 'no'} statement(s) for a source: "
                "a source runs exactly one SELECT.",
                hint=hint,
            )

    def masked_url(self) -> str:
        return self._path

    def binder(self) -> tuple[Binder, Any]:
        params: dict[str, Any] = {}

        def bind(name: str, value: Any) -> str:
            params[name] = value
            return f"${name}"

        return bind, params

    def _fetch(self, sql: str, params: Any) -> pa.Table:
        self._one_select(sql)
        conn = self._memory or self._connect()
        try:
            table: pa.Table = conn.sql(sql, params=params or None).to_arrow_table()
        finally:
            if conn is not self._memory:
                conn.close()
        return table

    def _stream(self, sql: str, batch_rows: int) -> Iterator[pa.Table]:
        self._one_select(sql)
        conn = self._memory or self._connect()
        try:
            for batch in conn.sql(sql).to_arrow_reader(batch_rows):
                yield pa.Table.from_batches([batch])
        finally:
            if conn is not self._memory:
                conn.close()

    def _tables(self) -> list[str]:
        sql = (
            "SELECT CASE WHEN table_schema = 'main' THEN table_name ELSE table_schema || '.' || table_name END"
            " FROM information_schema.tables"
        )
        names: list[str] = self._fetch(sql, None).column(0).to_pylist()
        return names

    def close(self) -> None:
        if self._memory is not None:
            self._memory.close()
            self._memory = None
