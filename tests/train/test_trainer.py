from __future__ import annotations

import polars as pl
import pytest
from sklearn.datasets import load_breast_cancer

from loopline.core.errors import ConfigError, DataError
from loopline.prep import Preprocessor
from loopline.train import TrainResult, TrainSpec, resolve_task, train_candidate

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]


@pytest.fixture(scope="module")
def cancer() -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    data = load_breast_cancer(as_frame=True)
    df = pl.from_pandas(data.frame).sample(fraction=1.0, shuffle=True, seed=0)
    return df[:400], df[400:], [str(c) for c in data.feature_names]


def test_binary_candidate_on_breast_cancer(cancer: tuple[pl.DataFrame, pl.DataFrame, list[str]]) -> None:
    train, valid, features = cancer
    result = train_candidate(
        train,
        valid,
        TrainSpec(target="target", numeric=features, categorical=[], estimator="logistic_regression", seed=4),
    )
    assert isinstance(result, TrainResult)
    assert result.bundle.task == "binary" and result.bundle.classes == [0, 1]
    assert result.metrics["valid"]["roc_auc"] > 0.95
    assert set(result.metrics) == {"train", "valid"}
    assert set(result.timings) == {"fit_s", "prep_s", "valid_score_s", "total_s"}
    parts = result.timings["fit_s"] + result.timings["prep_s"] + result.timings["valid_score_s"]
    assert result.timings["total_s"] >= parts and min(result.timings.values()) > 0
    assert result.params["max_iter"] == 1000 and result.params["random_state"] == 4
    assert result.bundle.metadata["params"] == result.params


def test_preprocessing_is_fitted_on_train_only(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    train, valid = halves
    shifted = valid.with_columns(pl.col("bill_length_mm") + 100, pl.lit("Mars").alias("island"))
    result = train_candidate(
        train,
        shifted,
        TrainSpec(
            target="species",
            numeric=NUMERIC,
            categorical=["island"],
            estimator="logistic_regression",
            prep={"scale": "minmax"},
        ),
    )
    expected = Preprocessor(NUMERIC, ["island"], scale="minmax").fit(train).to_state()
    assert result.bundle.preprocessor.to_state() == expected


@pytest.mark.parametrize(
    ("target", "task"),
    [
        ("is_male", "binary"),
        ("sex", "binary"),
        ("species", "multiclass"),
        ("species_id", "multiclass"),
        ("body_mass_g", "regression"),
    ],
)
def test_auto_task(penguins: pl.DataFrame, target: str, task: str) -> None:
    assert resolve_task(penguins[target]) == task


def test_explicit_tasks_are_checked(penguins: pl.DataFrame) -> None:
    assert resolve_task(penguins["species_id"], "regression") == "regression"
    with pytest.raises(DataError, match="3 classes, too many for task 'binary'"):
        resolve_task(penguins["species"], "binary")
    with pytest.raises(DataError, match="regression needs numbers"):
        resolve_task(penguins["species"], "regression")
    with pytest.raises(DataError, match="has 1 class"):
        resolve_task(pl.Series("y", ["a", "a"]))
    with pytest.raises(ConfigError, match="unknown task 'multi'.*Did you mean 'multiclass'"):
        resolve_task(penguins["species"], "multi")


def test_null_targets_are_refused_with_their_count(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    train, valid = halves
    holed = train.with_columns(pl.when(pl.int_range(pl.len()) < 3).then(None).otherwise(pl.col("sex")).alias("sex"))
    with pytest.raises(DataError, match="target column 'sex' has 3 null rows") as info:
        train_candidate(
            holed, valid, TrainSpec(target="sex", numeric=NUMERIC, categorical=[], estimator="random_forest")
        )
    assert info.value.column == "sex"


def test_bad_configuration_is_refused(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    train, valid = halves
    with pytest.raises(ConfigError, match="'body_mass_g' is also listed as a feature"):
        train_candidate(
            train, valid, TrainSpec(target="body_mass_g", numeric=["body_mass_g"], categorical=[], estimator="ridge")
        )
    with pytest.raises(ConfigError, match="unknown preprocessing option 'scaling'.*Did you mean 'scale'"):
        train_candidate(
            train,
            valid,
            TrainSpec(target="body_mass_g", numeric=NUMERIC, categorical=[], estimator="ridge", prep={"scaling": None}),
        )
    with pytest.raises(DataError, match="target column 'gender' is missing.*"):
        train_candidate(train, valid, TrainSpec(target="gender", numeric=NUMERIC, categorical=[], estimator="ridge"))
    with pytest.raises(DataError, match=r"target values \['Gentoo'\] were not seen"):
        only_two = train.filter(pl.col("species") != "Gentoo")
        train_candidate(
            only_two,
            valid,
            TrainSpec(target="species", numeric=NUMERIC, categorical=[], estimator="logistic_regression"),
        )


def test_regression_and_lightgbm_candidates(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    train, valid = halves
    result = train_candidate(
        train,
        valid,
        TrainSpec(
            target="body_mass_g",
            numeric=NUMERIC,
            categorical=["island", "sex"],
            estimator="lightgbm",
            params={"n_estimators": 30},
        ),
    )
    assert result.bundle.task == "regression" and result.bundle.classes is None
    assert result.metrics["valid"]["r2"] > 0.5
    assert result.params["n_estimators"] == 30 and result.params["verbose"] == -1
