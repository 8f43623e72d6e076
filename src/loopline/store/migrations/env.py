"""Alembic environment for loopline: runs online only, on the connection handed over by the store."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from loopline.store._tables import VERSION_TABLE


def run_migrations_online() -> None:
    """Run the migrations on ``config.attributes["connection"]`` inside the caller's transaction."""
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("loopline migrations need a connection. Open the store with loopline.store.Store.open(url).")
    context.configure(
        connection=connection,
        target_metadata=None,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
