"""Served traffic for the accuracy and loop tests: a registered version's real predictions on rows of a frame,
logged as the service logs them (``PredictionLog.append``), and their labels posted as ``POST /feedback`` does."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from loopline.bundle import ModelBundle
from loopline.store import Label, PredictionRow, Store


def serve(
    store: Store,
    model: str,
    version: int,
    rows: pl.DataFrame,
    start: datetime,
    every: timedelta,
    *,
    prefix: str,
) -> list[str]:
    """Log ``version``'s predictions for ``rows`` (columns x, g), one every ``every`` from ``start``; the ids."""
    found = store.models.get(model, version)
    bundle = ModelBundle.from_bytes(store.artifacts.get_bytes(found.bundle_digest))
    records = rows.select("x", "g").to_dicts()
    answers = bundle.predict_records(records)
    ids = [f"{prefix}{i:06d}" for i in range(len(records))]
    store.predictions.append(
        [
            PredictionRow(pid, model, version, start + i * every, record, answer, 1.5)
            for i, (pid, record, answer) in enumerate(zip(ids, records, answers, strict=True))
        ]
    )
    return ids


def post_labels(store: Store, model: str, ids: list[str], truth: list[bool]) -> None:
    """Store the true outcome of each prediction, as ``POST /feedback`` does."""
    receipt = store.feedback.put(model, [Label(pid, bool(y)) for pid, y in zip(ids, truth, strict=True)], source="test")
    assert receipt.received == len(ids)
