from __future__ import annotations

import json
from typing import Any

import numpy as np
import polars as pl
import pytest

from loopline.core.errors import ConfigError, DataError
from loopline.prep import Chain, build_transform

INFORMATIVE = ["x1", "x4"]


def _classification(rows: int = 400, seed: int = 0) -> pl.DataFrame:
    """x1 and x4 decide the class; x0, x2, x3, x5 are noise; 'city' is text and 'id' an integer."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(rows, 6))
    label = np.where(values[:, 1] + 1.5 * values[:, 4] > 0.3, "spam", "ham")
    frame = pl.DataFrame({f"x{i}": values[:, i] for i in range(6)})
    return frame.with_columns(city=pl.Series(rng.choice(["a", "b"], rows)), label=pl.Series(label))


def _regression(rows: int = 400, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(rows, 6))
    target = 3 * values[:, 1] - 2 * values[:, 4] + rng.normal(0, 0.1, rows)
    return pl.DataFrame({f"x{i}": values[:, i] for i in range(6)}).with_columns(y=pl.Series(target))


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "select_kbest", "k": 2},
        {"type": "select_kbest", "k": 2, "score": "mutual_info_classif"},
        {"type": "select_model", "k": 2},
        {"type": "select_model", "estimator": "extra_trees", "k": 2, "n_estimators": 50},
        {"type": "select_model", "estimator": "linear"},
        {"type": "select_rfe", "k": 2},
        {"type": "select_rfe", "k": 2, "estimator": "random_forest", "n_estimators": 20},
    ],
    ids=lambda spec: "-".join(str(v) for v in spec.values()),
)
def test_selection_picks_the_informative_columns(spec: dict[str, Any]) -> None:
    train = _classification()
    selector = build_transform(spec).fit(train, "label")
    state = selector.get_state()
    assert state["selected_"] == INFORMATIVE
    assert state["dropped_"] == ["x0", "x2", "x3", "x5"]
    assert selector.transform(train).columns == ["x1", "x4", "city", "label"]  # text and target pass through
    record = train.to_dicts()[0]
    assert selector.transform_record(record) == {k: record[k] for k in ("x1", "x4", "city", "label")}
    assert selector.lineage() == {}


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "select_kbest", "k": 2},
        {"type": "select_kbest", "k": 2, "score": "mutual_info_regression"},
        {"type": "select_model", "k": 2, "n_estimators": 30},
        {"type": "select_rfe", "k": 2},
    ],
)
def test_selection_infers_regression_from_a_float_target(spec: dict[str, Any]) -> None:
    assert build_transform(spec).fit(_regression(), "y").get_state()["selected_"] == INFORMATIVE


def test_scores_are_reported_and_the_default_statistic_follows_the_task() -> None:
    kbest = build_transform({"type": "select_kbest", "k": 1}).fit(_classification(), "label")
    scores = kbest.get_state()["scores_"]
    assert max(scores, key=scores.get) == "x4" and list(scores) == [f"x{i}" for i in range(6)]
    rfe = build_transform({"type": "select_rfe", "k": 1, "step": 2}).fit(_classification(), "label")
    assert rfe.get_state()["ranking_"]["x4"] == 1 and sorted(rfe.get_state()["ranking_"].values()) == [1, 2, 3, 3, 4, 4]
    model = build_transform({"type": "select_model", "threshold": "median", "n_estimators": 30})
    assert len(model.fit(_classification(), "label").get_state()["selected_"]) == 3


def test_select_variance_drops_constant_and_low_variance_columns_without_a_target() -> None:
    train = pl.DataFrame(
        {"same": [0.1] * 50, "small": np.linspace(0, 0.1, 50), "wide": np.linspace(0, 10, 50), "flag": [True] * 50}
    )
    selector = build_transform({"type": "select_variance"}).fit(train)
    assert selector.get_state()["dropped_"] == ["same"]
    assert selector.get_state()["scores_"]["same"] == 0.0
    assert build_transform({"type": "select_variance", "threshold": 0.01}).fit(train).get_state()["dropped_"] == [
        "same",
        "small",
    ]
    assert build_transform({"type": "select_variance"}).fit(train).transform(train).columns == ["small", "wide", "flag"]


def test_seeded_selection_is_reproducible_and_round_trips_through_a_chain() -> None:
    spec = {"type": "select_model", "k": 3, "n_estimators": 20, "seed": 5}
    train = _classification(200)
    first = build_transform(spec).fit(train, "label").get_state()
    assert first == build_transform(spec).fit(train, "label").get_state()
    assert first != build_transform({**spec, "seed": 6}).fit(train, "label").get_state()
    chain = Chain.from_config([spec]).fit(train, target="label")
    rebuilt = Chain.from_state(json.loads(json.dumps(chain.to_state())))
    test = _classification(10, seed=1).drop("label")
    assert rebuilt.transform(test).equals(chain.transform(test))
    assert rebuilt.transform_record(test.to_dicts()[0]) == chain.transform(test).to_dicts()[0]


def test_k_larger_than_the_candidates_keeps_them_all() -> None:
    fitted = build_transform({"type": "select_kbest", "k": 50, "columns": ["x0", "x1"]}).fit(_classification(), "label")
    assert fitted.get_state()["selected_"] == ["x0", "x1"] and fitted.get_state()["dropped_"] == []


def test_constant_columns_score_zero_without_a_warning() -> None:
    train = _classification(100).with_columns(const=pl.lit(3.0))
    scores = build_transform({"type": "select_kbest", "k": 2}).fit(train, "label").get_state()["scores_"]
    assert scores["const"] == 0.0


def test_selection_errors_name_the_fix() -> None:
    train = _classification(60)
    with pytest.raises(DataError, match="select_kbest needs the target column.*target="):
        build_transform({"type": "select_kbest"}).fit(train)
    holes = train.with_columns(pl.when(pl.int_range(60) < 3).then(None).otherwise(pl.col("x2")).alias("x2"))
    with pytest.raises(DataError, match=r"column 'x2' has 3 missing .* impute"):
        build_transform({"type": "select_model"}).fit(holes, "label")
    with pytest.raises(DataError, match="chi2 needs non-negative columns.*minmax"):
        build_transform({"type": "select_kbest", "score": "chi2"}).fit(train, "label")
    with pytest.raises(DataError, match="'city' is String, not numeric"):
        build_transform({"type": "select_rfe", "columns": ["x0", "city"]}).fit(train, "label")
    with pytest.raises(ConfigError, match="the target 'label' cannot be one of the columns"):
        build_transform({"type": "select_kbest", "columns": ["x0", "label"]}).fit(train, "label")
    with pytest.raises(DataError, match="regression needs numbers.*task: classification"):
        build_transform({"type": "select_kbest", "task": "regression"}).fit(train, "label")
    with pytest.raises(DataError, match="no column is kept.*Lower the threshold"):
        build_transform({"type": "select_model", "threshold": 0.99, "n_estimators": 5}).fit(train, "label")
    with pytest.raises(DataError, match="no numeric column to select from"):
        build_transform({"type": "select_variance"}).fit(train.select("city"))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "select_kbest", "score": "f_clasif"}, "invalid score 'f_clasif'. Did you mean 'f_classif'?"),
        ({"type": "select_kbest", "k": 0}, "k must be an integer >= 1"),
        ({"type": "select_kbest", "task": "regresion"}, "Did you mean 'regression'?"),
        ({"type": "select_model", "estimator": "random_forrest"}, "Did you mean 'random_forest'?"),
        ({"type": "select_model", "threshold": "avg"}, "invalid threshold 'avg'"),
        ({"type": "select_model", "threshold": -1.0}, "threshold must be a number >= 0"),
        ({"type": "select_rfe", "step": 0}, "step must be an integer >= 1"),
        ({"type": "select_variance", "columns": "x0"}, "columns must be a non-empty list"),
    ],
)
def test_selection_option_errors(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_transform(spec)
