"""``train_candidate(..., on_round=...)``: the per-round hook a tuner prunes with."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from loopline.train import TrainSpec, train_candidate


def frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=600)
    frame = pl.DataFrame({"x": x, "y": x + rng.normal(scale=0.5, size=600) > 0})
    return frame[:400], frame[400:]


class Stop(Exception):
    pass


@pytest.mark.parametrize("estimator", ["lightgbm", "xgboost"])
def test_the_hook_sees_every_round_and_its_exception_ends_the_fit(estimator: str) -> None:
    train, valid = frames()
    spec = TrainSpec(target="y", numeric=["x"], estimator=estimator, params={"n_estimators": 12}, importance=False)
    seen: list[tuple[int, float, bool]] = []
    result = train_candidate(train, valid, spec, on_round=lambda r, v, higher: seen.append((r, v, higher)))
    assert [r for r, _, _ in seen] == list(range(1, 13))
    assert [v for _, v, _ in seen] == result.training["learning_curve"]["valid"]
    assert not any(higher for _, _, higher in seen)  # log loss: lower is better

    def stop_at_five(round_: int, value: float, higher: bool) -> None:
        if round_ == 5:
            raise Stop

    with pytest.raises(Stop):
        train_candidate(train, valid, spec, on_round=stop_at_five)


def test_without_a_hook_a_bare_fit_records_no_curve() -> None:
    train, valid = frames()
    spec = TrainSpec(target="y", numeric=["x"], estimator="lightgbm", params={"n_estimators": 12}, importance=False)
    assert train_candidate(train, valid, spec).training["learning_curve"] is None
