"""Several candidates per run: trained side by side, ranked on a leaderboard, every one in the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pytest
from sklearn.datasets import load_breast_cancer

from loopline import Pipeline
from loopline.core.cpu import CoreBudget, use_core_budget
from loopline.core.errors import DataError, NotFoundError
from loopline.core.records import Selection
from loopline.run import LocalExecutor, Runner, rank_candidates, run_leaderboard
from loopline.store import Store


@dataclass
class Entry:
    version: int
    metrics: dict[str, Any]
    algorithm: str = "toy"
    timings: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


def test_ranks_follow_the_metric_direction_and_ties_keep_their_order() -> None:
    entries = [
        Entry(1, {"valid": {"roc_auc": 0.7, "log_loss": 0.5}}),
        Entry(2, {"valid": {"roc_auc": 0.9, "log_loss": 0.3}}),
        Entry(3, {"valid": {"roc_auc": 0.7, "log_loss": 0.5}}),
        Entry(4, {"valid": {"roc_auc": 0.9, "log_loss": 0.2}}),
    ]
    assert [r.version for r in rank_candidates(entries, "roc_auc")] == [2, 4, 1, 3]
    assert [r.version for r in rank_candidates(entries, "log_loss")] == [4, 2, 1, 3]
    rows = rank_candidates(entries, "roc_auc", promoted=2)
    assert [r.rank for r in rows] == [1, 2, 3, 4]
    assert [(r.best, r.promoted) for r in rows] == [(True, True), (False, False), (False, False), (False, False)]


def test_a_row_carries_every_split_the_fit_and_the_cv_spread() -> None:
    entry = Entry(
        7,
        {"valid": {"rmse": 2.0}, "test": {"rmse": 2.5}, "cv": {"rmse": 1.9}},
        algorithm="lightgbm",
        timings={"fit_s": 0.4, "training": {"stopped": "converged", "iterations": 31}},
        config={"cv": {"std": {"rmse": 0.1}}},
    )
    (row,) = rank_candidates([entry, entry], "rmse", split="test")  # a version listed twice counts once
    assert row.to_dict() == {
        "rank": 1,
        "version": 7,
        "algorithm": "lightgbm",
        "score": 2.5,
        "valid": 2.0,
        "test": 2.5,
        "cv": 1.9,
        "cv_std": 0.1,
        "fit_s": 0.4,
        "stopped": "converged",
        "iterations": 31,
        "best": True,
        "promoted": False,
        "findings": [],
    }


def test_candidates_without_the_metric_come_last_unranked() -> None:
    rows = rank_candidates([Entry(1, {"valid": {}}), Entry(2, {"valid": {"r2": 0.5}})], "r2")
    assert [(r.version, r.rank, r.best) for r in rows] == [(2, 1, True), (1, None, False)]


def cancer() -> pl.DataFrame:
    x, y = load_breast_cancer(return_X_y=True)
    return pl.DataFrame(x[:, :8], schema=[f"f{i}" for i in range(8)]).with_columns(pl.Series("malignant", y == 0))


FEATURES = [f"f{i}" for i in range(8)]


def candidates_pipeline(name: str = "cancer", seed: int = 0) -> Pipeline:
    data = cancer()
    pipeline = (
        Pipeline(name)
        .add("data", lambda: data)
        .add("split", "split", inputs=["data"], target="malignant", method="stratified", seed=seed)
    )
    fits = {
        "linear": {"estimator": "logistic_regression", "cv": {"folds": 3}},
        "boost": {"estimator": "hist_gradient_boosting", "early_stopping": {"patience": 5}},
        "forest": {"estimator": "random_forest", "params": {"n_estimators": 60}},
    }
    for step, options in fits.items():
        pipeline.add(
            step,
            "train",
            inputs=["split.train", "split.valid", "split.test"],
            target="malignant",
            numeric=FEATURES,
            threads=1,
            **options,
        )
    return pipeline.add("best", "select", inputs=[*fits, "split.test"], model=name, metric="log_loss")


def test_three_candidates_train_at_once_and_land_ranked_in_the_store(store: Store) -> None:
    previous = use_core_budget(CoreBudget(3, load_aware=False))  # three cores: room for three one-thread fits
    try:
        result = Runner(store, LocalExecutor(max_workers=3)).run(candidates_pipeline())
    finally:
        use_core_budget(previous)
    records = {s.step: s for s in store.runs.get(result.run_id).steps}
    fits = [records[s] for s in ("linear", "boost", "forest")]
    assert max(r.started_at for r in fits) < min(r.finished_at for r in fits)  # all three ran at one moment
    for step in ("linear", "boost", "forest"):
        assert result.output(step, "report")["threads"]["openmp"] == 1  # each in its own limit, side by side

    out = result.output("best")
    board = out["leaderboard"]
    scores = [row["valid"] for row in board]
    assert scores == sorted(scores)  # log loss: lower first
    assert [row["rank"] for row in board] == [1, 2, 3] and board[0]["best"] and board[0]["promoted"]
    assert board[0]["version"] == out["best"]
    assert {row["algorithm"] for row in board} == {"logistic_regression", "hist_gradient_boosting", "random_forest"}
    assert all(row["test"] is not None and row["fit_s"] > 0 for row in board)
    boosted = next(row for row in board if row["algorithm"] == "hist_gradient_boosting")
    assert boosted["stopped"] in ("converged", "max_iterations") and boosted["iterations"] > 0

    stored = store.models.list("cancer")
    assert sorted(v.version for v in stored) == [1, 2, 3]
    assert {v.version for v in stored} == {row["version"] for row in board}
    assert store.models.production("cancer").version == board[0]["version"]  # type: ignore[union-attr]

    linear = next(v for v in stored if v.algorithm == "logistic_regression")
    cv = linear.config["cv"]
    assert cv["folds"] == 3 and cv["method"] == "stratified" and cv["seed"] == 0 and len(cv["fold_metrics"]) == 3
    assert sum(f["valid"] for f in cv["fold_rows"]) == linear.config["rows"]["train"]
    assert linear.metrics["cv"] == cv["mean"] and set(cv["std"]) == set(cv["mean"])
    assert next(row for row in board if row["version"] == linear.version)["cv_std"] == cv["std"]["log_loss"]
    assert linear.config["threads"]["requested"] == 1


class _WatchedBudget(CoreBudget):
    """A budget that remembers the most cores its leases held at once, and how many leases it gave."""

    peak = leases = 0

    def _take(self, wanted: int | None) -> int:
        granted = super()._take(wanted)
        self.leases += 1
        self.peak = max(self.peak, self.cores - self.free)
        return granted


def test_fits_side_by_side_never_hold_more_threads_than_the_cores(store: Store) -> None:
    budget = _WatchedBudget(2, load_aware=False)
    previous = use_core_budget(budget)
    try:
        result = Runner(store, LocalExecutor(max_workers=3)).run(candidates_pipeline())
    finally:
        use_core_budget(previous)
    assert budget.leases == 3 and budget.peak == 2  # three one-thread fits on two cores: two at a time
    assert all(result.output(s, "report")["threads"]["granted"] == 1 for s in ("linear", "boost", "forest"))


def test_the_stored_leaderboard_is_the_latest_run_unless_one_is_named(store: Store) -> None:
    first = Runner(store).run(candidates_pipeline())
    second = Runner(store).run(candidates_pipeline(seed=1))  # another split: three new versions
    latest = run_leaderboard(store, "cancer")
    assert (latest.model, latest.run_id, latest.metric, latest.split) == ("cancer", second.run_id, "log_loss", "valid")
    assert latest.rows == Selection.from_dict(second.output("best")).leaderboard
    assert [row.to_dict() for row in latest.rows] == second.output("best")["leaderboard"]
    assert {row.version for row in latest.rows} == {4, 5, 6}

    earlier = run_leaderboard(store, "cancer", run_id=first.run_id, metric="roc_auc", split="test")
    assert {row.version for row in earlier.rows} == {1, 2, 3}
    tests = [row.test for row in earlier.rows]
    assert tests == sorted(tests, reverse=True) and earlier.rows[0].best
    assert [row.promoted for row in earlier.rows].count(True) == 1


def test_the_stored_leaderboard_explains_what_is_missing(store: Store) -> None:
    Runner(store).run(candidates_pipeline())
    with pytest.raises(NotFoundError, match="cancr"):
        run_leaderboard(store, "cancr")
    with pytest.raises(DataError, match="no candidate has a valid metric 'rmse'. Use --metric with one of: .*roc_auc"):
        run_leaderboard(store, "cancer", metric="rmse")
    with pytest.raises(DataError, match="cannot rank by split 'train'. Use one of: valid, test, cv"):
        run_leaderboard(store, "cancer", split="train")
