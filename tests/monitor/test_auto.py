"""The auto choice: a p-value test on small samples, a distance on large ones, few-valued numbers as categories."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from loopline.monitor._auto import auto_test
from loopline.monitor._summary import CategoricalSummary, numeric_summary, summarise


def _numbers(n: int, distinct: int = 1000) -> pl.Series:
    return pl.Series("x", np.arange(n) % distinct, dtype=pl.Float64)


def _labels(n: int, categories: int) -> pl.Series:
    return pl.Series("c", [f"k{i % categories}" for i in range(n)])


@pytest.mark.parametrize(
    ("reference", "current", "expected"),
    [
        (_numbers(100_000), _numbers(2000), "ks"),  # the smaller sample decides
        (_numbers(100_000), _numbers(2001), "wasserstein"),
        (_numbers(500), _numbers(100_000), "ks"),
        (_numbers(100_000, distinct=5), _numbers(100_000, distinct=5), "jensenshannon"),  # few values: categories
        (_numbers(500, distinct=2), _numbers(500, distinct=2), "ztest"),
        (_numbers(500, distinct=4), _numbers(500, distinct=4), "chi2"),
        (_labels(100_000, 2), _labels(1001, 2), "jensenshannon"),
        (_labels(100_000, 2), _labels(1000, 2), "ztest"),
        (_labels(100_000, 3), _labels(900, 3), "chi2"),
        (_labels(100_000, 200), _labels(20_000, 200), "chi2"),  # 100 values per category needed
        (_labels(100_000, 200), _labels(20_001, 200), "jensenshannon"),
    ],
)
def test_the_choice(reference: pl.Series, current: pl.Series, expected: str) -> None:
    name, _, _ = auto_test(summarise(reference), summarise(current))
    assert name == expected


def test_a_few_valued_numeric_column_is_handed_over_as_categories() -> None:
    ref, cur = numeric_summary(pl.Series([0.0, 1.0] * 50)), numeric_summary(pl.Series([1.0] * 80 + [None] * 2))
    name, ref_categories, cur_categories = auto_test(ref, cur)
    assert name == "ztest"
    assert ref_categories == CategoricalSummary({"0.0": 50, "1.0": 50}, 0)
    assert cur_categories == CategoricalSummary({"1.0": 80}, 2)
