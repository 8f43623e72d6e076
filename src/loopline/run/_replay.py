"""Replaying dead letters after a fix: rows that now pass the dataset's contract are committed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import polars as pl

from loopline.core.errors import NotFoundError
from loopline.ingest import apply_contract

if TYPE_CHECKING:
    from loopline.store import Store


def replay_dead_letters(store: Store, dataset: str, *, null_values: Sequence[str] = ()) -> dict[str, int]:
    """Re-check every unreplayed dead letter holding a JSON object; commit those that now conform.

    ``null_values`` is the usual fix: strings such as ``"N/A"`` that should have been read as missing.
    Those that still fail stay dead letters (not replayed); those that are not JSON objects (a ragged
    CSV line, say) need their source fixed and are counted as ``skipped``.
    """
    schema = store.datasets.schema(dataset)
    if schema is None:
        raise NotFoundError(f"dataset {dataset!r} does not exist.", hint="List datasets with `loopline datasets list`.")
    letters = store.datasets.dead_letters(dataset)
    objects, skipped = [], 0
    for letter in letters:
        try:
            value = json.loads(letter.raw)
        except ValueError:
            value = None
        if isinstance(value, dict):
            objects.append((letter, {k: None if v in null_values else v for k, v in value.items()}))
        else:
            skipped += 1
    if not objects:
        return {"replayed": 0, "still_failing": 0, "skipped": skipped}
    frame = pl.DataFrame([value for _, value in objects], infer_schema_length=None)
    checked = apply_contract(frame, schema, "quarantine", source="replay")
    still = {r.raw for r in checked.rejects}
    passing = [letter.id for letter, value in objects if json.dumps(value, default=str) not in still]
    by_source: dict[str, list[int]] = {}
    for letter, _ in objects:
        if letter.id in passing:
            by_source.setdefault(letter.source, []).append(letter.id)
    good = checked.rows
    if good.height:
        digest = store.artifacts.put_table(good)
        source = next(iter(by_source)) if len(by_source) == 1 else "replay"
        store.datasets.commit_batch(
            dataset, f"{source}:replay", digest=digest, rows=good.height, size=int(good.estimated_size()), position=None
        )
    store.datasets.mark_replayed(passing)
    store.datasets.create_version(dataset)
    return {"replayed": len(passing), "still_failing": len(objects) - len(passing), "skipped": skipped}
