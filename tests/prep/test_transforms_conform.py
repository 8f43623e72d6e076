"""Every built-in transform passes the transform contract (loopline.testing.check_transform)."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from loopline.prep import TRANSFORMS, build_transform
from loopline.testing import check_transform

TRAIN = pl.DataFrame(
    {
        "amount": [1.5, None, 3.0, float("nan"), 5.0, 2.5, 1.0, 4.0],
        "qty": [1, 2, None, 4, 0, 3, 1, 2],
        "city": ["lyon", "paris", "lyon", None, "nice", "paris", "lyon", "lyon"],
        "flag": [True, False, None, True, True, False, True, False],
        "label": [0, 1, 0, 1, 1, 0, 0, 1],
    }
)
TEST = pl.DataFrame(
    {
        "amount": [None, 10.0, -2.0, float("inf")],
        "qty": [5, None, 0, 1],
        "city": ["rome", None, "lyon", "paris"],  # rome: never seen
        "flag": [None, True, False, True],
    }
)

SPECS: dict[str, dict[str, Any]] = {
    "impute": {"columns": ["amount", "qty", "city"], "strategy": "most_frequent", "add_indicator": True},
    "scale": {"columns": ["amount", "qty"], "method": "robust"},
    "onehot": {"columns": ["city", "flag"], "min_frequency": 2},
    "ordinal": {"columns": ["city"]},
    "derive": {"columns": {"per_item": "amount / (qty + 1)", "big": "amount > 2 and qty >= 1", "half": "qty / 2"}},
    "keep": {"columns": ["qty", "amount"]},
    "drop": {"columns": ["flag", "nothing"]},
}


@pytest.mark.parametrize("type_name", sorted(SPECS))
def test_builtin_transform_conforms(type_name: str) -> None:
    check_transform(lambda: build_transform({"type": type_name, **SPECS[type_name]}), TRAIN, TEST, target="label")


def test_every_registered_transform_is_checked_here() -> None:
    assert set(TRANSFORMS.names()) <= set(SPECS), f"add {set(TRANSFORMS.names()) - set(SPECS)} to SPECS"
