"""Database drivers behind one small interface: a query in, an Arrow table (or a stream of them) out.

Measured on this machine (PostgreSQL 15, 2M rows x 12 columns, see benchmarks/bench_ingest_sql.py):
connectorx is the fastest into Arrow, ADBC next, SQLAlchemy + fetchmany far behind; so the postgres
and mysql sources default to connectorx. Every driver is imported when first used and a missing one
raises :class:`MissingExtraError` naming the extra. Error messages never carry the password.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from loopline.core.errors import DataError, MissingExtraError, SourceUnavailableError
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


class ConnectorxDriver(Driver):
    """connectorx: no bound parameters, so values are rendered by :func:`literal`."""

    def __init__(self, url: URL, secret: str | None, kind: str, extra: str) -> None:
        super().__init__(url, secret, kind)
        self.dialect = MYSQL if kind == "mysql" else POSTGRES
        self._cx = _import("connectorx", extra)
        scheme = "mysql" if kind == "mysql" else "postgresql"
        self._conn = url.set(drivername=scheme).render_as_string(hide_password=False)
        self._pre = ["SET time_zone = '+00:00'"] if kind == "mysql" else None
        self.check_reachable()

    def _read(self, sql: str, **kwargs: Any) -> Any:
        if self._pre:
            kwargs["pre_execution_query"] = self._pre
        return self._cx.read_sql(self._conn, sql, **kwargs)

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
    """ADBC (PostgreSQL): binds ``$1, $2...`` parameters."""

    def __init__(self, url: URL, secret: str | None, kind: str) -> None:
        super().__init__(url, secret, kind)
        dbapi = _import("adbc_driver_postgresql.dbapi", "postgres")
        self.check_reachable()
        uri = url.set(drivername="postgresql").render_as_string(hide_password=False)
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
    """SQLAlchemy + the dialect's DB-API driver, rows fetched with fetchmany and turned into Arrow."""

    def __init__(self, url: URL, secret: str | None, kind: str, extra: str) -> None:
        super().__init__(url, secret, kind)
        import sqlalchemy as sa

        self._sa = sa
        try:
            self._engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
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


def _dialect_of(name: str, quote_char: str) -> Dialect:
    known = {"postgresql": POSTGRES, "mysql": MYSQL, "mariadb": MYSQL, "sqlite": SQLITE, "duckdb": DUCKDB}
    return known.get(name) or Dialect(name, quote_char=quote_char)


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

    A file is opened for each query and closed after it, so that a writer (DuckDB allows one process
    at a time on a file) can add rows between the polls of a ``follow`` read.
    """

    dialect = DUCKDB

    def __init__(self, path: str, read_only: bool) -> None:
        from sqlalchemy.engine import make_url

        super().__init__(make_url("duckdb:///" + path), None, "duckdb")
        self._duckdb = _import("duckdb", "duckdb")
        self._path = path or ":memory:"
        self._read_only = read_only and self._path != ":memory:"
        self._memory = self._connect() if self._path == ":memory:" else None

    def _connect(self) -> Any:
        return self._guard(lambda: self._duckdb.connect(self._path, read_only=self._read_only))

    def masked_url(self) -> str:
        return self._path

    def binder(self) -> tuple[Binder, Any]:
        params: dict[str, Any] = {}

        def bind(name: str, value: Any) -> str:
            params[name] = value
            return f"${name}"

        return bind, params

    def _fetch(self, sql: str, params: Any) -> pa.Table:
        conn = self._memory or self._connect()
        try:
            table: pa.Table = conn.sql(sql, params=params or None).to_arrow_table()
        finally:
            if conn is not self._memory:
                conn.close()
        return table

    def _stream(self, sql: str, batch_rows: int) -> Iterator[pa.Table]:
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
