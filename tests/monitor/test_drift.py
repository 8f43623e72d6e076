from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from loopline.core.config import DriftConfig
from loopline.core.errors import ConfigError, DataError
from loopline.monitor import DriftReport, FeatureDrift, drift_report, drift_verdict

NUMERIC, CATEGORICAL = ["x", "y"], ["colour"]


def by_name(report: DriftReport) -> dict[str, FeatureDrift]:
    return {feature.feature: feature for feature in report.features}


def test_no_drift_flags_nothing(reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]) -> None:
    report = drift_report(reference, frame(2), numeric=NUMERIC, categorical=CATEGORICAL)
    assert report.drifted == [] and report.not_enough_data == []
    assert not report.dataset_drift
    assert [f.feature for f in report.features] == ["x", "y", "colour"]
    # 4000 rows a side: auto picks the distances, far below their threshold
    assert [f.test for f in report.features] == ["wasserstein", "wasserstein", "jensenshannon"]
    assert all(f.status == "no drift" and f.psi < 0.05 and f.statistic < 0.05 for f in report.features)
    assert all(f.threshold == 0.1 and f.p_value is None for f in report.features)


def test_mean_shift_is_flagged(reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]) -> None:
    report = drift_report(reference, frame(2, mean=1.0), numeric=NUMERIC, categorical=CATEGORICAL)
    assert report.drifted == ["x"]
    assert report.dataset_drift
    x = report.features[0]
    assert x.kind == "numeric" and x.status == "drift" and 0.9 < x.statistic < 1.1  # one sd, normed by the sd
    assert x.n_reference == x.n_current == 4000
    assert x.reason.startswith("wasserstein: distance 0.99")


def test_categorical_mix_change_is_flagged(reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]) -> None:
    report = drift_report(reference, frame(2, mix=(0.2, 0.3, 0.5)), numeric=NUMERIC, categorical=CATEGORICAL)
    assert report.drifted == ["colour"]
    colour = report.features[-1]
    assert colour.kind == "categorical" and colour.test == "jensenshannon"
    assert colour.statistic > 0.2


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


def test_a_missing_share_change_is_drift_of_its_own(
    reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]
) -> None:
    current = frame(2).with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(None).otherwise(pl.col("x")).alias("x"),
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(None).otherwise(pl.col("colour")).alias("colour"),
    )
    report = drift_report(reference, current, numeric=NUMERIC, categorical=CATEGORICAL)
    x, colour = by_name(report)["x"], by_name(report)["colour"]
    # the non-null values keep their distribution: the tests see nothing, the missing share moved 0% -> 50%
    assert x.statistic < 0.1 and colour.statistic < 0.1
    assert x.missing_drifted and colour.missing_drifted and not by_name(report)["y"].missing_drifted
    assert (x.missing_reference, x.missing_current) == (0.0, 0.5)
    assert "missing share 0.0% -> 50.0%; missing share jensenshannon: distance" in x.reason
    assert report.drifted == ["x", "colour"]


def test_nan_counts_as_null() -> None:
    reference = pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0] * 50})
    current = pl.DataFrame({"x": [1.0, 2.0, float("nan"), None] * 50})
    x = drift_report(reference, current, numeric=["x"], categorical=[]).features[0]
    assert x.drifted and x.missing_drifted and x.missing_current == 0.5 and x.psi > 0.25
    assert x.test == "chi2"  # four distinct values: compared as categories


def test_all_null_columns_have_not_enough_data() -> None:
    reference = pl.DataFrame({"x": [None] * 100, "c": [None] * 100}, schema={"x": pl.Float64, "c": pl.String})
    current = pl.DataFrame({"x": [None] * 100, "c": [None] * 100}, schema={"x": pl.Float64, "c": pl.String})
    report = drift_report(reference, current, numeric=["x"], categorical=["c"])
    for feature in report.features:
        assert feature.psi == 0.0 and feature.p_value is None and feature.statistic == 0.0
        assert feature.status == "not enough data" and not feature.drifted
        assert "not enough data (0 non-null reference values" in feature.reason
    assert report.not_enough_data == ["x", "c"] and not report.dataset_drift
    filled = pl.DataFrame({"x": np.arange(100.0), "c": ["a"] * 100})
    x, c = drift_report(reference, filled, numeric=["x"], categorical=["c"]).features
    assert x.drifted and c.drifted and x.missing_drifted and c.missing_drifted


def test_a_report_on_one_logged_row_has_no_verdict(reference: pl.DataFrame) -> None:
    report = drift_report(reference, reference.head(1), numeric=NUMERIC, categorical=CATEGORICAL)
    assert [f.status for f in report.features] == ["not enough data"] * 3
    assert report.drifted == [] and not report.dataset_drift
    assert report.not_enough_data == ["x", "y", "colour"]
    assert "1 non-null current values; ks needs 20" in report.features[0].reason


def test_pure_null_dtype_is_accepted() -> None:
    frame = pl.DataFrame({"x": [None] * 10})
    assert frame.schema["x"] == pl.Null
    assert not drift_report(frame, frame, numeric=["x"], categorical=[]).dataset_drift


def test_constant_column() -> None:
    reference = pl.DataFrame({"k": [7.0] * 500, "c": ["only"] * 500})
    same = drift_report(reference, reference, numeric=["k"], categorical=["c"])
    assert same.drifted == []
    assert [f.status for f in same.features] == ["no drift", "no drift"]
    assert same.features[0].psi == 0.0 and same.features[1].p_value == 1.0
    moved = pl.DataFrame({"k": [8.0] * 500, "c": ["other"] * 500})
    report = drift_report(reference, moved, numeric=["k"], categorical=["c"])
    assert report.drifted == ["k", "c"] and {f.test for f in report.features} == {"ztest"}


def test_large_sample_trivial_shift_is_not_drift() -> None:
    rng = np.random.default_rng(7)
    reference = pl.DataFrame({"x": rng.normal(0, 1, 200_000)})
    current = pl.DataFrame({"x": rng.normal(0.05, 1, 200_000)})
    x = drift_report(reference, current, numeric=["x"], categorical=[]).features[0]
    assert x.test == "wasserstein" and 0.03 < x.statistic < 0.07
    assert not x.drifted and x.reason.startswith("wasserstein: distance 0.0") and x.reason.endswith("<= 0.1")
    # the p-value test finds it significant: a distance asks whether it matters
    ks = drift_report(reference, current, numeric=["x"], categorical=[], config=DriftConfig(numeric_test="ks"))
    assert ks.features[0].drifted and ks.features[0].p_value is not None and ks.features[0].p_value < 1e-10


def test_verdict_rule_is_the_tests_own() -> None:
    config = DriftConfig(psi_threshold=0.2, p_value=0.05)
    assert drift_verdict(0.9, 0.01, config) == (True, "p-value 0.01 < 0.05")
    assert drift_verdict(0.0, 0.06, config) == (False, "p-value 0.06 >= 0.05")
    assert drift_verdict(0.9, 0.2, config) == (False, "p-value 0.2 >= 0.05")  # PSI no longer gatekeeps
    assert drift_verdict(0.0, 0.02, config, threshold=0.01) == (False, "p-value 0.02 >= 0.01")


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


# -- the drift test of each feature, chosen by config from the registry ------------------------------


def test_auto_chooses_by_sample_size(reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]) -> None:
    assert DriftConfig().numeric_test == "auto" and DriftConfig().categorical_test == "auto"
    large = drift_report(reference, frame(2), numeric=NUMERIC, categorical=CATEGORICAL)
    assert [f.test for f in large.features] == ["wasserstein", "wasserstein", "jensenshannon"]
    # a small current window makes it a p-value test, whatever the reference size
    small = drift_report(reference, frame(2).head(500), numeric=NUMERIC, categorical=CATEGORICAL)
    assert [f.test for f in small.features] == ["ks", "ks", "chi2"]
    assert all(f.p_value is not None and f.threshold == 0.01 for f in small.features)


def test_psi_as_the_test_is_a_distance_with_its_threshold(
    reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]
) -> None:
    config = DriftConfig(numeric_test="psi", categorical_test="psi")
    report = drift_report(reference, frame(2, mean=1.0), numeric=NUMERIC, categorical=CATEGORICAL, config=config)
    x, y, colour = report.features
    assert {f.test for f in report.features} == {"psi"}
    assert all(f.p_value is None and f.statistic == f.psi and f.threshold == 0.1 for f in report.features)
    assert x.drifted and x.reason.startswith("psi: distance")
    assert not y.drifted and not colour.drifted
    assert report.drifted == ["x"]
    strict = drift_report(
        reference,
        frame(2, mean=0.2),
        numeric=NUMERIC,
        categorical=[],
        config=config.model_copy(update={"psi_threshold": 0.01}),
    )
    assert strict.features[0].drifted and strict.features[0].threshold == 0.01


def test_a_feature_can_have_its_own_test(reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]) -> None:
    config = DriftConfig(tests={"y": "psi", "colour": "psi"})
    current = frame(2)
    report = drift_report(reference, current, numeric=NUMERIC, categorical=CATEGORICAL, config=config)
    assert [f.test for f in report.features] == ["wasserstein", "psi", "psi"]
    default = drift_report(reference, current, numeric=NUMERIC, categorical=CATEGORICAL)
    assert report.features[0] == default.features[0]
    assert [f.psi for f in report.features] == [f.psi for f in default.features]


def test_a_feature_can_have_its_own_threshold(reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]) -> None:
    current = frame(2, mean=0.08)
    loose = drift_report(reference, current, numeric=["x"], categorical=[])
    assert loose.features[0].test == "wasserstein" and not loose.features[0].drifted
    config = DriftConfig.model_validate({"tests": {"x": {"test": "wasserstein", "threshold": 0.05}}})
    strict = drift_report(reference, current, numeric=["x"], categorical=[], config=config)
    assert strict.features[0].drifted and strict.features[0].threshold == 0.05
    alpha = DriftConfig.model_validate({"tests": {"x": {"test": "ks", "threshold": 1e-30}}})
    ks = drift_report(reference, current, numeric=["x"], categorical=[], config=alpha).features[0]
    assert ks.threshold == 1e-30 and ks.p_value is not None and ks.p_value > 1e-30 and not ks.drifted


def test_a_column_test_with_a_wrong_key_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError, match=r"tests\.x\.treshold"):
        DriftConfig.model_validate({"tests": {"x": {"test": "ks", "treshold": 0.1}}})
    with pytest.raises(ValidationError, match="greater than 0"):
        DriftConfig.model_validate({"tests": {"x": {"test": "ks", "threshold": -1}}})
    with pytest.raises(ValidationError, match="correction"):
        DriftConfig(correction="sidak")  # type: ignore[arg-type]


def test_an_unknown_test_in_a_column_test_names_its_key(reference: pl.DataFrame) -> None:
    config = DriftConfig.model_validate({"tests": {"x": {"test": "wasserstien"}}})
    with pytest.raises(
        ConfigError, match=r"monitor\.drift\.tests\.x: unknown drift test 'wasserstien'\. Did you mean 'wasserstein'"
    ):
        drift_report(reference, reference, numeric=NUMERIC, categorical=[], config=config)


def test_an_unknown_test_names_the_key_with_a_suggestion(reference: pl.DataFrame) -> None:
    with pytest.raises(
        ConfigError, match=r"monitor\.drift\.numeric_test: unknown drift test 'kss'\. Did you mean 'ks'"
    ):
        drift_report(reference, reference, numeric=NUMERIC, categorical=[], config=DriftConfig(numeric_test="kss"))
    config = DriftConfig(categorical_test="nope")
    known = "auto, chi2, hellinger, jensenshannon, ks, psi, wasserstein, ztest"
    with pytest.raises(ConfigError, match=rf"unknown drift test 'nope'\. Known drift tests: {known}") as info:
        drift_report(reference, reference.head(0), numeric=NUMERIC, categorical=CATEGORICAL, config=config)
    assert info.value.key == "monitor.drift.categorical_test"


def test_a_test_of_another_kind_says_which_kinds_it_takes(reference: pl.DataFrame) -> None:
    config = DriftConfig(numeric_test="chi2")
    with pytest.raises(
        ConfigError,
        match=r"numeric_test: drift test 'chi2' takes categorical columns, not numeric ones\. "
        r"Choose a test for numeric columns: auto, hellinger, jensenshannon, ks, psi, wasserstein",
    ) as info:
        drift_report(reference, reference, numeric=NUMERIC, categorical=CATEGORICAL, config=config)
    assert info.value.key == "monitor.drift.numeric_test"
    override = DriftConfig(tests={"colour": "ks"})
    with pytest.raises(ConfigError, match=r"tests\.colour: drift test 'ks' takes numeric columns, not categorical"):
        drift_report(reference, reference, numeric=NUMERIC, categorical=CATEGORICAL, config=override)


def test_a_test_for_an_unknown_feature_is_refused(reference: pl.DataFrame) -> None:
    config = DriftConfig(tests={"colur": "psi"})
    with pytest.raises(ConfigError, match=r"names 'colur', which is not a monitored feature\. Did you mean 'colour'"):
        drift_report(reference, reference, numeric=NUMERIC, categorical=CATEGORICAL, config=config)


def test_test_names_must_be_aliases() -> None:
    with pytest.raises(ValidationError, match="numeric_test"):
        DriftConfig(numeric_test="scipy.stats:ks_2samp")
    with pytest.raises(ValidationError, match="tests.x"):
        DriftConfig(tests={"x": "K S"})


def test_a_distance_with_a_threshold_decides_on_its_own() -> None:
    config = DriftConfig()
    assert drift_verdict(0.05, None, config, statistic=0.6, threshold=0.5) == (True, "distance 0.6 > 0.5")
    assert drift_verdict(0.05, None, config, statistic=0.4, threshold=0.5) == (False, "distance 0.4 <= 0.5")
    assert not drift_verdict(0.3, None, config, statistic=0.4, threshold=0.5)[0]
    assert drift_verdict(0.3, None, config, statistic=0.4) == (
        False,
        "distance 0.4 (the test is a distance without a threshold)",
    )


def test_a_report_with_a_distance_test_round_trips(reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]) -> None:
    config = DriftConfig(numeric_test="psi", tests={"colour": "psi"})
    report = drift_report(reference, frame(2), numeric=NUMERIC, categorical=CATEGORICAL, config=config)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["features"][0]["p_value"] is None and data["config"]["tests"] == {"colour": "psi"}
    assert DriftReport.from_dict(data) == report


def test_a_report_stored_before_drift_tests_were_plugins_still_loads() -> None:
    stored = {
        "features": [
            {
                "feature": "x",
                "kind": "numeric",
                "psi": 0.4,
                "test": "ks",
                "statistic": 0.3,
                "p_value": 1e-12,
                "drifted": True,
                "n_reference": 100,
                "n_current": 90,
                "reason": "PSI 0.400 > 0.25",
            }
        ],
        "drifted": ["x"],
        "dataset_drift": True,
        "config": {"psi_threshold": 0.25, "p_value": 0.01, "bins": 10, "min_drifted_features": 1},
    }
    report = DriftReport.from_dict(stored)
    assert report.features[0].test == "ks" and report.features[0].p_value == 1e-12
    assert report.features[0].status == "drift" and report.drifted == ["x"]
    assert report.config == DriftConfig(psi_threshold=0.25)
