"""A tuning's CPU cores: one lease from the process's core budget for the whole study, held by every trial."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from loopline.core.cpu import CoreBudget, use_core_budget
from loopline.tune import TuneSpec, tune

pytest.importorskip("optuna")
pytest.importorskip("lightgbm")

SPEC: dict[str, Any] = {
    "target": "y",
    "numeric": ["x0", "x1", "x2"],
    "categorical": ["g"],
    "estimator": "lightgbm",
    "params": {"n_estimators": 10},
    "space": {"model.num_leaves": {"int": [4, 32]}},
    "importance": False,
}


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
    result = tune(
        train,
        valid,
        TuneSpec.parse({**SPEC, "n_trials": 4}),
        on_trial=lambda _record: free_after_each_trial.append(budget.free),
    )
    assert result.study.counts() == {"complete": 4}
    assert budget.leases == 1  # not one per trial: each lease samples the load and scans the thread pools
    assert free_after_each_trial == [0, 0, 0, 0]  # both cores held by the study while its trials run
    assert budget.free == 2  # and given back when it ends


def test_a_study_inside_a_lease_of_one_core_runs_within_it(frames: Any, budget: CountingBudget) -> None:
    train, valid = frames
    free: list[int] = []
    with budget.lease(1):  # as a step given `threads: 1` holds while it tunes
        result = tune(
            train, valid, TuneSpec.parse({**SPEC, "n_trials": 2}), on_trial=lambda _r: free.append(budget.free)
        )
    assert result.study.counts() == {"complete": 2}
    assert free == [1, 1]  # the other core stayed free for the rest of the process
    assert budget.free == 2
