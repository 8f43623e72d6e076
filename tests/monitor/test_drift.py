from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import polars as pl
import pytest

from loopline.core.config import DriftConfig
from loopline.core.errors import ConfigError, DataError
from loopline.monitor import DriftReport, FeatureDrift, drift_report, drift_verdict

NUMERIC, CATEGORICAL = ["x", "y"], ["colour"]


def by_name(report: DriftReport) -> dict[str, FeatureDrift]:
    return {feature.feature: feature for feature in report.features}


def test_no_drift_flags_nothing(reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]) -> None:
    report = drift_report(reference, frame(2), numeric=NUMERIC, categorical=CATEGORICAL)
    assert report.drifted == []
    assert not report.dataset_drift
    assert [f.feature for f in report.features] == ["x", "y", "colour"]
    assert all(f.psi < 0.05 and f.p_value > 0.01 for f in report.features)
    assert {f.test for f in report.features} == {"ks", "chi2"}


def test_mean_shift_is_flagged(reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]) -> None:
    report = drift_report(reference, frame(2, mean=1.0), numeric=NUMERIC, categorical=CATEGORICAL)
    assert report.drifted == ["x"]
    assert report.dataset_drift
    x = report.features[0]
    assert x.kind == "numeric" and x.psi > 0.25 and x.p_value < 1e-10
    assert x.n_reference == x.n_current == 4000
    assert x.reason.startswith("PSI")


def test_categorical_mix_change_is_flagged(reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]) -> None:
    report = drift_report(reference, frame(2, mix=(0.2, 0.3, 0.5)), numeric=NUMERIC, categorical=CATEGORICAL)
    assert report.drifted == ["colour"]
    colour = report.features[-1]
    assert colour.kind == "categorical" and colour.test == "chi2"
    assert colour.p_value < 1e-10


def test_unseen_categories_are_pooled_and_flagged(reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]) -> None:
    current = frame(2).with_columns(
        pl.when(pl.int_range(pl.len()) % 3 == 0)
        .then(pl.format("new_{}", pl.int_range(pl.len()) % 50))
        .otherwise(pl.col("colour"))
        .alias("colour")
    )
    colour = by_name(drift_report(reference, current, numeric=NUMERIC, categorical=CATEGORICAL))["colour"]
    assert colour.drifted
    assert "33.4% of current rows in unseen categories" in colour.reason
    assert np.isfinite(colour.psi) and np.isfinite(colour.statistic)


def test_null_rate_change_drifts_on_psi_alone(reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]) -> None:
    current = frame(2).with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(None).otherwise(pl.col("x")).alias("x"),
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(None).otherwise(pl.col("colour")).alias("colour"),
    )
    report = drift_report(reference, current, numeric=NUMERIC, categorical=CATEGORICAL)
    x, colour = by_name(report)["x"], by_name(report)["colour"]
    # the non-null values keep their distribution: the tests see nothing, the null bin does
    assert x.p_value > 0.01 and colour.p_value > 0.01
    assert report.drifted == ["x", "colour"]


def test_nan_counts_as_null() -> None:
    reference = pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0] * 50})
    current = pl.DataFrame({"x": [1.0, 2.0, float("nan"), None] * 50})
    x = drift_report(reference, current, numeric=["x"], categorical=[]).features[0]
    assert x.drifted and x.psi > 0.25


def test_all_null_column_skips_the_test_and_uses_the_null_bin() -> None:
    reference = pl.DataFrame({"x": [None] * 100, "c": [None] * 100}, schema={"x": pl.Float64, "c": pl.String})
    current = pl.DataFrame({"x": [None] * 100, "c": [None] * 100}, schema={"x": pl.Float64, "c": pl.String})
    report = drift_report(reference, current, numeric=["x"], categorical=["c"])
    for feature in report.features:
        assert feature.psi == 0.0 and feature.p_value == 1.0 and feature.statistic == 0.0
        assert "skipped" in feature.reason and not feature.drifted
    filled = pl.DataFrame({"x": np.arange(100.0), "c": ["a"] * 100})
    x, c = drift_report(reference, filled, numeric=["x"], categorical=["c"]).features
    assert x.drifted and c.drifted
    assert "reference sample has no non-null values" in x.reason


def test_pure_null_dtype_is_accepted() -> None:
    frame = pl.DataFrame({"x": [None] * 10})
    assert frame.schema["x"] == pl.Null
    assert not drift_report(frame, frame, numeric=["x"], categorical=[]).dataset_drift


def test_constant_column() -> None:
    reference = pl.DataFrame({"k": [7.0] * 500, "c": ["only"] * 500})
    same = drift_report(reference, reference, numeric=["k"], categorical=["c"])
    assert same.drifted == []
    assert same.features[0].psi == 0.0
    assert "fewer than two categories" in same.features[1].reason
    moved = pl.DataFrame({"k": [8.0] * 500, "c": ["other"] * 500})
    assert drift_report(reference, moved, numeric=["k"], categorical=["c"]).drifted == ["k", "c"]


def test_large_sample_trivial_shift_is_not_drift() -> None:
    rng = np.random.default_rng(7)
    reference = pl.DataFrame({"x": rng.normal(0, 1, 200_000)})
    current = pl.DataFrame({"x": rng.normal(0.05, 1, 200_000)})
    x = drift_report(reference, current, numeric=["x"], categorical=[]).features[0]
    assert x.p_value < 0.01 and x.psi < 0.125
    assert not x.drifted
    assert "too small" in x.reason


def test_verdict_rule_both_sides() -> None:
    config = DriftConfig(psi_threshold=0.2, p_value=0.05)
    assert drift_verdict(0.21, 0.9, config)[0]
    assert drift_verdict(0.11, 0.01, config) == (True, "p-value 0.01 < 0.05 and PSI 0.110 > 0.1")
    assert not drift_verdict(0.09, 0.01, config)[0]
    assert not drift_verdict(0.19, 0.06, config)[0]


def test_min_drifted_features_sets_dataset_drift(reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]) -> None:
    current = frame(2, mean=1.0)
    config = DriftConfig(min_drifted_features=2)
    report = drift_report(reference, current, numeric=NUMERIC, categorical=CATEGORICAL, config=config)
    assert report.drifted == ["x"] and not report.dataset_drift
    assert report.config == config


def test_bins_config_is_used(reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]) -> None:
    current = frame(2, mean=0.3)
    coarse = drift_report(reference, current, numeric=["x"], categorical=[], config=DriftConfig(bins=2))
    fine = drift_report(reference, current, numeric=["x"], categorical=[], config=DriftConfig(bins=20))
    assert coarse.features[0].psi < fine.features[0].psi


def test_integer_and_boolean_numeric_features() -> None:
    reference = pl.DataFrame({"n": list(range(100)) * 5, "b": [True, False] * 250})
    current = pl.DataFrame({"n": list(range(50, 150)) * 5, "b": [True] * 500})
    report = drift_report(reference, current, numeric=["n", "b"], categorical=[])
    assert report.drifted == ["n", "b"]


def test_report_round_trips_through_json(reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]) -> None:
    report = drift_report(reference, frame(2, mean=1.0), numeric=NUMERIC, categorical=CATEGORICAL)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["drifted"] == ["x"] and data["features"][0]["feature"] == "x"
    assert DriftReport.from_dict(data) == report


def test_missing_feature_names_the_column_with_a_suggestion(reference: pl.DataFrame) -> None:
    renamed = reference.rename({"colour": "color"})
    with pytest.raises(DataError, match=r"current frame has no column 'colour'\. Did you mean 'color'") as info:
        drift_report(reference, renamed, numeric=["x"], categorical=["colour"])
    assert info.value.column == "colour"
    with pytest.raises(DataError, match=r"no column 'zzz'\. Use one of its columns: x, y, colour"):
        drift_report(reference, reference, numeric=["zzz"], categorical=[])


def test_empty_current_frame_says_how_many_rows_are_needed(reference: pl.DataFrame) -> None:
    with pytest.raises(DataError, match="current frame has 0 rows; a drift report needs at least 1"):
        drift_report(reference, reference.head(0), numeric=NUMERIC, categorical=CATEGORICAL)
    with pytest.raises(DataError, match="reference frame has 0 rows"):
        drift_report(reference.head(0), reference, numeric=NUMERIC, categorical=CATEGORICAL)


def test_bad_feature_lists(reference: pl.DataFrame) -> None:
    with pytest.raises(ConfigError, match="no features to compare"):
        drift_report(reference, reference, numeric=[], categorical=[])
    with pytest.raises(ConfigError, match=r"feature 'x' is listed more than once\. List each feature once"):
        drift_report(reference, reference, numeric=["x"], categorical=["x"])


def test_string_column_as_numeric_is_refused(reference: pl.DataFrame) -> None:
    with pytest.raises(DataError, match=r"numeric feature 'colour' has dtype String\. List it under categorical"):
        drift_report(reference, reference, numeric=["colour"], categorical=[])
