"""How many CPU threads one training job may use, so that candidates trained side by side share the cores.

Two kinds of native thread pools do the work of a fit:

- **OpenMP** (HistGradientBoosting, LightGBM, XGBoost): libgomp keeps the thread count per calling
  thread, so a limit set in one runner thread leaves every other thread alone. Two train steps running
  at once in two threads each get their own limit, leased from the process's one core budget
  (:mod:`loopline.core.cpu`): together they never hold more threads than the cores.
- **BLAS** (OpenBLAS, MKL; linear models, numpy): one pool per process, which threadpoolctl (3.8+)
  lets only one Python thread control. It is left alone here: a limit set from one runner thread would
  apply to every other step, or be ignored. Pin it for the whole process with ``OPENBLAS_NUM_THREADS``.

Estimators that spread work over their own threads take the count as a parameter (LightGBM and
XGBoost ``n_jobs``, scikit-learn forests ``n_jobs``): :func:`thread_params` sets it unless the user did.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from loopline.bundle import EstimatorSpec
from loopline.core.cpu import check_threads
from loopline.core.cpu import limited_threads as limited_threads  # re-exported: the step's thread limit
from loopline.core.cpu import observed_threads as observed_threads

THREAD_PARAMS = ("n_jobs", "nthread", "nthreads", "num_threads", "num_thread")
"""Parameter names by which LightGBM, XGBoost or scikit-learn take a thread count; one set by the user wins."""

_N_JOBS_LIBRARIES = ("lightgbm", "xgboost")
"""Libraries whose estimators all take ``n_jobs``; of scikit-learn only the ensembles that have it get it
(LogisticRegression warns that ``n_jobs`` does nothing since 1.8)."""


def thread_params(spec: EstimatorSpec, params: Mapping[str, Any], threads: int | None) -> dict[str, Any]:
    """``params`` with ``n_jobs=threads`` added when every class of ``spec`` takes it (LightGBM, XGBoost,
    scikit-learn ensembles with ``n_jobs``) and no thread count is set (:data:`THREAD_PARAMS`)."""
    check_threads(threads)
    out = dict(params)
    if threads is None or any(key in out for key in THREAD_PARAMS):
        return out
    if spec.classes and all(_takes_n_jobs(spec, task) for task in spec.classes):
        out["n_jobs"] = threads
    return out


def _takes_n_jobs(spec: EstimatorSpec, task: str) -> bool:
    module = spec.classes[task].partition(":")[0]
    if module.split(".")[0] in _N_JOBS_LIBRARIES:
        return True
    return module.startswith("sklearn.ensemble") and "n_jobs" in inspect.signature(spec.load(task)).parameters
