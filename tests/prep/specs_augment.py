"""Conformance specs of the augmentation transforms (see test_transforms_conform.py): all train_only."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import polars as pl

_rng = np.random.default_rng(5)
_N = 60

TRAIN = pl.DataFrame(
    {
        "x0": _rng.normal(size=_N),
        "x1": _rng.normal(10.0, 2.0, _N),
        "n": _rng.integers(0, 50, _N),
        "city": [*_rng.choice(["lyon", "paris", "nice"], _N - 3).tolist(), None, None, "rome"],
        "flag": _rng.choice([True, False], _N).tolist(),
        "day": [date(2024, 1, 1)] * _N,
        "label": ["yes"] * 15 + ["no"] * 45,
    }
)
TEST = pl.DataFrame(
    {
        "x0": [0.5, None, float("nan")],
        "x1": [1.0, 2.0, 3.0],
        "n": [3, None, 1],
        "city": ["rome", None, "lyon"],
        "flag": [None, True, False],
        "day": [date(2025, 1, 1)] * 3,
    }
)

SPECS: dict[str, Any] = {
    "oversample": [{}, {"ratio": 0.5, "seed": 2}],
    "undersample": [{}, {"ratio": 0.5}],
    "smote": [
        {},
        {"columns": ["x0", "x1"], "categorical": [], "method": "borderline"},
        {"categorical": [], "method": "adasyn", "k_neighbors": 3},
        {"categorical": [], "method": "svm"},
    ],
    "noise": [{}, {"columns": ["x0", "n"], "copies": 2, "keep_original": False, "scale": 0.5}],
}
