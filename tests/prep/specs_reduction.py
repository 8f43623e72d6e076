"""Conformance specs of the reduction transforms (see test_transforms_conform.py), with their own frames."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

_rng = np.random.default_rng(7)
_N = 40
_x0 = _rng.normal(size=_N)

TRAIN = pl.DataFrame(
    {
        "x0": _x0,
        "x1": _rng.normal(5.0, 3.0, _N),
        "x2": _rng.uniform(-1.0, 1.0, _N),
        "x3": 2.0 * _x0 + _rng.normal(0.0, 0.01, _N),  # nearly a copy of x0
        "n": _rng.integers(0, 20, _N),
        "const": [1.0] * _N,
        "mostly": ["a"] * (_N - 2) + ["b", "c"],
        "city": _rng.choice(["lyon", "paris", "nice"], _N).tolist(),
        "ts": [datetime(2024, 1, 1) + timedelta(days=i) for i in range(_N)],
        "label": [0, 1, 0, 0] * (_N // 4),
    }
)
TEST = pl.DataFrame(
    {
        "x0": [0.5, None, float("nan"), 1e9, -3.0, float("inf")],
        "x1": [1.0, 2.0, 3.0, -1e-9, None, 0.0],
        "x2": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        "x3": [1.0, 2.0, None, 4.0, 5.0, 6.0],
        "n": [3, 4, None, 1, 0, 2],
        "const": [1.0, 2.0, None, 1.0, 1.0, 1.0],
        "mostly": ["a", "z", None, "a", "b", "a"],
        "city": ["rome", None, "lyon", "paris", "nice", "lyon"],
        "ts": [datetime(2030, 1, 1)] * 6,
    }
)

SPECS: dict[str, Any] = {
    "sample": [
        {"n": 10},
        {"fraction": 0.5, "stratify": True, "seed": 3},
        {"fraction": 0.3, "stratify": "city"},
        {"time_column": "ts", "start": "2024-01-05", "end": "2024-01-25"},
    ],
    "pca": [{"columns": ["x0", "x1", "x2", "n"], "n_components": 3}, {"columns": ["x1", "x2"], "prefix": "p"}],
    "svd": {"columns": ["x0", "x1", "x2"], "n_components": 2, "seed": 1},
    "drop_constant": [{}, {"columns": ["mostly", "const", "x0"], "threshold": 0.9}],
    "drop_correlated": [{}, {"columns": ["x1", "x3", "x0"], "threshold": 0.5}],
}
