"""Refitting a gated candidate on train + valid: the rounds early stopping chose are pinned, nothing else moves."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from loopline.core.errors import DataError
from loopline.core.records import Training
from loopline.train import TrainSpec, refit_candidate, refit_spec, train_candidate


def frame(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    return pl.DataFrame({"x": x, "z": rng.normal(size=rows), "y": x + rng.normal(scale=0.5, size=rows) > 0})


@pytest.mark.parametrize(
    ("estimator", "rounds_param"),
    [("hist_gradient_boosting", "max_iter"), ("lightgbm", "n_estimators"), ("xgboost", "n_estimators")],
)
def test_a_booster_is_refitted_with_the_rounds_early_stopping_chose(estimator: str, rounds_param: str) -> None:
    spec = TrainSpec(
        target="y",
        numeric=["x", "z"],
        estimator=estimator,
        params={rounds_param: 400, "learning_rate": 0.3},
        early_stopping={"patience": 5},  # type: ignore[arg-type]
    )
    train, valid = frame(1500, 1), frame(500, 2)
    gated = train_candidate(train, valid, spec)
    chosen = gated.training["best_iteration"]
    assert gated.training["stopped"] == "converged" and chosen < 400

    refit, rounds = refit_candidate(train, valid, spec, gated.params, Training.from_dict(gated.training))
    assert rounds == chosen and refit.params[rounds_param] == chosen
    assert refit.params["learning_rate"] == 0.3  # the gated fit's parameters, as they were
    assert refit.bundle.metadata["n_train"] == train.height + valid.height  # valid's rows are fitted on
    assert refit.bundle.metadata["fit_options"]["early_stopping"] is None
    assert refit.training["iterations"] == chosen


def test_an_estimator_without_rounds_keeps_its_params_and_the_score_check_is_off() -> None:
    spec = TrainSpec(target="y", numeric=["x"], estimator="logistic_regression", params={"C": 0.5})
    refit, rounds = refit_spec(spec, {"C": 0.5, "max_iter": 100}, Training(best_iteration=None))
    assert rounds is None and refit.params == {"C": 0.5, "max_iter": 100}
    assert refit.diagnostics.perfect_score is None  # valid's rows are training rows now
    assert spec.diagnostics.perfect_score is not None  # the gated spec is untouched


def test_a_refit_needs_the_spec_columns_in_both_splits() -> None:
    spec = TrainSpec(target="y", numeric=["x", "z"], estimator="logistic_regression")
    with pytest.raises(DataError, match="cannot refit on train \\+ valid: columns z are missing from a split"):
        refit_candidate(frame(200, 1), frame(100, 2).drop("z"), spec, {}, None)
