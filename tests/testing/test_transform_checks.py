"""check_transform catches each broken rule of the transform contract."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest

from loopline.prep import TRANSFORMS, Record, Transform
from loopline.testing import check_transform

TRAIN = pl.DataFrame({"x": [1.0, 2.0, 3.0, None]})
TEST = pl.DataFrame({"x": [4.0, None, 0.5]})


class Center(Transform):
    """x - mean(x): a correct transform the broken ones below derive from."""

    type_name = "test-center"

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> Center:
        self.mean_ = {c: float(frame[c].mean()) for c in self.columns}  # type: ignore[arg-type]
        return self

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.col(c) - self.mean_[c] for c in self.columns)

    def transform_record(self, record: Record) -> Record:
        out = dict(record)
        for c in self.columns:
            out[c] = None if out.get(c) is None else out[c] - self.mean_[c]
        return out


class RecordDisagrees(Center):
    def transform_record(self, record: Record) -> Record:
        return {**super().transform_record(record), "x": 0.0}


class StateNotJson(Center):
    def fit(self, frame: pl.DataFrame, target: str | None = None) -> Center:
        super().fit(frame)
        self.series_: Any = frame["x"]
        return self


class MutatesOnTransform(Center):
    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.mean_ = {c: v + 1 for c, v in self.mean_.items()}
        return super().transform(frame)


class StoresUnderAnotherName(Center):
    def __init__(self, columns: list[str]) -> None:
        self.names = columns

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> Center:
        self.columns = self.names
        return super().fit(frame)


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    classes = [Center, RecordDisagrees, StateNotJson, MutatesOnTransform, StoresUnderAnotherName]
    for cls in classes:
        TRANSFORMS.register(cls.type_name, cls, replace=True)
    yield
    TRANSFORMS.register(Center.type_name, Center, replace=True)


def test_a_correct_transform_passes() -> None:
    check_transform(lambda: Center(["x"]), TRAIN, TEST)


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (RecordDisagrees, "table gives"),
        (StateNotJson, "must be JSON"),
        (MutatesOnTransform, "must not change the state"),
        (StoresUnderAnotherName, "get_params"),
    ],
)
def test_each_broken_rule_is_named(cls: type[Transform], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_transform(lambda: cls(["x"]), TRAIN, TEST)  # type: ignore[call-arg]
