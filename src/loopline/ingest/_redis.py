"""``type: redis`` — JSON messages from a Redis stream through a consumer group (XREADGROUP / XACK).

    - name: clicks
      type: redis
      url: redis://127.0.0.1:6379/0      # password from password_env, never in the url
      stream: clicks
      group: loopline                    # created (MKSTREAM) at the start of the stream if missing
      consumer: loopline-1               # stable: its pending entries are recovered on restart
      field: data                        # the entry field holding the JSON payload
      schema: {user: string, page: string, ts: timestamp}

Delivery: entries are read with XREADGROUP and XACKed in :meth:`RedisSource.ack`, after the engine commits.
On start the consumer first re-reads its own pending entries (id ``0``: delivered before a crash, never
acknowledged), then claims entries idle for ``claim_idle_s`` from dead consumers of the group (XAUTOCLAIM,
repeated every ``claim_idle_s`` while following), then reads new entries (``>``). ``Batch.ids`` are the stream
ids, so a redelivered entry the engine already committed is dropped. An entry delivered more than
``max_deliveries`` times (XPENDING's counter) becomes a reject and is acknowledged with its batch. Positions
are ``{"last_id": "<ms>-<seq>"}``; the group's cursor on the server is authoritative. Connection errors are
retried with backoff for ``reconnect_timeout_s``; a refusal (a key that is not a stream, an ACL, a wrong
password) is a ``DataError`` at once. redis-py's client has no thread of its own: its errors reach the main flow.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import Field

from loopline.core.errors import DataError, MissingExtraError
from loopline.ingest._payloads import BrokerConfig, dedup_ids, env_secret, mask_url, raw_text
from loopline.ingest._source import Batch, Limits, Reject, Source

if TYPE_CHECKING:
    from redis import Redis

T = TypeVar("T")
_Entry = tuple[str, dict[bytes, bytes] | None]


class RedisConfig(BrokerConfig):
    """Keys of ``type: redis``."""

    url: str = "redis://127.0.0.1:6379/0"
    password_env: str | None = None
    stream: str = Field(min_length=1)
    group: str = Field(default="loopline", min_length=1)
    consumer: str = Field(default="loopline", min_length=1)
    field: str = "data"
    claim_idle_s: float = Field(default=60.0, gt=0)


class RedisSource(Source):
    """A Redis stream consumer group -> typed rows; XACK after commit."""

    type_name = "redis"
    streaming = True
    Config = RedisConfig
    config: RedisConfig

    def __init__(self, config: RedisConfig) -> None:
        super().__init__(config)
        self._redis: Redis | None = None

    def batches(self, position: Any, *, follow: bool = False, limits: Limits = Limits()) -> Iterator[Batch]:
        """Own pending entries, then idle entries of dead consumers, then new entries."""
        last = str(position["last_id"]) if isinstance(position, dict) and "last_id" in position else "0-0"
        self._call(self._create_group)
        cursor: str | None = "0"  # own PEL first
        next_claim = 0.0
        count = max(1, limits.max_rows)
        while True:
            entries: list[_Entry] = []
            if cursor is not None:
                entries = self._call(partial(self._read, cursor, count, None))
                cursor = entries[-1][0] if entries else None
            if not entries and time.monotonic() >= next_claim:
                entries = self._call(lambda: self._claim(count))
                next_claim = time.monotonic() + self.config.claim_idle_s if not entries else 0.0
            if not entries:
                entries = self._call(lambda: self._read(">", count, int(limits.max_seconds * 1000)))
            if not entries and not follow:
                return
            batch = self._batch(entries, last)
            last = batch.position["last_id"]
            yield batch

    def ack(self, batch: Batch) -> None:
        """XACK the entries of a committed batch (rejects included)."""
        ids = batch.ack_token
        if ids:
            self._call(lambda: self._client().xack(self.config.stream, self.config.group, *ids))

    def backlog(self) -> int | None:
        """The group's lag (entries never delivered) plus its pending entries (XINFO GROUPS, one round trip);
        None when Redis cannot tell the lag (before 7.0, or after entries were deleted)."""
        groups = self._call(lambda: self._client().xinfo_groups(self.config.stream))
        for group in groups:
            if _text(group["name"]) == self.config.group:
                lag = group.get("lag")
                return None if lag is None else int(lag) + int(group.get("pending") or 0)
        return None

    def close(self) -> None:
        """Close the connection pool; unacknowledged entries stay pending for this consumer."""
        client, self._redis = self._redis, None
        if client is not None:
            client.close()

    # -- redis calls ------------------------------------------------------------------------------

    def _client(self) -> Redis:
        if self._redis is None:
            try:
                import redis
            except ImportError as exc:
                raise MissingExtraError("redis", "redis") from exc
            password = env_secret(self.config.password_env, "password_env")
            self._redis = redis.Redis.from_url(self.config.url, password=password, socket_timeout=30)
        return self._redis

    def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying connection errors with backoff for ``reconnect_timeout_s``."""
        import redis

        start, delay = time.monotonic(), 0.05
        while True:
            try:
                return fn()
            except (redis.AuthenticationError, redis.ResponseError) as exc:  # retrying cannot cure these
                raise DataError(
                    f"Redis at {mask_url(self.config.url)!r} refused a command on stream "
                    f"{self.config.stream!r}: {type(exc).__name__}: {exc}.",
                    hint="Check that 'stream' names a stream (not a key of another type), the password in "
                    "'password_env', and that this user may run XGROUP, XREADGROUP, XAUTOCLAIM, XPENDING and "
                    "XACK on it (Redis ACL).",
                ) from exc
            except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.BusyLoadingError) as exc:
                if time.monotonic() - start > self.config.reconnect_timeout_s:
                    raise DataError(
                        f"Redis at {mask_url(self.config.url)!r} unreachable for "
                        f"{self.config.reconnect_timeout_s}s: {exc}.",
                        hint="Start redis-server, or raise 'reconnect_timeout_s'.",
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _create_group(self) -> None:
        import redis

        try:
            self._client().xgroup_create(self.config.stream, self.config.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _read(self, start: str, count: int, block_ms: int | None) -> list[_Entry]:
        cfg = self.config
        reply: Any = self._client().xreadgroup(
            cfg.group, cfg.consumer, {cfg.stream: start}, count=count, block=block_ms
        )
        if not reply:
            return []
        entries = reply[0][1] if isinstance(reply, list) else next(iter(reply.values()))[0]
        return [(_text(entry_id), fields or None) for entry_id, fields in entries]

    def _claim(self, count: int) -> list[_Entry]:
        cfg = self.config
        reply: Any = self._client().xautoclaim(
            cfg.stream, cfg.group, cfg.consumer, int(cfg.claim_idle_s * 1000), "0-0", count=count
        )
        return [(_text(entry_id), fields or None) for entry_id, fields in reply[1]]

    def _deliveries(self, entries: list[_Entry]) -> dict[str, int]:
        cfg = self.config
        pending: Any = self._client().xpending_range(
            cfg.stream, cfg.group, min=entries[0][0], max=entries[-1][0], count=len(entries) * 2
        )
        return {_text(p["message_id"]): int(p["times_delivered"]) for p in pending}

    # -- batches ----------------------------------------------------------------------------------

    def _batch(self, entries: list[_Entry], last: str) -> Batch:
        cfg = self.config
        field = cfg.field.encode()
        counts = self._call(lambda: self._deliveries(entries)) if entries else {}
        rejects: list[Reject] = []
        good: list[tuple[str, bytes]] = []
        for entry_id, fields in entries:
            where = {"stream": cfg.stream, "id": entry_id}
            payload = (fields or {}).get(field)
            if fields is None:
                rejects.append(Reject("entry deleted from the stream while pending", where, ""))
            elif payload is None:
                rejects.append(Reject(f"entry has no field {cfg.field!r}", where, raw_text(repr(fields).encode())))
            elif counts.get(entry_id, 1) > cfg.max_deliveries:
                reason = f"poison: delivered {counts[entry_id]} times (max_deliveries={cfg.max_deliveries})"
                rejects.append(Reject(reason, where, raw_text(payload)))
            else:
                good.append((entry_id, payload))
        rows, kept, bad = cfg.parser("redis").parse(
            [p for _, p in good], [{"stream": cfg.stream, "id": i} for i, _ in good]
        )
        rows, kept, ids = dedup_ids(rows, kept, [good[i][0] for i in kept])
        newest = max([last, *(e[0] for e in entries)], key=_id_key)
        return Batch(
            rows=rows,
            position={"last_id": newest},
            ids=ids,
            rejects=rejects + bad,
            ack_token=[e[0] for e in entries],
            bytes_read=sum(len(p) for _, p in good),
        )


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
