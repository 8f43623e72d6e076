"""The check the transform tests share: a table, each of its rows as a one-row table, and the records agree."""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from loopline.prep import Transform


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same type (1 is not 1.0 nor True); NaN equals NaN."""
    if type(a) is not type(b):
        return False
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


def assert_paths_agree(transform: Transform, frame: pl.DataFrame) -> list[dict[str, Any]]:
    """The table, a one-row table per row, and the records all give the same values."""
    table = transform.transform(frame).to_dicts()
    records = [transform.transform_record(r) for r in frame.to_dicts()]
    assert [list(r) for r in table] == [list(r) for r in records]
    for i, (batch, record) in enumerate(zip(table, records, strict=True)):
        single = transform.transform(frame.slice(i, 1)).to_dicts()[0]
        for column, value in batch.items():
            assert _same(value, record[column]), (i, column, value, record[column])
            assert _same(value, single[column]), (i, column, value, single[column])
    return table
