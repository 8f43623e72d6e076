"""Thread limits of a training job: per calling thread for OpenMP, n_jobs for the boosters and forests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sklearn.ensemble import HistGradientBoostingClassifier  # loads scikit-learn's OpenMP runtime
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
from threadpoolctl import threadpool_info

from loopline.core.cpu import CoreBudget, use_core_budget
from loopline.core.errors import ConfigError
from loopline.train import limited_threads, observed_threads, resolve_estimator, thread_params


def _limits(api: str) -> dict[str, int]:
    return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == api}


def test_the_libraries_to_limit_are_loaded() -> None:
    assert HistGradientBoostingClassifier is not None
    assert _limits("openmp") and _limits("blas")


@pytest.fixture
def cores() -> Iterator[CoreBudget]:
    """A budget of three cores, blind to other processes, for the duration of a test."""
    budget = CoreBudget(3, load_aware=False)
    previous = use_core_budget(budget)
    yield budget
    use_core_budget(previous)


def test_two_threads_each_get_their_own_openmp_limit_at_the_same_time(cores: CoreBudget) -> None:
    openmp_before, blas_before = _limits("openmp"), _limits("blas")
    both_inside = threading.Barrier(2, timeout=30)
    seen: dict[int, dict[str, Any]] = {}

    def job(threads: int) -> None:
        with limited_threads(threads) as reported:
            both_inside.wait()  # both limits are in force now
            seen[threads] = {
                "reported": reported,
                "openmp": set(_limits("openmp").values()),
                "blas": set(_limits("blas").values()),
                "hgb": _openmp_effective_n_threads(),  # what HistGradientBoosting sizes its pool by
            }
            both_inside.wait()  # neither leaves before the other has looked

    workers = [threading.Thread(target=job, args=(n,)) for n in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert seen[1]["openmp"] == {1} and seen[1]["hgb"] == 1
    assert seen[2]["openmp"] == {2} and seen[2]["hgb"] == 2
    assert seen[1]["blas"] == seen[2]["blas"] == set(blas_before.values())  # process-wide: left alone
    assert seen[1]["reported"] == {"requested": 1, "granted": 1, "openmp": 1, "blas": max(blas_before.values())}
    assert _limits("openmp") == openmp_before and _limits("blas") == blas_before  # restored


def test_limits_nest_and_come_back(cores: CoreBudget) -> None:
    before = _limits("openmp")
    with limited_threads(2):
        with limited_threads(1):
            assert set(_limits("openmp").values()) == {1}
        assert set(_limits("openmp").values()) == {2}
    assert _limits("openmp") == before
    assert cores.free == 3  # the nested lease took nothing more, and both came back


def test_no_count_takes_the_free_cores(cores: CoreBudget) -> None:
    blas = observed_threads()["blas"]
    with limited_threads(None) as reported:
        assert reported == {"requested": None, "granted": 3, "openmp": 3, "blas": blas}
        assert cores.free == 0
        with limited_threads(None) as inner:  # nested in the same thread: within the outer lease
            assert inner["granted"] == 3
    assert cores.free == 3


def test_a_step_asking_for_more_than_is_free_waits_for_the_cores(cores: CoreBudget) -> None:
    held = threading.Event()
    release = threading.Event()
    seen: list[int | None] = []

    def first() -> None:
        with limited_threads(2):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=first)
    holder.start()
    held.wait(30)

    def second() -> None:
        with limited_threads(2) as reported:
            seen.append(reported["granted"])

    waiter = threading.Thread(target=second)
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive() and not seen  # 2 wanted, 1 free: it waits instead of oversubscribing
    release.set()
    holder.join(30)
    waiter.join(30)
    assert seen == [2] and cores.free == 3


@pytest.mark.parametrize("threads", [0, -1, True, 1.5])
def test_a_thread_count_below_one_is_refused(threads: Any) -> None:
    with pytest.raises(ConfigError, match="is not a thread count.*integer >= 1"), limited_threads(threads):
        pass


@pytest.mark.parametrize(
    ("estimator", "takes_n_jobs"),
    [
        ("lightgbm", True),
        ("xgboost", True),
        ("random_forest", True),
        ("sklearn.ensemble:ExtraTreesClassifier", True),
        ("hist_gradient_boosting", False),  # OpenMP only: limited by limited_threads
        ("logistic_regression", False),  # n_jobs does nothing since scikit-learn 1.8 (and warns)
    ],
)
def test_thread_params_set_n_jobs_where_the_estimator_takes_it(estimator: str, takes_n_jobs: bool) -> None:
    spec = resolve_estimator(estimator)
    params = thread_params(spec, {"max_depth": 3}, 2)
    assert params == ({"max_depth": 3, "n_jobs": 2} if takes_n_jobs else {"max_depth": 3})
    assert thread_params(spec, {"max_depth": 3}, None) == {"max_depth": 3}


@pytest.mark.parametrize("key", ["n_jobs", "nthread", "num_threads"])
def test_a_thread_count_the_user_set_wins(key: str) -> None:
    assert thread_params(resolve_estimator("lightgbm"), {key: 4}, 1) == {key: 4}
