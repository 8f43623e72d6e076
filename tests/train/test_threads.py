"""Thread limits of a training job: per calling thread for OpenMP, n_jobs for the boosters and forests."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sklearn.ensemble import HistGradientBoostingClassifier  # loads scikit-learn's OpenMP runtime
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
from threadpoolctl import threadpool_info

from loopline.core.errors import ConfigError
from loopline.train import limited_threads, observed_threads, resolve_estimator, thread_params


def _limits(api: str) -> dict[str, int]:
    return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == api}


def test_the_libraries_to_limit_are_loaded() -> None:
    assert HistGradientBoostingClassifier is not None
    assert _limits("openmp") and _limits("blas")


def test_two_threads_each_get_their_own_openmp_limit_at_the_same_time() -> None:
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
    assert seen[1]["reported"] == {"requested": 1, "openmp": 1, "blas": max(blas_before.values())}
    assert _limits("openmp") == openmp_before and _limits("blas") == blas_before  # restored


def test_limits_nest_and_come_back() -> None:
    before = _limits("openmp")
    with limited_threads(2):
        with limited_threads(1):
            assert set(_limits("openmp").values()) == {1}
        assert set(_limits("openmp").values()) == {2}
    assert _limits("openmp") == before


def test_no_limit_changes_nothing() -> None:
    before = observed_threads()
    with limited_threads(None) as reported:
        assert reported == {"requested": None, **before}


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
