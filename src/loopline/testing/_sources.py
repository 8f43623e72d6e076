"""The source contract, as checks (see ``loopline.ingest._source``): read, resume, incremental."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from loopline.ingest import Batch, Limits, Source


def check_source(
    make_source: Callable[[], Source],
    produce: Callable[[list[dict[str, Any]]], None],
    *,
    key: str,
    rows: Callable[[int, int], list[dict[str, Any]]],
    batch_rows: int = 7,
) -> None:
    """Raise AssertionError naming the first broken rule of the source contract.

    ``produce(records)`` appends records to the system the source reads (a table, a topic, files);
    ``rows(start, count)`` makes ``count`` records whose ``key`` values start at ``start``.
    """
    limits = Limits(max_rows=batch_rows, max_seconds=0.5)
    first = rows(0, 3 * batch_rows + 2)
    produce(first)
    batches = _read(make_source, None, limits)
    _require(_keys(batches, key) == [r[key] for r in first], "a full read must yield every row once, in order")
    _require(all(b.rows.height <= batch_rows for b in batches), "batches must respect limits.max_rows")
    for batch in batches:
        json.dumps(batch.position)  # positions are JSON-able
    middle = next((i for i, b in enumerate(batches) if b.rows.height), 0)
    rest = _read(make_source, batches[middle].position, limits)
    expected = [k for b in batches[middle + 1 :] for k in b.rows[key].to_list()]
    _require(_keys(rest, key) == expected, "resuming from a batch's position must yield exactly the rows after it")
    more = rows(len(first), batch_rows + 1)
    produce(more)
    new = _read(make_source, batches[-1].position, limits)
    _require(_keys(new, key) == [r[key] for r in more], "an incremental read must yield only the new rows")
    schemas = {tuple(b.rows.schema.items()) for b in [*batches, *new] if b.rows.height}
    _require(len(schemas) == 1, f"column types must be stable across batches, got {len(schemas)} schemas")


def _read(make_source: Callable[[], Source], position: Any, limits: Limits) -> list[Batch]:
    with make_source() as source:
        batches = []
        for batch in source.batches(position, follow=False, limits=limits):
            batches.append(batch)
            source.ack(batch)
        return batches


def _keys(batches: list[Batch], key: str) -> list[Any]:
    return [k for b in batches if b.rows.height for k in b.rows[key].to_list()]


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)
