"""Driver settings that make every source connection read-only."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from loopline.ingest._sql_drivers import _conninfo, postgres_read_only


def test_postgres_sessions_start_read_only_keeping_the_urls_own_options() -> None:
    url = postgres_read_only(make_url("postgresql://u:p%40ss@h:5432/d?sslmode=require&options=-c%20search_path%3Dshop"))
    assert url.query["options"] == "-c search_path=shop -c default_transaction_read_only=on"
    assert postgres_read_only(url) == url  # idempotent
    text = _conninfo(url)  # libpq and connectorx read %20 as a space, never +
    assert text.startswith("postgresql://u:p%40ss@h:5432/d?")
    assert "options=-c%20search_path%3Dshop%20-c%20default_transaction_read_only%3Don" in text
    assert "sslmode=require" in text and "+" not in text
