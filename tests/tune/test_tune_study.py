"""Studies: per-set scores and their aggregate, samplers, pruners on boosting rounds and folds, tradeoffs, and the
CPU cores a study leases."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from loopline.core.cpu import CoreBudget, use_core_budget
from loopline.core.errors import ConfigError, DataError
from loopline.tune import TuneSpec, tune
from loopline.tune._studies import storage_at

FEATURES = {"target": "y", "numeric": ["x0", "x1", "x2"], "categorical": ["g"]}


def spec(**options: Any) -> TuneSpec:
    defaults: dict[str, Any] = {
        **FEATURES,
        "estimator": "lightgbm",
        "params": {"n_estimators": 20},
        "space": {"model.num_leaves": {"int": [4, 32]}, "model.learning_rate": {"float": [0.02, 0.3], "log": True}},
        "n_trials": 4,
        "importance": False,
    }
    return TuneSpec.parse({**defaults, **options})


def test_each_trial_is_scored_on_every_set_and_the_worst_is_the_objective(frames: Any) -> None:
    train, valid = frames
    result = tune(
        train,
        valid,
        spec(
            sets=[
                {"type": "valid"},
                {"type": "slices", "column": "g"},
                {"type": "windows", "column": "t", "every": "1w", "last": 2},
            ],
            aggregate="worst",
        ),
    )
    assert result.ran == 4 and result.study.counts() == {"complete": 4}
    for trial in result.study.trials:
        assert set(trial.scores) >= {"valid", "g=a", "g=b", "g=c"}
        assert len([name for name in trial.scores if name.startswith("window:")]) == 2
        assert trial.values == (min(trial.scores.values()),)
    best = max(result.study.trials, key=lambda t: (t.values or (0,))[0])
    assert result.best == best
    assert result.best_spec.params == {"n_estimators": 20, **{k[len("model.") :]: v for k, v in best.params.items()}}
    assert result.lineage["scores"] == best.scores and result.lineage["trials"] == 4


def test_a_quantile_aggregate_counts_from_the_worst_side(frames: Any) -> None:
    train, valid = frames
    result = tune(
        train,
        valid,
        spec(sets=[{"type": "slices", "column": "g"}], aggregate="quantile", quantile=0.2, metric="log_loss"),
    )
    for trial in result.study.trials:  # log loss: smaller is better, so the worst side is the top
        assert trial.values == pytest.approx((float(np.quantile(list(trial.scores.values()), 0.8)),))


def test_separate_datasets_are_scored_by_name(frames: Any) -> None:
    train, valid = frames
    other = valid.with_columns(pl.col("x0") * 0)  # the main feature gone: a worse score there
    result = tune(
        train, valid, spec(sets=[{"type": "valid"}, {"type": "dataset", "name": "other"}]), datasets={"other": other}
    )
    assert all(t.scores["other"] < t.scores["valid"] for t in result.study.trials)
    with pytest.raises(ConfigError, match="no dataset 'othr'") as caught:
        tune(train, valid, spec(sets=[{"type": "dataset", "name": "othr"}]), datasets={"other": other})
    assert "other" in str(caught.value)


def test_windows_need_a_time_column(frames: Any) -> None:
    train, valid = frames
    with pytest.raises(DataError, match="not times"):
        tune(train, valid, spec(sets=[{"type": "windows", "column": "x0"}]))
    with pytest.raises(DataError, match="'t'"):
        tune(train, valid, spec(sets=[{"type": "windows", "column": "tt"}]))


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes"])
def test_each_sampler_runs_the_budget(frames: Any, sampler: str) -> None:
    train, valid = frames
    result = tune(train, valid, spec(sampler=sampler, n_trials=3))
    assert result.study.counts() == {"complete": 3} and result.study.settings["sampler"] == sampler


def test_the_grid_sampler_tries_each_point_once(frames: Any) -> None:
    train, valid = frames
    space = {"model.num_leaves": {"choice": [4, 16]}, "model.learning_rate": {"float": [0.1, 0.2], "step": 0.1}}
    result = tune(train, valid, spec(sampler="grid", space=space, n_trials=10))
    points = sorted((t.params["model.num_leaves"], t.params["model.learning_rate"]) for t in result.study.trials)
    assert points == [(4, 0.1), (4, 0.2), (16, 0.1), (16, 0.2)]


def test_a_tradeoff_makes_a_two_objective_nsga2_study(frames: Any) -> None:
    train, valid = frames
    result = tune(train, valid, spec(tradeoff="bundle_kb", n_trials=4, space={"model.n_estimators": {"int": [5, 200]}}))
    assert result.study.directions == ("maximize", "minimize")
    assert result.study.settings["sampler"] == "nsga2"
    sizes = {t.params["model.n_estimators"]: (t.values or (0, 0))[1] for t in result.study.trials}
    assert sizes[max(sizes)] > sizes[min(sizes)] > 0  # more trees, a bigger bundle


@pytest.mark.parametrize("pruner", ["median", "successive_halving", "hyperband"])
def test_pruners_stop_poor_boosting_fits_on_their_rounds(frames: Any, tmp_path: Path, pruner: str) -> None:
    import optuna

    train, valid = frames
    url = f"sqlite:///{tmp_path / 'study.db'}"
    result = tune(
        train,
        valid,
        spec(
            params={"n_estimators": 100},
            space={"model.learning_rate": {"float": [0.0001, 0.5], "log": True}},
            sampler="random",
            pruner=pruner,
            n_trials=12,
            report_every=5,
        ),
        storage=url,
        study="rounds",
    )
    counts = result.study.counts()
    assert counts.get("pruned", 0) >= 1 and counts["complete"] + counts["pruned"] == 12
    with storage_at(url) as storage:
        trials = optuna.load_study(study_name="rounds", storage=storage).trials
    for trial in trials:  # reported every 5 rounds; a pruned fit stopped before its 100th
        assert trial.intermediate_values and all(step % 5 == 0 for step in trial.intermediate_values)
        last = max(trial.intermediate_values)
        assert last < 100 if trial.state.name == "PRUNED" else last == 100


def test_folds_are_sets_and_feed_the_pruner(frames: Any) -> None:
    train, valid = frames
    result = tune(
        train,
        valid,
        spec(
            estimator="logistic_regression",
            params={},
            space={"model.C": {"float": [1e-6, 10], "log": True}},
            sets=[{"type": "folds", "folds": 4}],
            metric="log_loss",
            sampler="random",
            pruner="median",
            n_trials=10,
        ),
    )
    complete = [t for t in result.study.trials if t.state == "complete"]
    assert all(set(t.scores) == {"fold1", "fold2", "fold3", "fold4"} for t in complete)
    pruned = [t for t in result.study.trials if t.state == "pruned"]
    assert pruned and all(0 < len(t.scores) < 4 for t in pruned)  # stopped after a fold or more, before the last


def test_the_estimator_itself_can_be_searched(frames: Any) -> None:
    train, valid = frames
    space = {
        "estimator": {
            "lightgbm": {"model.num_leaves": {"int": [4, 16]}},
            "logistic_regression": {"model.C": {"float": [0.01, 10], "log": True}},
        }
    }
    result = tune(train, valid, spec(space=space, sampler="random", n_trials=6, seed=3))
    chosen = {t.params["estimator"] for t in result.study.trials}
    assert chosen == {"lightgbm", "logistic_regression"}
    for trial in result.study.trials:
        own = "model.num_leaves" if trial.params["estimator"] == "lightgbm" else "model.C"
        assert set(trial.params) == {"estimator", own}
    assert result.best_spec.estimator == result.best.params["estimator"]


def test_a_trial_the_library_refuses_fails_alone_and_the_study_goes_on(frames: Any) -> None:
    train, valid = frames
    space = {"model.solver": {"choice": ["lbfgs", "no-such-solver"]}}
    result = tune(train, valid, spec(estimator="logistic_regression", params={}, space=space, sampler="grid"))
    states = {t.params["model.solver"]: t.state for t in result.study.trials}
    assert states == {"lbfgs": "complete", "no-such-solver": "fail"}
    assert result.best.params == {"model.solver": "lbfgs"}
    with pytest.raises(DataError, match="no completed trial") as caught:
        tune(
            train, valid, spec(estimator="logistic_regression", params={}, space={"model.solver": {"choice": ["nope"]}})
        )
    assert "solver" in str(caught.value)


class CountingBudget(CoreBudget):
    """A real core budget that also counts the leases taken from it."""

    def __init__(self, cores: int) -> None:
        super().__init__(cores, load_aware=False)
        self.leases = 0

    @contextmanager
    def lease(self, wanted: int | None = None) -> Iterator[int]:
        self.leases += 1
        with super().lease(wanted) as granted:
            yield granted


@pytest.fixture
def budget() -> Iterator[CountingBudget]:
    budget = CountingBudget(2)
    previous = use_core_budget(budget)
    try:
        yield budget
    finally:
        use_core_budget(previous)


def test_a_study_leases_its_cores_once_and_holds_them_through_every_trial(frames: Any, budget: CountingBudget) -> None:
    train, valid = frames
    free_after_each_trial: list[int] = []
    result = tune(train, valid, spec(), on_trial=lambda _record: free_after_each_trial.append(budget.free))
    assert result.study.counts() == {"complete": 4}
    assert budget.leases == 1  # not one per trial: each lease samples the load and scans the thread pools
    assert free_after_each_trial == [0, 0, 0, 0]  # both cores held by the study while its trials run
    assert budget.free == 2  # and given back when it ends


def test_a_study_inside_a_lease_of_one_core_runs_within_it(frames: Any, budget: CountingBudget) -> None:
    train, valid = frames
    free: list[int] = []
    with budget.lease(1):  # as a step given `threads: 1` holds while it tunes
        result = tune(train, valid, spec(n_trials=2), on_trial=lambda _r: free.append(budget.free))
    assert result.study.counts() == {"complete": 2}
    assert free == [1, 1]  # the other core stayed free for the rest of the process
    assert budget.free == 2
