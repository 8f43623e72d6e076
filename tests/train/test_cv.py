"""Cross-validation of a candidate on the training split: folds refitted from scratch, held-out rows unseen."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest

from loopline.core.errors import ConfigError, DataError
from loopline.train import TrainSpec, cross_validate

FOREST: dict[str, Any] = {"estimator": "random_forest", "params": {"n_estimators": 20, "min_samples_leaf": 1}}


def labelled(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    start = datetime(2024, 1, 1)
    return pl.DataFrame(
        {
            "x": x,
            "g": rng.choice(["a", "b", "c"], rows),
            "at": [start + timedelta(hours=i) for i in range(rows)],
            "y": (x + rng.normal(scale=0.5, size=rows)) > 0.3,
        }
    )


CV_OPTIONS = ("method", "group_column", "time_column", "fold_seed")


def cv(train: pl.DataFrame, folds: int = 4, **options: Any) -> dict[str, Any]:
    """Cross-validate a logistic regression (``options``: the spec's keys and cross_validate's)."""
    folding = {k: options.pop(k) for k in CV_OPTIONS if k in options}
    spec = TrainSpec(**{"target": "y", "numeric": ["x"], "estimator": "logistic_regression", **options})
    return cross_validate(train, labelled(100, 99), spec, folds=folds, **folding)


def test_every_training_row_is_held_out_once_and_the_summary_matches_the_folds() -> None:
    train = labelled(402, 1)
    out = cv(train, folds=4, fold_seed=3)
    assert out.method == "stratified" and out.folds == 4 and out.seed == 3
    assert sum(f["valid"] for f in out.fold_rows) == train.height
    assert all(f["train"] + f["valid"] == train.height for f in out.fold_rows)
    scores = [fold["roc_auc"] for fold in out.fold_metrics]
    assert out.mean["roc_auc"] == pytest.approx(np.mean(scores))
    assert out.std["roc_auc"] == pytest.approx(np.std(scores)) and out.std["roc_auc"] > 0
    assert set(out.mean) == set(out.std) == set(out.fold_metrics[0])


def test_the_seed_decides_the_folds() -> None:
    train = labelled(300, 2)
    first, again, other = cv(train, fold_seed=1), cv(train, fold_seed=1), cv(train, fold_seed=2)
    assert first.fold_metrics == again.fold_metrics
    assert first.fold_metrics != other.fold_metrics


def test_regression_folds_are_plain_kfold() -> None:
    train = labelled(200, 3).with_columns(pl.col("x").mul(2).alias("y"))
    out = cv(train, folds=3, estimator="ridge")
    assert out.method == "kfold" and "rmse" in out.mean
    with pytest.raises(ConfigError, match="'stratified' keeps class shares.*Use method: kfold"):
        cv(train, folds=3, estimator="ridge", method="stratified")


def test_held_out_rows_never_reach_the_fit() -> None:
    """A forest memorises a row key that carries no signal: only rows it was fitted on score well."""
    rng = np.random.default_rng(4)
    train = pl.DataFrame({"key": rng.permutation(400).astype(float), "y": rng.random(400) > 0.5})
    out = cross_validate(train, train[:50], TrainSpec(target="y", numeric=["key"], **FOREST), folds=4)
    assert out.mean["roc_auc"] < 0.7  # held out: chance


def test_group_folds_hold_every_group_out_whole() -> None:
    """Labels are constant per group: a model that memorises the group scores well only on groups it saw."""
    rng = np.random.default_rng(5)
    groups = rng.integers(0, 40, 600)
    label_of = rng.random(40) > 0.5
    train = pl.DataFrame({"group_id": groups.astype(float), "grp": groups, "y": label_of[groups]})
    spec = TrainSpec(target="y", numeric=["group_id"], **FOREST)
    mixed = cross_validate(train, train[:60], spec, folds=4, method="kfold")
    held_out = cross_validate(train, train[:60], spec, folds=4, method="group", group_column="grp")
    assert mixed.mean["roc_auc"] > 0.95
    assert held_out.mean["roc_auc"] < 0.75 and held_out.group_column == "grp"


def test_time_folds_train_on_an_expanding_past() -> None:
    train = labelled(400, 6)
    out = cv(train, folds=3, method="time", time_column="at")
    assert out.method == "time"
    assert [f["train"] for f in out.fold_rows] == [100, 200, 300]
    assert [f["valid"] for f in out.fold_rows] == [100, 100, 100]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"folds": 1}, ConfigError, r"cv.folds=1 cannot cross-validate. Use folds >= 2"),
        ({"method": "group"}, ConfigError, r"method 'group' needs cv.group_column. Set group_column"),
        ({"method": "time"}, ConfigError, r"method 'time' needs cv.time_column. Set time_column"),
        ({"method": "folded"}, ConfigError, r"unknown cv.method 'folded'"),
        ({"folds": 50}, DataError, r"cv.folds=50 needs at least 50 rows; the training split has 40. Set cv.folds"),
        (
            {"method": "group", "group_column": "g"},
            DataError,
            r"cv.folds=5 needs at least 5 groups; group column 'g' has 3 .*Set cv.folds to at most 3",
        ),
        (
            {"folds": 40, "method": "time", "time_column": "at"},
            DataError,
            r"cv.folds=40 needs at least 41 rows .*training split has 40. Set cv.folds to at most 39",
        ),
        ({"method": "group", "group_column": "gg"}, DataError, r"column 'gg' is not in the training split"),
    ],
)
def test_bad_options_name_the_key_and_the_fix(options: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        cv(labelled(40, 7), **{"folds": 5, **options})


def test_a_fold_that_cannot_train_says_which_fold() -> None:
    train = labelled(60, 8).with_columns(pl.Series("y", [True] + [False] * 59))
    with pytest.raises(DataError, match=r"cv: fold \d of 4: .*1 class"):
        cv(train, folds=4, method="kfold", fold_seed=0)
