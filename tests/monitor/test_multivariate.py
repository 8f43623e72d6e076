"""Multivariate drift by a domain classifier: calibrated on undrifted data, and it sees joint shifts that the
per-feature tests cannot."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from loopline.core.config import DriftConfig, MultivariateConfig
from loopline.core.errors import ConfigError, DataError
from loopline.monitor import DriftReport, ReferenceProfile, drift_report, multivariate_drift

NUMERIC, CATEGORICAL = ["a", "b", "c"], ["g"]
ON = DriftConfig(multivariate=MultivariateConfig(enabled=True))


def table(rows: int, seed: int, correlation: float = 0.8) -> pl.DataFrame:
    """Two standard normals with the given correlation, an independent one, a category and a few nulls."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(rows)
    b = correlation * a + np.sqrt(1 - correlation**2) * rng.standard_normal(rows)
    c = np.where(rng.random(rows) < 0.05, np.nan, rng.standard_normal(rows))
    g = rng.choice(["u", "v", "w"], rows, p=[0.5, 0.3, 0.2])
    return pl.DataFrame({"a": a, "b": b, "c": c, "g": g})


def test_no_drift_raises_at_most_alpha_false_alarms() -> None:
    config = DriftConfig(p_value=0.1)
    found = [
        multivariate_drift(
            table(300, 2 * i), table(200, 2 * i + 1), numeric=NUMERIC, categorical=CATEGORICAL, config=config, seed=i
        )
        for i in range(50)
    ]
    assert sum(result.drifted for result in found) <= 0.1 * 50  # measured: 4 (200 draws: 5.5% at 0.1, 0.5% at 0.01)
    aucs = [result.auc for result in found if result.auc is not None]
    assert len(aucs) == 50 and abs(float(np.mean(aucs)) - 0.5) < 0.02  # chance, on average
    assert all(result.top_features == {} for result in found if not result.drifted)


def test_a_correlation_flip_is_caught_where_every_marginal_is_unchanged() -> None:
    reference, current = table(3000, 11, correlation=0.8), table(3000, 12, correlation=-0.8)
    per_feature = drift_report(reference, current, numeric=NUMERIC, categorical=CATEGORICAL, config=ON)
    assert per_feature.drifted == []  # each marginal is the same
    joint = per_feature.multivariate
    assert joint is not None and joint.status == "drift" and joint.auc is not None and joint.auc > 0.75
    assert list(joint.top_features)[:2] in (["a", "b"], ["b", "a"])
    assert per_feature.dataset_drift  # the domain classifier decides the dataset verdict too
    assert "domain classifier AUC" in joint.reason


def test_it_is_off_by_default_and_absent_from_the_report() -> None:
    report = drift_report(table(500, 1), table(500, 2, -0.8), numeric=NUMERIC, categorical=CATEGORICAL)
    assert report.multivariate is None and "multivariate" not in report.to_dict()


def test_the_report_round_trips_with_the_verdict() -> None:
    report = drift_report(table(800, 3), table(800, 4, -0.8), numeric=NUMERIC, categorical=CATEGORICAL, config=ON)
    assert report.multivariate is not None and report.multivariate.drifted
    assert DriftReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def test_a_profile_alone_is_not_available_and_reference_rows_make_it_run() -> None:
    reference, current = table(800, 5), table(800, 6, -0.8)
    profile = ReferenceProfile.from_frame(reference, numeric=NUMERIC, categorical=CATEGORICAL)
    alone = drift_report(profile, current, numeric=NUMERIC, categorical=CATEGORICAL, config=ON)
    assert alone.multivariate is not None and alone.multivariate.status == "not available"
    assert not alone.dataset_drift
    rows = drift_report(profile, current, numeric=NUMERIC, categorical=CATEGORICAL, config=ON, reference_rows=reference)
    assert rows.multivariate is not None and rows.multivariate.status == "drift"


def test_a_small_window_has_not_enough_data() -> None:
    result = multivariate_drift(table(500, 7), table(30, 8, -0.9), numeric=NUMERIC, categorical=CATEGORICAL)
    assert (result.status, result.auc, result.n_current) == ("not enough data", None, 30)
    assert not result.drifted


def test_the_samples_are_bounded_by_rows() -> None:
    config = DriftConfig(multivariate=MultivariateConfig(enabled=True, rows=400))
    result = multivariate_drift(
        table(3000, 9), table(1000, 10), numeric=NUMERIC, categorical=CATEGORICAL, config=config
    )
    assert (result.n_reference, result.n_current) == (400, 400)


def test_categorical_features_alone_are_compared() -> None:
    rng = np.random.default_rng(12)
    reference = pl.DataFrame({"k": rng.choice(["a", "b", "c"], 600), "m": rng.choice(["x", "y"], 600)})
    same = pl.DataFrame({"k": rng.choice(["a", "b", "c"], 600), "m": rng.choice(["x", "y"], 600)})
    assert multivariate_drift(reference, same, numeric=[], categorical=["k", "m"]).status == "no drift"
    tied = same.with_columns(m=pl.when(pl.col("k") == "a").then(pl.lit("x")).otherwise(pl.col("m")))
    result = multivariate_drift(reference, tied, numeric=[], categorical=["k", "m"])
    assert result.drifted and set(result.top_features) == {"k", "m"}  # the shift lives in their combination


def test_categories_of_other_types_and_unseen_ones_are_compared() -> None:
    reference = pl.DataFrame({"x": np.arange(400.0) % 7, "k": [i % 3 for i in range(400)]})
    current = pl.DataFrame({"x": np.arange(400.0) % 7, "k": [f"{i % 3}" if i % 2 else "new" for i in range(400)]})
    result = multivariate_drift(reference, current, numeric=["x"], categorical=["k"])
    assert result.drifted and list(result.top_features) == ["k"]


def test_bad_input_names_the_column_and_the_key() -> None:
    with pytest.raises(DataError, match="the current frame has no column 'g'.*Did you mean 'gg'"):
        multivariate_drift(table(100, 1), table(100, 2).rename({"g": "gg"}), numeric=NUMERIC, categorical=CATEGORICAL)
    with pytest.raises(ConfigError, match="no features to compare"):
        multivariate_drift(table(100, 1), table(100, 2), numeric=[], categorical=[])
    with pytest.raises(ValidationError, match="rows"):
        DriftConfig.model_validate({"multivariate": {"enabled": True, "rows": 10}})
    with pytest.raises(ValidationError, match="rwos"):
        DriftConfig.model_validate({"multivariate": {"rwos": 1000}})
