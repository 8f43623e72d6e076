"""Cleaning transforms: keep or drop columns."""

from __future__ import annotations

import polars as pl

from loopline.prep._transform import TRANSFORMS, Record, Transform


class Keep(Transform):
    """Keep only these columns, in this order."""

    type_name = "keep"
    stateful = False

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.require_columns(frame, self.columns)
        return frame.select(self.columns)

    def transform_record(self, record: Record) -> Record:
        return {name: record.get(name) for name in self.columns}


class Drop(Transform):
    """Drop these columns (absent ones are fine: they are gone already)."""

    type_name = "drop"
    stateful = False

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.drop(self.columns, strict=False)

    def transform_record(self, record: Record) -> Record:
        return {k: v for k, v in record.items() if k not in self.columns}


TRANSFORMS.register(Keep.type_name, Keep)
TRANSFORMS.register(Drop.type_name, Drop)
