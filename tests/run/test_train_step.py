"""The train step's fit options (early stopping, time budget, class weights) and what its report records."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from loopline import Pipeline
from loopline.core import STEP_TYPES, StepContext
from loopline.core.errors import DataError
from loopline.run import Runner
from loopline.store import Store
from loopline.train import TrainSpec


def labelled(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    return pl.DataFrame({"x": x, "g": rng.choice(["a", "b"], rows), "y": (x + rng.normal(scale=0.5, size=rows)) > 0.8})


def train_step(inputs: list[pl.DataFrame], **config: Any) -> dict[str, Any]:
    step_type = STEP_TYPES.get("train")
    ctx = StepContext(run_id="test-run", step="fit", params={}, store=None)
    out = step_type.run(step_type.Config.model_validate({"target": "y", "numeric": ["x"], **config}), inputs, ctx)
    return dict(out)


def test_the_train_config_is_a_train_spec_plus_the_steps_own_keys() -> None:
    config = STEP_TYPES.get("train").Config
    assert issubclass(config, TrainSpec)
    own = set(config.model_fields) - set(TrainSpec.model_fields)
    assert own == {"reference_rows", "slices", "slice_top", "slice_min_rows", "threads", "cv"}


def test_early_stopping_and_the_learning_curve_reach_the_report() -> None:
    data = labelled(900, 1)
    out = train_step(
        [data[:600], data[600:]],
        estimator="lightgbm",
        params={"n_estimators": 500, "learning_rate": 0.3},
        early_stopping={"patience": 5},
        class_weight="balanced",
    )
    training = out["report"]["timings"]["training"]
    assert training["stopped"] == "converged" and training["iterations"] < 500
    assert len(training["learning_curve"]["valid"]) == training["iterations"]
    assert out["report"]["step_config"]["early_stopping"] == {"patience": 5, "metric": "auto"}
    assert out["report"]["step_config"]["class_weight"] == "balanced"


def test_learning_curve_and_train_metrics_rows_reach_the_fit() -> None:
    data = labelled(900, 2)
    bare = train_step([data[:600], data[600:]], estimator="lightgbm", params={"n_estimators": 8})
    watched = train_step(
        [data[:600], data[600:]],
        estimator="lightgbm",
        params={"n_estimators": 8},
        learning_curve=True,
        train_metrics_rows=200,
    )
    assert bare["report"]["timings"]["training"]["learning_curve"] is None
    assert bare["report"]["timings"]["training"]["train_metrics_rows"] == 600
    training = watched["report"]["timings"]["training"]
    assert len(training["learning_curve"]["valid"]) == 8 and training["train_metrics_rows"] == 200
    assert bare["report"]["metrics"]["valid"] == watched["report"]["metrics"]["valid"]
    with pytest.raises(ValidationError, match="train_metrics_rows"):
        STEP_TYPES.get("train").Config.model_validate(
            {"target": "y", "numeric": ["x"], "estimator": "lightgbm", "train_metrics_rows": 0}
        )


def test_fit_options_are_validated() -> None:
    config = STEP_TYPES.get("train").Config
    base = {"target": "y", "numeric": ["x"], "estimator": "lightgbm"}
    with pytest.raises(ValidationError, match="patience"):
        config.model_validate({**base, "early_stopping": {"patience": 0}})
    with pytest.raises(ValidationError, match="metric"):
        config.model_validate({**base, "early_stopping": {"metric": "f1"}})
    with pytest.raises(ValidationError, match="time_budget_s"):
        config.model_validate({**base, "time_budget_s": 0})
    assert config.model_validate({**base, "class_weight": {True: 3, "a": 1.5}}).class_weight == {True: 3, "a": 1.5}


def test_the_model_version_stores_how_training_stopped(store: Store) -> None:
    data = labelled(900, 2)
    pipeline = (
        Pipeline("stops")
        .add("data", lambda: data)
        .add("split", "split", inputs=["data"], target="y", method="random")
        .add(
            "boost",
            "train",
            inputs=["split.train", "split.valid"],
            target="y",
            numeric=["x"],
            categorical=["g"],
            estimator="xgboost",
            params={"n_estimators": 5000, "learning_rate": 0.01},
            time_budget_s=0.000001,
        )
        .add("best", "select", inputs=["boost"], model="stops")
    )
    Runner(store).run(pipeline)
    version = store.models.list("stops")[0]
    assert version.timings["training"]["stopped"] == "time_budget"
    assert version.timings["training"]["learning_curve"]["valid"]


def test_slice_metrics_reach_the_report_and_the_model_version(store: Store) -> None:
    data = labelled(900, 3).with_columns(pl.Series("rare", ["r"] * 10 + ["c"] * 890))
    out = train_step(
        [data[:500], data[500:700], data[700:]],
        estimator="logistic_regression",
        slices=["g", "rare"],
        slice_top=1,
    )
    slices = out["report"]["slice_metrics"]
    assert set(slices) == {"valid", "test"}
    assert set(slices["valid"]["g"]) == {"a", "other"} or set(slices["valid"]["g"]) == {"b", "other"}
    assert sum(s["rows"] for s in slices["test"]["g"].values()) == 200
    assert slices["valid"]["rare"]["c"]["rows"] == 200 and "roc_auc" in slices["valid"]["rare"]["c"]
    pipeline = (
        Pipeline("sliced")
        .add("data", lambda: data)
        .add("split", "split", inputs=["data"], target="y", method="random")
        .add(
            "fit",
            "train",
            inputs=["split.train", "split.valid"],
            target="y",
            numeric=["x"],
            estimator="sklearn.linear_model:LogisticRegression",
            slices=["g"],
        )
        .add("best", "select", inputs=["fit"], model="sliced")
    )
    Runner(store).run(pipeline)
    version = store.models.list("sliced")[0]
    assert version.algorithm == "sklearn.linear_model:LogisticRegression"
    assert set(version.config["slice_metrics"]["valid"]["g"]) == {"a", "b"}
    assert set(version.metrics) == {"train", "valid"}


def test_slice_columns_must_exist() -> None:
    data = labelled(300, 4)
    with pytest.raises(DataError, match="column 'nope' is not in the validation split"):
        train_step([data[:200], data[200:]], estimator="logistic_regression", slices=["nope"])


def test_threads_and_cv_options_are_validated() -> None:
    config = STEP_TYPES.get("train").Config
    base = {"target": "y", "numeric": ["x"], "estimator": "logistic_regression"}
    with pytest.raises(ValidationError, match="threads"):
        config.model_validate({**base, "threads": 0})
    with pytest.raises(ValidationError, match=r"folds=1 cannot cross-validate; use folds >= 2"):
        config.model_validate({**base, "cv": {"folds": 1}})
    with pytest.raises(ValidationError, match="method 'group' needs group_column; set group_column"):
        config.model_validate({**base, "cv": {"method": "group"}})
    with pytest.raises(ValidationError, match="method 'time' needs time_column"):
        config.model_validate({**base, "cv": {"method": "time"}})
    with pytest.raises(ValidationError, match="group_column only applies to method 'group'"):
        config.model_validate({**base, "cv": {"group_column": "g"}})
    assert config.model_validate({**base, "cv": {}}).cv.method == "auto"  # type: ignore[attr-defined]


def test_the_step_cross_validates_on_its_training_split_only() -> None:
    data = labelled(500, 5)
    out = train_step(
        [data[:300], data[300:400], data[400:]], estimator="logistic_regression", cv={"folds": 3, "seed": 9}
    )
    report = out["report"]
    cv = report["cv"]
    assert cv["seed"] == 9 and cv["method"] == "stratified" and sum(f["valid"] for f in cv["fold_rows"]) == 300
    assert report["metrics"]["cv"] == cv["mean"] and set(report["metrics"]) == {"train", "valid", "test", "cv"}
    assert report["threads"]["requested"] is None
    with pytest.raises(DataError, match=r"steps.fit.cv.folds=20 needs at least 20 groups.*Set steps.fit.cv.folds"):
        train_step(
            [data[:300], data[300:]],
            estimator="logistic_regression",
            cv={"folds": 20, "method": "group", "group_column": "g"},
        )


def test_the_final_model_is_the_one_fitted_on_the_whole_training_split() -> None:
    data = labelled(500, 6)
    plain = train_step([data[:300], data[300:]], estimator="logistic_regression")
    validated = train_step([data[:300], data[300:]], estimator="logistic_regression", cv={"folds": 4})
    assert validated["report"]["metrics"]["valid"] == plain["report"]["metrics"]["valid"]
    assert validated["report"]["metrics"]["train"] == plain["report"]["metrics"]["train"]


def test_the_profile_holds_the_models_outputs_and_the_training_labels() -> None:
    from loopline.monitor import ReferenceProfile

    data = labelled(500, 7)
    out = train_step([data[:300], data[300:]], estimator="logistic_regression")
    profile = ReferenceProfile.from_json(out["profile"].decode())
    assert profile.outputs is not None and profile.labels is not None
    assert set(profile.outputs.columns) == {"prediction", "probability:True"} and profile.outputs.n_rows == 200
    label = profile.labels.columns["label"].summary
    assert label.count == 300 and set(label.counts) == {"true", "false"}  # type: ignore[union-attr]
