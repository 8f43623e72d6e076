"""Iterative fitting: boosting rounds watched on the validation split, early stopping, a time budget.

Three estimator families are fitted round by round (an :class:`EstimatorSpec`'s ``fitter``):

- ``lightgbm`` and ``xgboost``: with early stopping, a time budget or ``curve`` asked for,
  a callback records the validation metric (and the training metric, on the sample of
  training rows in :class:`FitData`) after every round, stops when the validation metric
  has not improved for ``patience`` rounds (early stopping) or when ``time_budget_s`` is
  spent, and marks the best round, which the model then predicts with. Without any of
  them the fit is the library's bare ``fit``: watching costs a tree evaluation and a
  metric per round and set, 10-20% of a fit's time, so it is never paid unasked.
- ``hist_gradient_boosting`` (scikit-learn 1.6+): the validation split is passed as
  ``X_val``/``y_val`` so its own early stopping (``n_iter_no_change``) watches the same
  rows as LightGBM's; no warm-start loop, so no refitting overhead. scikit-learn has no
  callback, so ``time_budget_s`` is refused. Without ``early_stopping`` it keeps its
  defaults (its own early stopping on an internal 10% fraction, above 10,000 rows), and
  the curve it kept on that fraction is recorded (``watched: "internal_holdout"``).

Every fit returns a :class:`FitLog`: why it stopped (``converged``, ``max_iterations``,
``time_budget``; None for estimators that do not iterate), the rounds run, the best
round and the learning curve (metric per round, train and valid; the curve covers
every round run, also those after the best one).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from loopline.bundle._lazy import load  # one lock for every lazy import of scikit-learn
from loopline.core.errors import ConfigError
from loopline.train._spec import EarlyStopping

STOP_REASONS = ("converged", "max_iterations", "time_budget")
"""Why an iterative fit stopped: no improvement for ``patience`` rounds, all rounds run, time spent."""

FITTERS = ("lightgbm", "xgboost", "hist_gradient_boosting")
"""Estimator families fitted round by round."""

_METRICS: dict[str, dict[str, tuple[str | None, str | None, str | None]]] = {
    # loopline name -> library -> its name for (binary, multiclass, regression); None: not for that task
    "logloss": {
        "lightgbm": ("binary_logloss", "multi_logloss", None),
        "xgboost": ("logloss", "mlogloss", None),
        "hist_gradient_boosting": ("neg_log_loss", "neg_log_loss", None),
    },
    "error": {
        "lightgbm": ("binary_error", "multi_error", None),
        "xgboost": ("error", "merror", None),
        "hist_gradient_boosting": ("accuracy", "accuracy", None),
    },
    "auc": {
        "lightgbm": ("auc", None, None),
        "xgboost": ("auc", None, None),
        "hist_gradient_boosting": ("roc_auc", None, None),
    },
    "rmse": {
        "lightgbm": (None, None, "rmse"),
        "xgboost": (None, None, "rmse"),
        "hist_gradient_boosting": (None, None, "neg_root_mean_squared_error"),
    },
    "mae": {
        "lightgbm": (None, None, "l1"),
        "xgboost": (None, None, "mae"),
        "hist_gradient_boosting": (None, None, "neg_mean_absolute_error"),
    },
}
RoundHook = Callable[[int, float, bool], None]
"""Called after each boosting round with (round, validation metric, whether higher is better)."""
_HIGHER_IS_BETTER = frozenset({"auc"})
_TASK_INDEX = {"binary": 0, "multiclass": 1, "regression": 2}


@dataclass
class FitLog:
    """How an estimator's fit went: ``iterations`` rounds run, of which the model predicts with the first
    ``best_iteration`` (all of them for hist_gradient_boosting, which keeps every round it ran)."""

    stopped: str | None = None
    iterations: int | None = None
    best_iteration: int | None = None
    max_iterations: int | None = None
    metric: str | None = None
    learning_curve: dict[str, list[float]] | None = None
    watched: str | None = None
    """Where the curve's ``valid`` values come from: ``valid`` (the validation split) or
    ``internal_holdout`` (hist_gradient_boosting's own fraction of the training rows)."""

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return asdict(self)


@dataclass
class FitData:
    """The matrices of one fit; ``y_valid`` encoded like ``y_train``.

    ``train_rows`` indexes the training rows the curve's ``train`` values are measured on
    (None: all of them).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    sample_weight: np.ndarray | None = None
    train_rows: np.ndarray | None = None

    def train_sample(self) -> tuple[np.ndarray, np.ndarray]:
        """The training rows the curve is measured on."""
        if self.train_rows is None:
            return self.x_train, self.y_train
        return self.x_train[self.train_rows], self.y_train[self.train_rows]


def check_fit_options(
    estimator: str, fitter: str | None, task: str, stopping: EarlyStopping | None, time_budget_s: float | None
) -> None:
    """ConfigError when early stopping or a time budget cannot apply to ``estimator``."""
    if (stopping or time_budget_s is not None) and fitter is None:
        option = "early_stopping" if stopping else "time_budget_s"
        raise ConfigError(
            f"estimator {estimator!r} does not train in rounds, so {option} does not apply to it.",
            key=option,
            hint="Remove the option, or use lightgbm, xgboost or hist_gradient_boosting.",
        )
    if time_budget_s is not None and (fitter == "hist_gradient_boosting" or time_budget_s <= 0):
        why = "must be > 0" if time_budget_s <= 0 else f"is not supported by {estimator!r} (no training callback)"
        raise ConfigError(
            f"time_budget_s {why}.", key="time_budget_s", hint="Use lightgbm or xgboost, or remove time_budget_s."
        )
    if stopping is not None and fitter is not None and stopping.metric != "auto":
        _library_metric(fitter, task, stopping.metric)


def fit_model(
    model: Any,
    fitter: str | None,
    task: str,
    data: FitData,
    stopping: EarlyStopping | None = None,
    time_budget_s: float | None = None,
    *,
    curve: bool = False,
    on_round: RoundHook | None = None,
) -> FitLog:
    """Fit ``model`` (as built from its spec) on ``data``; see the module docstring.

    ``curve`` records the learning curve of a booster trained without early stopping or
    a time budget (they always record it). ``on_round(round, valid_value, higher_is_better)`` is called after
    every round of LightGBM and XGBoost (the curve is then recorded); an exception it raises ends the fit
    and propagates (a tuner's pruning). hist_gradient_boosting has no per-round hook: it is not called.
    """
    if fitter is None:
        model.fit(data.x_train, data.y_train, **_weights(data))
        return FitLog()
    if fitter in _ROUNDS and stopping is None and time_budget_s is None and not curve and on_round is None:
        model.fit(data.x_train, data.y_train, **_weights(data))
        rounds = _ROUNDS[fitter](model)
        stopped = "max_iterations" if rounds >= model.n_estimators else "converged"
        return FitLog(stopped, rounds, rounds, int(model.n_estimators))
    metric = _library_metric(fitter, task, stopping.metric if stopping else "auto")
    watch = _Watch(stopping.patience if stopping else None, time_budget_s, metric in _HIGHER_IS_BETTER)
    watch.on_round = on_round
    fit: Callable[[Any, FitData, _Watch, str], FitLog] = _FITTERS[fitter]
    return fit(model, data, watch, metric)


class _Watch:
    """The learning curve so far and the decision to stop; shared by the library callbacks."""

    def __init__(self, patience: int | None, budget_s: float | None, higher: bool) -> None:
        self.patience, self.budget_s, self.higher = patience, budget_s, higher
        self.train: list[float] = []
        self.valid: list[float] = []
        self.best_index = -1
        self.stopped = "max_iterations"
        self.started = time.perf_counter()
        self.on_round: RoundHook | None = None

    def update(self, train: float, valid: float) -> bool:
        """Record one round; True when training should stop now."""
        self.train.append(float(train))
        self.valid.append(float(valid))
        if self.on_round is not None:
            self.on_round(len(self.valid), float(valid), self.higher)
        best = self.valid[self.best_index] if self.best_index >= 0 else None
        if best is None or (valid > best if self.higher else valid < best):
            self.best_index = len(self.valid) - 1
        if self.patience is not None and len(self.valid) - 1 - self.best_index >= self.patience:
            self.stopped = "converged"
            return True
        if self.budget_s is not None and time.perf_counter() - self.started >= self.budget_s:
            self.stopped = "time_budget"
            return True
        return False

    def log(self, metric: str, max_iterations: int) -> FitLog:
        best = self.best_index + 1 if self.patience is not None else len(self.valid)
        return FitLog(
            stopped=self.stopped,
            iterations=len(self.valid),
            best_iteration=best,
            max_iterations=max_iterations,
            metric=metric,
            learning_curve={"train": self.train, "valid": self.valid},
            watched="valid",
        )


def _fit_lightgbm(model: Any, data: FitData, watch: _Watch, metric: str) -> FitLog:
    stop = load("lightgbm.callback").EarlyStopException

    def callback(env: Any) -> None:
        results = {(r[0], r[1]): r[2] for r in env.evaluation_result_list or []}
        done = watch.update(results[("train", metric)], results[("valid", metric)])
        if done or (watch.patience is not None and env.iteration == env.end_iteration - 1):
            best = watch.best_index if watch.patience is not None else env.iteration
            raise stop(best, env.evaluation_result_list)  # the model then predicts with round `best`

    callback.order = 30  # type: ignore[attr-defined]  # after LightGBM's own recording callbacks
    model.fit(
        data.x_train,
        data.y_train,
        **_lightgbm_eval_sets(model, data),
        eval_names=["train", "valid"],
        eval_metric=metric,
        callbacks=[callback],
        **_weights(data),
    )
    return watch.log(metric, int(model.n_estimators))


def _lightgbm_eval_sets(model: Any, data: FitData) -> dict[str, Any]:
    """LightGBM 4.7 renamed ``eval_set`` to ``eval_X``/``eval_y`` (the old name warns); loopline takes 4.3+."""
    x_train, y_train = data.train_sample()
    if "eval_X" in inspect.signature(model.fit).parameters:
        return {"eval_X": (x_train, data.x_valid), "eval_y": (y_train, data.y_valid)}
    return {"eval_set": [(x_train, y_train), (data.x_valid, data.y_valid)]}


def _fit_xgboost(model: Any, data: FitData, watch: _Watch, metric: str) -> FitLog:
    base = load("xgboost.callback").TrainingCallback

    class Callback(base):  # type: ignore[misc,valid-type]  # the base class is imported lazily
        def after_iteration(self, booster: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
            done = watch.update(evals_log["validation_0"][metric][-1], evals_log["validation_1"][metric][-1])
            if watch.patience is not None:  # XGBoost predicts up to this round, as with its EarlyStopping
                booster.set_attr(best_iteration=str(watch.best_index), best_score=str(watch.valid[watch.best_index]))
            return done

    model.set_params(callbacks=[Callback()], eval_metric=metric)
    try:
        model.fit(
            data.x_train,
            data.y_train,
            eval_set=[data.train_sample(), (data.x_valid, data.y_valid)],
            verbose=False,
            **_weights(data),
        )
    finally:
        model.set_params(callbacks=None)
    return watch.log(metric, int(model.n_estimators))


def _fit_hist(model: Any, data: FitData, watch: _Watch, metric: str) -> FitLog:
    if watch.patience is None:
        model.fit(data.x_train, data.y_train, **_weights(data))
        stopped = "converged" if model.n_iter_ < model.max_iter else "max_iterations"
        log = FitLog(stopped, int(model.n_iter_), int(model.n_iter_), int(model.max_iter))
        if getattr(model, "do_early_stopping_", False) and len(getattr(model, "validation_score_", ())) > 1:
            log.metric, log.watched = _hist_metric(model), "internal_holdout"
            log.learning_curve = _hist_curve(model)
        return log
    if "X_val" not in inspect.signature(model.fit).parameters:
        raise ConfigError(
            "early_stopping on the validation split needs scikit-learn 1.6 or later for hist_gradient_boosting.",
            key="early_stopping",
            hint="Upgrade it with: pip install -U 'scikit-learn>=1.6' (or use lightgbm / xgboost).",
        )
    model.set_params(early_stopping=True, n_iter_no_change=watch.patience, scoring=metric)
    model.fit(data.x_train, data.y_train, X_val=data.x_valid, y_val=data.y_valid, **_weights(data))
    stopped = "converged" if model.n_iter_ < model.max_iter else "max_iterations"
    iterations = int(model.n_iter_)
    return FitLog(
        stopped, iterations, iterations, int(model.max_iter), _hist_metric(model), _hist_curve(model), "valid"
    )


def _hist_metric(model: Any) -> str:
    return str(model.scoring).removeprefix("neg_")


def _hist_curve(model: Any) -> dict[str, list[float]]:
    """scikit-learn's per-round scores as loopline's curve: losses positive (it maximises scores)."""
    sign = -1.0 if model.scoring == "loss" or str(model.scoring).startswith("neg_") else 1.0
    return {
        "train": [sign * float(v) for v in model.train_score_[1:]],  # entry 0 is before the first round
        "valid": [sign * float(v) for v in model.validation_score_[1:]],
    }


_ROUNDS: dict[str, Callable[[Any], int]] = {
    "lightgbm": lambda model: int(model.booster_.current_iteration()),
    "xgboost": lambda model: int(model.get_booster().num_boosted_rounds()),
}
"""Rounds a booster fitted without a callback ran."""

_FITTERS: dict[str, Callable[[Any, FitData, _Watch, str], FitLog]] = {
    "lightgbm": _fit_lightgbm,
    "xgboost": _fit_xgboost,
    "hist_gradient_boosting": _fit_hist,
}


def _library_metric(fitter: str, task: str, metric: str) -> str:
    if metric == "auto":
        if fitter == "hist_gradient_boosting":
            return "loss"
        metric = "rmse" if task == "regression" else "logloss"
    name = _METRICS[metric][fitter][_TASK_INDEX[task]]
    if name is None:
        usable = [m for m, names in _METRICS.items() if names[fitter][_TASK_INDEX[task]] is not None]
        raise ConfigError(
            f"early_stopping metric {metric!r} does not apply to task {task!r}.",
            key="early_stopping.metric",
            hint=f"Use auto or one of: {', '.join(usable)}.",
        )
    return name


def _weights(data: FitData) -> dict[str, Any]:
    return {} if data.sample_weight is None else {"sample_weight": data.sample_weight}
