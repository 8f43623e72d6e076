"""feature_overlay: one feature's reference bins (from a profile) counted in a window's values."""

from __future__ import annotations

import polars as pl
import pytest

from loopline.core.errors import DataError
from loopline.monitor import ReferenceProfile, feature_overlay


def profile() -> ReferenceProfile:
    frame = pl.DataFrame(
        {
            "x": [float(i) for i in range(100)] + [None] * 10,
            "city": ["a"] * 60 + ["b"] * 30 + ["c"] * 15 + ["d"] * 4 + [None],
        }
    )
    return ReferenceProfile.from_frame(frame, numeric=["x"], categorical=["city"])


def test_a_numeric_feature_is_counted_in_the_reference_quantile_bins() -> None:
    reference = profile()
    overlay = feature_overlay(reference, "x", pl.Series([500.0, 600.0, -5.0, None]))
    column = reference.columns["x"]
    assert overlay.kind == "numeric"
    assert overlay.reference == column.bin_counts and sum(overlay.reference) == 110  # type: ignore[union-attr]
    assert len(overlay.bins) == len(overlay.reference) == len(overlay.current)
    assert overlay.bins[0].startswith("≤ ") and overlay.bins[-2].startswith("> ") and overlay.bins[-1] == "missing"
    assert overlay.current[0] == 1 and overlay.current[-2] == 2 and overlay.current[-1] == 1
    assert overlay.shares("current")[-2] == 0.5 and overlay.shares("reference")[-1] == pytest.approx(10 / 110)


def test_a_categorical_feature_keeps_the_common_categories_and_counts_unseen_and_missing() -> None:
    overlay = feature_overlay(profile(), "city", pl.Series(["a", "d", "zzz", "zzz", None]), max_categories=2)
    assert overlay.kind == "categorical"
    assert overlay.bins == ["a", "b", "other", "unseen", "missing"]
    assert overlay.reference == [60, 30, 19, 0, 1]
    assert overlay.current == [1, 0, 1, 2, 1]
    empty = feature_overlay(profile(), "city", pl.Series([], dtype=pl.String))
    assert empty.current == [0] * len(empty.bins) and empty.shares("current") == [0.0] * len(empty.bins)


def test_a_feature_the_profile_lacks_is_named() -> None:
    with pytest.raises(DataError, match="no feature 'cty'") as caught:
        feature_overlay(profile(), "cty", pl.Series(["a"]))
    assert "city" in (caught.value.hint or "")
    with pytest.raises(DataError, match="numeric feature 'x'"):
        feature_overlay(profile(), "x", pl.Series(["not a number"]))
