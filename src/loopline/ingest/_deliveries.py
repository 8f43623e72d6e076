"""Delivery counts for brokers that keep none (MQTT), in a small local SQLite file.

A count is raised, and made durable, *before* its message is handed to the engine: the file is in WAL mode
with ``synchronous=FULL``, so every commit is fsynced. A consumer process killed by a message (the very case a
poison bound exists for) therefore leaves the count behind for the next process. Counts are dropped when their
messages are acknowledged, so the file holds only messages handed out and not yet acknowledged, and an empty
file is deleted on close. One process uses a file at a time (it belongs to one broker client id, which the
broker keeps unique).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from loopline.core.errors import ConfigError

_SCHEMA = "CREATE TABLE IF NOT EXISTS deliveries (key TEXT PRIMARY KEY, count INTEGER NOT NULL) WITHOUT ROWID"
# one statement per batch, its rows as one JSON parameter: executemany would release and retake the GIL per row,
# which crawls while the broker client's network thread is busy
_RAISE = (
    "INSERT INTO deliveries (key, count) SELECT value, 1 FROM json_each(?) WHERE true "
    "ON CONFLICT (key) DO UPDATE SET count = count + 1"
)
_FORGET = "DELETE FROM deliveries WHERE key IN (SELECT value FROM json_each(?))"


class DeliveryCounts:
    """How often each unacknowledged message was handed out; ``path`` is the SQLite file (opened on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._counts: dict[str, int] = {}

    def count(self, key: str) -> int:
        """How often ``key`` was handed out without being acknowledged (0: never)."""
        self._open()
        return self._counts.get(key, 0)

    def record(self, keys: Iterable[str]) -> dict[str, int]:
        """Raise the count of each distinct key by one, durably; the new counts."""
        self._open()
        raised = {key: self._counts.get(key, 0) + 1 for key in keys}
        if raised:
            self._write(_RAISE, json.dumps(list(raised)))
            self._counts.update(raised)
        return raised

    def forget(self, keys: Iterable[str]) -> None:
        """Drop the counts of acknowledged messages."""
        self._open()
        gone = [key for key in set(keys) if self._counts.pop(key, None) is not None]
        if gone:
            self._write(_FORGET, json.dumps(gone))

    def forget_all(self) -> None:
        """Drop every count (the broker started a new session: nothing will be redelivered)."""
        self._open()
        if self._counts:
            self._write("DELETE FROM deliveries")
            self._counts.clear()

    def __len__(self) -> int:
        self._open()
        return len(self._counts)

    def close(self) -> None:
        """Close the file, and delete it when it holds no count; idempotent (a later call reopens it)."""
        db, self._db = self._db, None
        if db is not None:
            db.close()
            if not self._counts:
                self.path.unlink(missing_ok=True)
        self._counts.clear()

    def _write(self, sql: str, *params: str) -> None:
        """One statement in one transaction, whose commit is fsynced (``synchronous=FULL``) before this returns."""
        db = self._open()
        with db:
            db.execute(sql, params)

    def _open(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(_SCHEMA)
            counts = {str(key): int(count) for key, count in db.execute("SELECT key, count FROM deliveries")}
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"cannot keep delivery counts in {str(self.path)!r}: {exc}.",
                key="state_dir",
                hint="Point 'state_dir' at a writable local folder.",
            ) from exc
        self._db, self._counts = db, counts
        return db
