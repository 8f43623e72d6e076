"""Power: the five shift kinds of issue 13 at 100k rows are all found by the auto choice, nothing else is."""

from __future__ import annotations

import pytest

from loopline.monitor import drift_report
from loopline.testing import shifted_tables


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_every_shift_kind_is_found_and_no_unchanged_column_is_flagged(seed: int) -> None:
    tables = shifted_tables(100_000, seed)
    report = drift_report(tables.reference, tables.current, numeric=tables.numeric, categorical=tables.categorical)
    assert report.drifted == tables.shifted
    assert report.dataset_drift and report.not_enough_data == []
    tests = {feature.feature: feature.test for feature in report.features}
    assert {tests[name] for name in tables.numeric} == {"wasserstein"}
    assert {tests[name] for name in tables.categorical} == {"jensenshannon"}


def test_the_generator_is_seeded_and_sized() -> None:
    first, again = shifted_tables(1000, 7, current_rows=300), shifted_tables(1000, 7, current_rows=300)
    assert first.reference.equals(again.reference) and first.current.equals(again.current)
    assert (first.reference.height, first.current.height) == (1000, 300)
    assert first.shifted == ["mean_shift", "scale", "mixture", "mix_change", "top_share"]
    assert set(first.shifted) <= set(first.numeric + first.categorical) == set(first.reference.columns)
    assert shifted_tables(1000, 7, drift=False).shifted == []
