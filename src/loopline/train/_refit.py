"""Refitting a gated candidate on train + valid, keeping what was learnt on valid.

A candidate chosen by a gate was fitted on ``train`` and watched on ``valid`` (early stopping picked its
boosting rounds; a tuner or the step picked its parameters). The refit trains the same configuration once
more, through :func:`~loopline.train.train_candidate` itself, on the rows of both splits: the rounds are
pinned to the ones early stopping chose (no split is left to watch), every parameter is the gated fit's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from loopline.bundle import resolve_estimator
from loopline.core.errors import DataError
from loopline.core.records import Training
from loopline.train._spec import TrainSpec
from loopline.train._trainer import TrainResult, train_candidate

ROUND_PARAMS = {"lightgbm": "n_estimators", "xgboost": "n_estimators", "hist_gradient_boosting": "max_iter"}
"""The parameter that sets the number of boosting rounds, per iterative fitter."""


def refit_spec(spec: TrainSpec, params: Mapping[str, Any], training: Training | None) -> tuple[TrainSpec, int | None]:
    """The spec that refits ``spec`` on train + valid, and the rounds it pins (None: not a booster).

    ``params`` are the gated fit's resolved parameters (kept as they are); a booster's rounds are set to the
    gated fit's ``best_iteration`` and its early stopping is off (scikit-learn's internal holdout too), so
    every row is fitted on. The validation score check is off: the valid rows are training rows now.
    """
    fitter = resolve_estimator(spec.estimator).fitter
    refit_params = dict(params)
    rounds = None if training is None else training.best_iteration
    if fitter in ROUND_PARAMS and rounds is not None:
        refit_params[ROUND_PARAMS[fitter]] = int(rounds)
        if fitter == "hist_gradient_boosting":
            refit_params["early_stopping"] = False
    else:
        rounds = None
    diagnostics = spec.diagnostics.model_copy(update={"perfect_score": None})
    update = {
        "params": refit_params,
        "early_stopping": None,
        "time_budget_s": None,
        "learning_curve": False,
        "diagnostics": diagnostics,
    }
    return spec.model_copy(update=update), rounds


def refit_candidate(
    train: pl.DataFrame, valid: pl.DataFrame, spec: TrainSpec, params: Mapping[str, Any], training: Training | None
) -> tuple[TrainResult, int | None]:
    """Train ``spec`` (see :func:`refit_spec`) on the rows of ``train`` and ``valid`` together; the result's
    ``train`` metrics are measured on those rows (its ``valid`` metrics too: they are in-sample). Returns the
    result and the rounds pinned. DataError when the two splits do not share the columns the spec reads."""
    refit, rounds = refit_spec(spec, params, training)
    columns = [*refit.features(), refit.target]
    missing = [c for c in columns if c not in train.columns or c not in valid.columns]
    if missing:
        raise DataError(
            f"cannot refit on train + valid: columns {', '.join(missing)} are missing from a split.",
            column=missing[0],
            hint="Give the train step the split's train and valid outputs as its first two inputs.",
        )
    both = pl.concat([train.select(columns), valid.select(columns)], how="vertical_relaxed")
    return train_candidate(both, valid.select(columns), refit), rounds
