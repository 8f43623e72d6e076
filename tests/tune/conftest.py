"""Data and the tune step type for the tuning tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from loopline.core import STEP_TYPES


def labelled(rows: int, seed: int = 0) -> pl.DataFrame:
    """A binary target from two informative features, a categorical slice column and an hourly time column."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    signal = x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.7, size=rows)
    start = datetime(2024, 1, 1)
    return pl.DataFrame(
        {
            "x0": x[:, 0],
            "x1": x[:, 1],
            "x2": x[:, 2],
            "g": rng.choice(["a", "b", "c"], rows),
            "t": [start + timedelta(hours=6 * i) for i in range(rows)],
            "y": signal > 0,
        }
    )


@pytest.fixture(scope="session", autouse=True)
def _tune_step_registered() -> None:
    """The tune step type, also before the package is reinstalled with its entry point."""
    if "tune" not in STEP_TYPES:
        from loopline.run.steps._tune import Tune

        STEP_TYPES.register("tune", Tune())


@pytest.fixture
def frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    data = labelled(1200, 1)
    return data[:800], data[800:]


@pytest.fixture
def make_labelled() -> Callable[[int, int], pl.DataFrame]:
    """:func:`labelled`, for tests that write their own data files."""
    return labelled
