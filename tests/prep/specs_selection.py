"""Conformance specs of the feature selection transforms (see test_transforms_conform.py), with their frames."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

_rng = np.random.default_rng(11)
_N = 120
_X = _rng.normal(size=(_N, 5))

TRAIN = pl.DataFrame(
    {
        **{f"x{i}": _X[:, i] for i in range(5)},
        "count": _rng.integers(0, 9, _N),
        "const": [2.0] * _N,
        "city": _rng.choice(["lyon", "paris"], _N).tolist(),
        "label": (_X[:, 0] - _X[:, 3] > 0).astype(int),
    }
)
TEST = pl.DataFrame(
    {
        **{f"x{i}": [0.5, None, float("nan"), -1.0] for i in range(5)},
        "count": [1, None, 3, 4],
        "const": [2.0, 2.0, None, 3.0],
        "city": ["rome", None, "lyon", "paris"],
    }
)

SPECS: dict[str, Any] = {
    "select_variance": [{}, {"threshold": 1.5, "columns": ["x0", "x1", "count", "const"]}],
    "select_kbest": [
        {"k": 2},
        {"k": 3, "score": "mutual_info_classif", "seed": 4},
        {"k": 1, "score": "chi2", "columns": ["count", "const"]},
        {"k": 2, "task": "regression"},
    ],
    "select_model": [
        {"k": 2, "n_estimators": 20},
        {"estimator": "extra_trees", "threshold": "median", "n_estimators": 20},
        {"estimator": "linear", "threshold": 0.5},
    ],
    "select_rfe": [{"k": 2}, {"k": 3, "estimator": "random_forest", "step": 2, "n_estimators": 10}],
}
