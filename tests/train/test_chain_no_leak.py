"""The transform chain learns from the training split only: validation and test rows never reach its state."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from loopline.train import TrainSpec, train_candidate

TRANSFORMS = [
    {"type": "impute", "columns": ["x"], "strategy": "mean"},
    {"type": "onehot", "columns": ["group"]},
    {"type": "scale", "columns": ["x"]},
]


def frame(rows: int, seed: int, shift: float = 0.0, groups: tuple[str, ...] = ("a", "b")) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, rows)
    x[rng.random(rows) < 0.1] = np.nan
    group = rng.choice(groups, rows)
    return pl.DataFrame({"x": x, "group": group, "y": rng.random(rows) > 0.5}).with_columns(pl.col("x").fill_nan(None))


def train(valid: pl.DataFrame) -> dict[str, object]:
    result = train_candidate(
        frame(300, 1),
        valid,
        TrainSpec(
            target="y", numeric=["x"], categorical=["group"], estimator="logistic_regression", transforms=TRANSFORMS
        ),
    )
    assert result.bundle.chain is not None
    return result.bundle.chain.to_state()


def test_validation_rows_do_not_change_the_fitted_state() -> None:
    ordinary = train(frame(200, 2))
    wild = train(frame(200, 3, shift=1000.0, groups=("z", "q", "a")))  # other values, other categories
    assert ordinary["transforms"] == wild["transforms"]
    state = {t["type"]: t["state"] for t in ordinary["transforms"]}  # type: ignore[index, union-attr]
    assert state["onehot"]["categories_"] == {"group": ["a", "b"]}
    train_x = frame(300, 1)["x"]
    assert state["impute"]["fill_"]["x"] == pytest.approx(train_x.mean(), rel=1e-12)
