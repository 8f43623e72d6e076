"""The source contract for message brokers, as checks (see ``loopline.ingest._source``).

A broker cannot replay from an arbitrary position; what it guarantees instead is redelivery: a message that
was not acknowledged comes back to the next consumer with the same durable identity, an acknowledged one never
does, and messages published while no consumer is connected wait for it. ``check_broker_source`` checks that,
plus what every source owes the engine (bounded batches, ids per row, JSON-able positions, rejects that never
vanish, stable column types, reads that end without ``follow``).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from loopline.ingest import Batch, Limits, Source
from loopline.testing._sources import _require

INVALID_PAYLOAD = b"{not json"


def check_broker_source(
    make_source: Callable[[], Source],
    produce: Callable[[list[dict[str, Any]]], None],
    produce_raw: Callable[[bytes], None],
    *,
    key: str,
    rows: Callable[[int, int], list[dict[str, Any]]],
    with_ids: bool = True,
    batch_rows: int = 7,
    max_seconds: float = 0.5,
    read_timeout_s: float = 120.0,
) -> None:
    """Raise AssertionError naming the first broken rule of the broker source contract.

    ``make_source()`` builds a new source with the same durable identity every time (MQTT client id, NATS
    durable consumer, Redis group and consumer) on a topic or stream that is empty at first; it must redeliver
    unacknowledged messages to a new instance without waiting much longer than ``max_seconds`` (a NATS
    ``ack_wait_s`` of a second, say). ``produce(records)`` publishes records as messages, ``produce_raw(payload)``
    publishes raw bytes (the check sends a payload that is not JSON); ``rows(start, count)`` makes ``count``
    records whose ``key`` values start at ``start``. ``with_ids``: the source is configured to give
    ``Batch.ids``. Each read ends without ``follow`` or fails after ``read_timeout_s``.
    """
    reader = _Reader(make_source, Limits(max_rows=batch_rows, max_seconds=max_seconds), read_timeout_s)
    _require(_keys(reader.read(), key) == [], "the first read of an empty topic or stream must yield no rows")

    produced = rows(0, 3 * batch_rows + 2)
    produce(produced)  # no consumer is connected now
    full = reader.read()
    _require(
        Counter(_keys(full, key)) == Counter(r[key] for r in produced),
        "messages produced while no consumer was connected must be read once each on the next read",
    )
    _check_batches(full, batch_rows, with_ids)
    if with_ids:
        given = [i for b in full for i in b.ids or []]
        _require(len(set(given)) == len(given), "Batch.ids must tell messages apart")

    more = rows(len(produced), 2 * batch_rows + 1)
    produce(more)
    partial = reader.read(ack=lambda i: i % 2 == 0)
    acked = {k for i, b in enumerate(partial) if i % 2 == 0 for k in _keys([b], key)}
    unacked = {k for i, b in enumerate(partial) if i % 2 for k in _keys([b], key)} - acked
    _require(not set(_keys(partial, key)) & set(_keys(full, key)), "an acknowledged message must never come back")
    _require(set(_keys(partial, key)) == {r[key] for r in more}, "a read must yield every new message")
    _require(bool(unacked), "the check needs a read of at least two batches with rows: lower batch_rows")
    again = reader.read()
    _require(not acked & set(_keys(again, key)), "an acknowledged message must never be delivered again")
    _require(
        set(_keys(again, key)) == unacked,
        "the messages of batches not acknowledged must be redelivered to a new source instance",
    )
    if with_ids:
        first_ids = _ids_by_key(partial, key)
        _require(
            all(first_ids[k] == i for k, i in _ids_by_key(again, key).items()),
            "a redelivered message must carry the id it had on its first delivery",
        )
    _require(_keys(reader.read(), key) == [], "once all is acknowledged, nothing comes back")

    start = len(produced) + len(more)
    stopped = rows(start, 2 * batch_rows)
    produce(stopped)
    reader.read(ack=False, stop_after=1)  # the engine stopped, or died, after taking one batch
    _require(
        set(_keys(reader.read(), key)) == {r[key] for r in stopped},
        "a read stopped after one batch must lose nothing: the next read gets every message not acknowledged",
    )
    _check_rejects(reader, produce, produce_raw, key, rows(start + len(stopped), 2))
    _check_batches(reader.batches, batch_rows, with_ids)
    schemas = {tuple(b.rows.schema.items()) for b in reader.batches if b.rows.height}
    _require(len(schemas) == 1, f"column types must be stable across batches, got {len(schemas)} schemas")


def _check_rejects(
    reader: _Reader,
    produce: Callable[[list[dict[str, Any]]], None],
    produce_raw: Callable[[bytes], None],
    key: str,
    records: list[dict[str, Any]],
) -> None:
    """A payload that cannot be parsed travels in ``Batch.rejects``, comes back until acknowledged, then goes."""
    produce(records[:1])
    produce_raw(INVALID_PAYLOAD)
    produce(records[1:])
    for attempt, ack in (("first", False), ("redelivered", True)):
        batches = reader.read(ack=ack)
        rejects = [r for b in batches for r in b.rejects]
        _require(
            sorted(_keys(batches, key)) == sorted(r[key] for r in records),
            f"the valid messages around an invalid one must be read ({attempt} delivery)",
        )
        _require(
            len(rejects) == 1 and INVALID_PAYLOAD.decode() in rejects[0].raw,
            f"an invalid payload must travel in Batch.rejects with its raw payload ({attempt} delivery), "
            f"got {len(rejects)} rejects",
        )
        _require(bool(rejects[0].reason), "a reject must say why")
        _require(_json_able(rejects[0].position), "a reject's position must be JSON-able")
    leftover = reader.read()
    _require(
        not any(b.rejects for b in leftover) and _keys(leftover, key) == [],
        "an acknowledged reject must not come back",
    )


class _Reader:
    """Reads with a new source each time, acknowledging every batch, none, or those ``ack(index)`` picks, up to
    ``stop_after`` batches; keeps every batch it read."""

    def __init__(self, make_source: Callable[[], Source], limits: Limits, timeout_s: float) -> None:
        self.make_source = make_source
        self.limits = limits
        self.timeout_s = timeout_s
        self.batches: list[Batch] = []

    def read(self, ack: bool | Callable[[int], bool] = True, stop_after: int | None = None) -> list[Batch]:
        picks = ack if callable(ack) else lambda index: ack
        out: list[Batch] = []
        deadline = time.monotonic() + self.timeout_s
        with self.make_source() as source:
            for batch in source.batches(None, follow=False, limits=self.limits):
                _require(
                    time.monotonic() < deadline,
                    f"a read without follow must end once the source is exhausted (still going after "
                    f"{self.timeout_s:.0f} s)",
                )
                if picks(len(out)):
                    source.ack(batch)
                out.append(batch)
                if stop_after is not None and len(out) >= stop_after:
                    break  # what the engine does when it stops: the source is closed with its iterator unfinished
        self.batches += out
        return out


def _check_batches(batches: list[Batch], batch_rows: int, with_ids: bool) -> None:
    _require(all(b.rows.height <= batch_rows for b in batches), "batches must respect limits.max_rows")
    _require(all(_json_able(b.position) for b in batches), "positions must be JSON-able")
    if with_ids:
        _require(
            all(b.ids is not None and len(b.ids) == b.rows.height for b in batches if b.rows.height),
            "Batch.ids must hold one id per row when the source is configured with ids",
        )


def _keys(batches: list[Batch], key: str) -> list[Any]:
    return [k for b in batches if b.rows.height for k in b.rows[key].to_list()]


def _ids_by_key(batches: list[Batch], key: str) -> dict[Any, str]:
    return {k: i for b in batches if b.rows.height for k, i in zip(b.rows[key].to_list(), b.ids or [], strict=False)}


def _json_able(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
