"""Deterministic generated frames for the monitor tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
import pytest

N_ROWS = 4000


def make_frame(
    seed: int,
    *,
    n: int = N_ROWS,
    mean: float = 0.0,
    mix: tuple[float, float, float] = (0.5, 0.3, 0.2),
) -> pl.DataFrame:
    """Two numeric features (``x`` normal, ``y`` exponential) and one categorical (``colour``)."""
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "x": rng.normal(mean, 1.0, n),
            "y": rng.exponential(2.0, n),
            "colour": rng.choice(["red", "green", "blue"], n, p=list(mix)),
        }
    )


FrameFactory = Callable[..., pl.DataFrame]


@pytest.fixture
def frame() -> FrameFactory:
    """``make_frame`` as a fixture, so that test modules need no import from conftest."""
    return make_frame


@pytest.fixture
def reference() -> pl.DataFrame:
    return make_frame(1)
