"""The reference profile: built from the training frame, stored as JSON, and equal to the frame in a report."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopline.core.errors import DataError
from loopline.monitor import ReferenceProfile, drift_report
from loopline.monitor._profile import OTHER, CategoricalProfile, NumericProfile
from loopline.testing import shifted_tables


@pytest.mark.parametrize(
    ("rows", "current_rows", "drift"), [(20_000, 20_000, True), (20_000, 300, True), (5000, 1, False)]
)
def test_a_profile_gives_the_verdicts_of_its_frame(rows: int, current_rows: int, drift: bool) -> None:
    tables = shifted_tables(rows, 3, current_rows=current_rows, drift=drift)
    features = {"numeric": tables.numeric, "categorical": tables.categorical}
    from_frame = drift_report(tables.reference, tables.current, **features)
    profile = ReferenceProfile.from_frame(tables.reference, **features)
    assert drift_report(profile, tables.current, **features) == from_frame
    stored = ReferenceProfile.from_json(profile.to_json())
    assert drift_report(stored, tables.current, **features) == from_frame


def test_a_profile_holds_what_the_checks_need() -> None:
    frame = pl.DataFrame({"x": [3.0, None, 1.0, float("nan"), 2.0], "c": ["a", "b", None, "a", "a"]})
    profile = ReferenceProfile.from_frame(frame, numeric=["x"], categorical=["c"])
    x, c = profile.columns["x"], profile.columns["c"]
    assert isinstance(x, NumericProfile) and isinstance(c, CategoricalProfile)
    assert x.summary.values.tolist() == [1.0, 2.0, 3.0] and (x.summary.count, x.summary.n_null) == (3, 2)
    assert (x.mean, x.std) == (2.0, pytest.approx(np.std([1.0, 2.0, 3.0])))
    assert sum(x.bin_counts) == 5 and x.bin_counts[-1] == 2  # the null bin last
    assert c.summary.counts == {"a": 3, "b": 1} and c.summary.n_null == 1 and not c.pooled
    assert profile.n_rows == 5
    data = profile.to_dict()
    assert data["format"] == 1 and data["columns"]["x"]["count"] == 3
    assert ReferenceProfile.from_dict(data).columns["x"].summary.values.tolist() == [1.0, 2.0, 3.0]  # type: ignore[union-attr]


def test_a_profile_is_bounded() -> None:
    rng = np.random.default_rng(4)
    frame = pl.DataFrame({"x": rng.normal(size=50_000), "c": [f"k{i % 500}" for i in range(50_000)]})
    profile = ReferenceProfile.from_frame(frame, numeric=["x"], categorical=["c"], sample=1000, max_categories=20)
    x, c = profile.columns["x"], profile.columns["c"]
    assert isinstance(x, NumericProfile) and x.summary.values.size == 1000 and x.summary.count == 50_000
    assert np.all(np.diff(x.summary.values) >= 0)
    assert isinstance(c, CategoricalProfile) and c.pooled and len(c.summary.counts) == 21
    assert c.summary.counts[OTHER] == 50_000 - 20 * 100
    # the current rows of pooled and unseen categories fold into the same bin: no drift from the bound alone
    current = pl.DataFrame({"x": rng.normal(size=3000), "c": [f"k{i % 500}" for i in range(3000)]})
    report = drift_report(profile, current, numeric=["x"], categorical=["c"])
    assert report.drifted == []


def test_a_profile_without_the_feature_or_of_another_kind_is_refused() -> None:
    frame = pl.DataFrame({"amount": [1.0, 2.0] * 50, "colour": ["a", "b"] * 50})
    profile = ReferenceProfile.from_frame(frame, numeric=["amount"], categorical=["colour"])
    with pytest.raises(DataError, match=r"profile has no feature 'amout'\. Did you mean 'amount'"):
        drift_report(profile, frame.rename({"amount": "amout"}), numeric=["amout"], categorical=[])
    with pytest.raises(
        DataError, match=r"holds 'colour' as categorical, not numeric\. List 'colour' under categorical"
    ):
        drift_report(profile, frame, numeric=["colour"], categorical=[])
    with pytest.raises(DataError, match=r"training frame has no column 'colr'\. Did you mean 'colour'"):
        ReferenceProfile.from_frame(frame, numeric=[], categorical=["colr"])
    with pytest.raises(DataError, match=r"format 9 is not 1\. Profile the training frame again"):
        ReferenceProfile.from_dict({"format": 9, "n_rows": 1, "columns": {}})


_values = st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), min_size=1, max_size=300)


@settings(max_examples=40, deadline=None)
@given(ref_x=_values, cur_x=_values, data=st.data())
def test_profile_and_frame_agree_and_row_order_does_not_matter(
    ref_x: list[float | None], cur_x: list[float | None], data: st.DataObject
) -> None:
    ref_c = data.draw(st.lists(st.sampled_from(["a", "b", "c", "d", None]), min_size=len(ref_x), max_size=len(ref_x)))
    cur_c = data.draw(st.lists(st.sampled_from(["a", "b", "c", "d", None]), min_size=len(cur_x), max_size=len(cur_x)))
    reference = pl.DataFrame({"x": ref_x, "c": ref_c}, schema={"x": pl.Float64, "c": pl.String})
    current = pl.DataFrame({"x": cur_x, "c": cur_c}, schema={"x": pl.Float64, "c": pl.String})
    features = {"numeric": ["x"], "categorical": ["c"]}
    from_frame = drift_report(reference, current, **features)
    profile = ReferenceProfile.from_json(ReferenceProfile.from_frame(reference, **features).to_json())
    assert drift_report(profile, current, **features) == from_frame
    shuffled = drift_report(reference.reverse(), current.reverse(), **features)
    assert [(f.status, f.test) for f in shuffled.features] == [(f.status, f.test) for f in from_frame.features]
    assert all(f.status in ("drift", "no drift", "not enough data") for f in from_frame.features)
