"""A source's ``query:`` is exactly one read-only SELECT, checked by a real SQL parser before it is sent.

:func:`check_query` parses the query with sqlglot in the database's own dialect (so its quotes, comments and
escapes are tokenised as the server will) and refuses: more than one statement; anything but a query at the
top (SELECT, WITH ... SELECT, a set operation, VALUES); a data-modifying or schema statement anywhere inside
(INSERT / UPDATE / DELETE / MERGE in a CTE, DDL, COPY, SET, PRAGMA, ATTACH, ...); ``SELECT ... INTO``; row
locks (``FOR UPDATE`` / ``FOR SHARE``); MySQL's executable comments (``/*! ... */``, which the server runs).

The parser gives an early, clear error; the guarantee is the database's own read-only session or
transaction that every driver opens (see ``_sql_drivers``): a function that writes fails there.
"""

from __future__ import annotations

import re
from typing import Any

from loopline.core.errors import ConfigError

#: SQLAlchemy backend name -> sqlglot dialect (None: sqlglot's generic dialect).
SQLGLOT_DIALECTS = {
    "postgresql": "postgres",
    "postgres": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
    "duckdb": "duckdb",
    "mssql": "tsql",
    "oracle": "oracle",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "redshift": "redshift",
    "trino": "trino",
    "presto": "presto",
    "clickhouse": "clickhouse",
    "databricks": "databricks",
}

#: Expression classes that change data, schema, session or files (looked up by name: sqlglot adds classes).
_WRITES = {
    "Insert": "an INSERT",
    "Update": "an UPDATE",
    "Delete": "a DELETE",
    "Merge": "a MERGE",
    "Create": "a CREATE",
    "Drop": "a DROP",
    "Alter": "an ALTER",
    "AlterColumn": "an ALTER",
    "TruncateTable": "a TRUNCATE",
    "Copy": "a COPY",
    "LoadData": "a LOAD DATA",
    "Set": "a SET",
    "Pragma": "a PRAGMA",
    "Attach": "an ATTACH",
    "Detach": "a DETACH",
    "Use": "a USE",
    "Transaction": "a transaction statement",
    "Commit": "a COMMIT",
    "Rollback": "a ROLLBACK",
    "Install": "an INSTALL",
    "Command": "a statement the parser runs as a command",
    "Into": "SELECT ... INTO (it writes a table or a file)",
    "Lock": "a row lock (FOR UPDATE / FOR SHARE)",
}
#: Functions that act outside the read-only transaction (another connection, a server file).
_ESCAPES = frozenset(
    {"dblink", "dblink_exec", "dblink_send_query", "dblink_open", "lo_export", "pg_file_write", "sys_exec", "sys_eval"}
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TOP = ("Query", "Values", "Pivot")
_HINT = (
    "A source only reads: write one SELECT (WITH ... SELECT, UNION and VALUES are fine) without "
    "INSERT/UPDATE/DELETE/MERGE, DDL, SELECT INTO, FOR UPDATE or a second statement. If the query is valid "
    "read-only SQL that the parser does not understand, create a view with it and read the view with `table:`."
)


def sqlglot_dialect(backend: str) -> str | None:
    """The sqlglot dialect for a SQLAlchemy backend name (None: the generic one)."""
    return SQLGLOT_DIALECTS.get(backend)


def check_query(query: str, dialect: str | None) -> str:
    """``query`` without its trailing ``;`` if it is exactly one read-only query; a ConfigError otherwise."""
    text = _trimmed(query)
    if not text:
        raise ConfigError("`query` is empty.", key="query", hint="Write one SELECT statement.")
    statements = _parse(text, dialect)
    if len(statements) != 1:
        raise _refused(f"it holds {len(statements)} statements", dialect)
    statement = statements[0]
    if not _is_any(statement, _TOP):
        raise _refused(f"it is {_article(statement)} statement, not a SELECT", dialect)
    for node in statement.walk():
        name = _write_name(node) or _escape_name(node)
        if name is not None:
            raise _refused(f"it contains {name}", dialect)
    return text


def _trimmed(query: str) -> str:
    text = query.strip() if isinstance(query, str) else ""
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


def _parse(text: str, dialect: str | None) -> list[Any]:
    import sqlglot
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.errors import SqlglotError

    where = dialect or "generic"
    try:
        for token in Dialect.get_or_raise(dialect).tokenize(text):
            for comment in token.comments:
                if comment.lstrip().startswith(("!", "M!")):
                    raise _refused("it holds an executable comment (/*! ... */), which the server runs", dialect)
        return [s for s in sqlglot.parse(text, read=dialect) if s is not None]
    except SqlglotError as exc:
        reason = " ".join(_ANSI.sub("", str(exc)).split())[:300]
        raise ConfigError(f"`query` cannot be parsed as {where} SQL: {reason}", key="query", hint=_HINT) from None


def _is_any(node: Any, names: tuple[str, ...]) -> bool:
    from sqlglot import exp

    classes = tuple(getattr(exp, name) for name in names if hasattr(exp, name))
    return isinstance(node, classes)


def _write_name(node: Any) -> str | None:
    for cls in type(node).__mro__:
        name = _WRITES.get(cls.__name__)
        if name is not None and cls.__module__.startswith("sqlglot"):
            return name
    return None


def _escape_name(node: Any) -> str | None:
    from sqlglot import exp

    if isinstance(node, exp.Func):
        name = str(node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
        if name in _ESCAPES:
            return f"a call of {name}(), which acts outside the read-only transaction"
    return None


def _article(node: Any) -> str:
    key = str(node.this if type(node).__name__ == "Command" else getattr(node, "key", "")).upper()
    return f"an {key}" if key[:1] in "AEIOU" else f"a {key}"


def _refused(reason: str, dialect: str | None) -> ConfigError:
    where = f" ({dialect} SQL)" if dialect else ""
    return ConfigError(f"`query` must be exactly one read-only SELECT{where}: {reason}.", key="query", hint=_HINT)
