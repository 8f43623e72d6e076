"""Feature selection: variance threshold, k best by a statistic, model importance, recursive elimination.

Each one is fitted with scikit-learn on the training rows and learns which of its candidate columns to keep:
the state is ``selected_`` and ``dropped_`` (column names) plus the scores behind the choice, for reports.
Transforming drops ``dropped_``; every other column (the target, text columns, columns that were not
candidates) passes through. Candidates default to every numeric column but the target; they must hold no
missing value in the training rows (impute first). Randomised fits take a ``seed``, kept with the parameters.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import polars as pl

from loopline.core.errors import DataError
from loopline.prep._fitting import (
    TASKS,
    ColumnDrop,
    check_choice,
    check_columns,
    check_number,
    check_seed,
    feature_columns,
    infer_task,
    label_column,
    matrix,
    plain,
    target_vector,
)

SCORES = ("f_classif", "f_regression", "chi2", "mutual_info_classif", "mutual_info_regression")
ESTIMATORS = ("random_forest", "extra_trees", "linear")
_THRESHOLDS = ("mean", "median")


class _Selection(ColumnDrop):
    """Shared: the candidates, the target and the task; keeping a subset."""

    columns: list[str] | None
    task: str | None = None

    def _check_common(self) -> None:
        check_columns(self.type_name, "columns", self.columns)
        if self.task is not None:
            check_choice(self.type_name, "task", self.task, TASKS)

    def _training(
        self, frame: pl.DataFrame, target: str | None
    ) -> tuple[list[str], np.ndarray[Any, Any], np.ndarray[Any, Any], str]:
        """(candidate names, their matrix, the target vector, the task)."""
        label = label_column(self, frame, None, target)
        names = self._candidates(frame, label)
        task = infer_task(frame, label, self.task)
        return names, matrix(self, frame, names), target_vector(self, frame, label, task), task

    def _candidates(self, frame: pl.DataFrame, target: str | None) -> list[str]:
        names = feature_columns(self, frame, self.columns, target)
        if not names:
            raise DataError(
                f"{self.type_name}: there is no numeric column to select from.",
                hint="Encode the text columns first (type: onehot), or set columns.",
            )
        return names

    def _keep(self, names: list[str], keep: np.ndarray[Any, Any], why: str) -> None:
        if not keep.any():
            raise DataError(f"{self.type_name}: no column is kept: {why}.", hint="Lower the threshold.")
        self.selected_ = [n for n, k in zip(names, keep, strict=True) if k]
        self.dropped_ = [n for n, k in zip(names, keep, strict=True) if not k]


class SelectVariance(_Selection):
    """Drop numeric columns whose training variance is not above ``threshold`` (0.0, the default, drops the
    constant ones). Needs no target. State: ``selected_``, ``dropped_``, ``scores_`` (each column's variance)."""

    type_name = "select_variance"

    def __init__(self, columns: list[str] | None = None, threshold: float = 0.0) -> None:
        self.columns = columns
        self.threshold = threshold

    def check_params(self) -> None:
        self._check_common()
        check_number(self.type_name, "threshold", self.threshold, low=0)

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> SelectVariance:
        self.check_params()
        names = self._candidates(frame, target)
        values = matrix(self, frame, names)
        # as scikit-learn's VarianceThreshold (which refuses to keep nothing): constants exactly 0
        variances = np.where(np.ptp(values, axis=0) == 0, 0.0, np.var(values, axis=0))
        self.scores_ = {n: float(v) for n, v in zip(names, variances, strict=True)}
        self._keep(names, variances > self.threshold, f"no variance is above {self.threshold}")
        return self


class SelectKBest(_Selection):
    """Keep the ``k`` numeric columns that score best against the target (ties: the earlier column).

    ``score``: ``f_classif``, ``f_regression``, ``chi2`` (non-negative columns only), ``mutual_info_classif`` or
    ``mutual_info_regression``; by default ``f_classif`` or ``f_regression`` after the task, which ``task``
    sets or the target implies (a float target is regression, any other classification). A column the
    statistic cannot score (a constant one) scores 0. State: ``selected_``, ``dropped_``, ``scores_``.
    """

    type_name = "select_kbest"

    def __init__(
        self,
        k: int = 10,
        score: str | None = None,
        task: str | None = None,
        columns: list[str] | None = None,
        seed: int = 0,
    ) -> None:
        self.k = k
        self.score = score
        self.task = task
        self.columns = columns
        self.seed = seed

    def check_params(self) -> None:
        self._check_common()
        check_number(self.type_name, "k", self.k, low=1, integer=True)
        if self.score is not None:
            check_choice(self.type_name, "score", self.score, SCORES)
        check_seed(self.type_name, self.seed)

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> SelectKBest:
        self.check_params()
        names, values, labels, task = self._training(frame, target)
        score = self.score or ("f_classif" if task == "classification" else "f_regression")
        scores = np.nan_to_num(self._scores(score, values, labels), nan=0.0, posinf=np.finfo(float).max)
        ranked = sorted(range(len(names)), key=lambda i: (-scores[i], i))
        keep = np.zeros(len(names), dtype=bool)
        keep[ranked[: self.k]] = True
        self.scores_ = {n: plain(s) for n, s in zip(names, scores, strict=True)}
        self._keep(names, keep, "k is 0")
        return self

    def _scores(self, score: str, values: np.ndarray[Any, Any], labels: np.ndarray[Any, Any]) -> Any:
        from sklearn import feature_selection

        function = getattr(feature_selection, score)
        extra = {"random_state": self.seed} if score.startswith("mutual_info") else {}
        try:
            with warnings.catch_warnings():
                # constant columns: the F statistic is 0/0; scikit-learn warns, the score becomes 0 below
                warnings.simplefilter("ignore", RuntimeWarning)
                warnings.filterwarnings("ignore", "Features .* are constant", UserWarning)
                result = function(values, labels, **extra)
        except ValueError as exc:
            hint = (
                "chi2 needs non-negative columns: scale them to [0, 1] first (type: scale, method: minmax)."
                if score == "chi2"
                else "Check that score matches the task (classification or regression)."
            )
            raise DataError(f"{self.type_name}: {score} failed: {exc}", hint=hint) from None
        return result[0] if isinstance(result, tuple) else result


class SelectModel(_Selection):
    """Keep the numeric columns a model finds important.

    ``estimator``: ``random_forest`` or ``extra_trees`` (impurity importance; ``n_estimators`` trees, ``seed``),
    or ``linear`` (logistic or ridge regression on standardised columns; importance = absolute coefficient,
    summed over classes). Keeps the top ``k`` columns, or those with importance at or above ``threshold`` (a
    number, ``mean`` or ``median`` of the importances; ``mean`` when neither is given), or the top ``k`` of
    those above ``threshold`` when both are. State: ``selected_``, ``dropped_``, ``scores_`` (importances).
    """

    type_name = "select_model"

    def __init__(
        self,
        estimator: str = "random_forest",
        k: int | None = None,
        threshold: float | str | None = None,
        task: str | None = None,
        columns: list[str] | None = None,
        n_estimators: int = 100,
        seed: int = 0,
    ) -> None:
        self.estimator = estimator
        self.k = k
        self.threshold = threshold
        self.task = task
        self.columns = columns
        self.n_estimators = n_estimators
        self.seed = seed

    def check_params(self) -> None:
        self._check_common()
        check_choice(self.type_name, "estimator", self.estimator, ESTIMATORS)
        check_number(self.type_name, "k", self.k, low=1, integer=True, optional=True)
        if isinstance(self.threshold, str):
            check_choice(self.type_name, "threshold", self.threshold, _THRESHOLDS)
        else:
            check_number(self.type_name, "threshold", self.threshold, low=0, optional=True)
        check_number(self.type_name, "n_estimators", self.n_estimators, low=1, integer=True)
        check_seed(self.type_name, self.seed)

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> SelectModel:
        self.check_params()
        names, values, labels, task = self._training(frame, target)
        model = _estimator(self.estimator, task, self.n_estimators, self.seed)
        _fit_quietly(model, values, labels)
        importance = _importance(model)
        threshold = self.threshold if self.threshold is not None or self.k is not None else "mean"
        cut = _cut(threshold, importance)
        keep = importance >= (-np.inf if cut is None else cut)
        if self.k is not None:
            ranked = sorted(np.flatnonzero(keep), key=lambda i: (-importance[i], i))
            keep = np.isin(np.arange(len(names)), ranked[: self.k])
        self.scores_ = {n: float(s) for n, s in zip(names, importance, strict=True)}
        self._keep(names, keep, f"no importance reaches {cut}")
        return self


class SelectRFE(_Selection):
    """Recursive feature elimination: fit ``estimator`` (``linear`` by default, or ``random_forest`` /
    ``extra_trees``), drop the ``step`` least important columns, repeat until ``k`` are left (half when
    ``k`` is not set). State: ``selected_``, ``dropped_``, ``ranking_`` (1 for kept columns, higher for
    those eliminated earlier)."""

    type_name = "select_rfe"

    def __init__(
        self,
        k: int | None = None,
        estimator: str = "linear",
        step: int = 1,
        task: str | None = None,
        columns: list[str] | None = None,
        n_estimators: int = 50,
        seed: int = 0,
    ) -> None:
        self.k = k
        self.estimator = estimator
        self.step = step
        self.task = task
        self.columns = columns
        self.n_estimators = n_estimators
        self.seed = seed

    def check_params(self) -> None:
        self._check_common()
        check_number(self.type_name, "k", self.k, low=1, integer=True, optional=True)
        check_choice(self.type_name, "estimator", self.estimator, ESTIMATORS)
        check_number(self.type_name, "step", self.step, low=1, integer=True)
        check_number(self.type_name, "n_estimators", self.n_estimators, low=1, integer=True)
        check_seed(self.type_name, self.seed)

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> SelectRFE:
        from sklearn.feature_selection import RFE

        self.check_params()
        names, values, labels, task = self._training(frame, target)
        getter = "named_steps.model.coef_" if self.estimator == "linear" else "auto"
        model = _estimator(self.estimator, task, self.n_estimators, self.seed)
        k = min(self.k, len(names)) if self.k is not None else None
        rfe = RFE(model, n_features_to_select=k, step=self.step, importance_getter=getter)
        _fit_quietly(rfe, values, labels)
        self.ranking_ = {n: int(r) for n, r in zip(names, rfe.ranking_, strict=True)}
        self._keep(names, np.asarray(rfe.support_, dtype=bool), "k is 0")
        return self


def _estimator(kind: str, task: str, n_estimators: int, seed: int) -> Any:
    """An unfitted scikit-learn estimator; ``linear`` standardises its inputs first."""
    from sklearn import ensemble, linear_model
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    classify = task == "classification"
    if kind == "linear":
        model = linear_model.LogisticRegression(max_iter=1000) if classify else linear_model.Ridge()
        return Pipeline([("scale", StandardScaler()), ("model", model)])
    family = "RandomForest" if kind == "random_forest" else "ExtraTrees"
    cls = getattr(ensemble, family + ("Classifier" if classify else "Regressor"))
    return cls(n_estimators=n_estimators, random_state=seed)


def _cut(threshold: float | str | None, importance: np.ndarray[Any, Any]) -> float | None:
    """The importance a kept column reaches: a number, or the mean or median importance."""
    if threshold == "mean":
        return float(np.mean(importance))
    if threshold == "median":
        return float(np.median(importance))
    return None if threshold is None else float(threshold)


def _fit_quietly(model: Any, values: np.ndarray[Any, Any], labels: np.ndarray[Any, Any]) -> None:
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        # an importance ranking from a not-quite-converged linear model is still a ranking
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(values, labels)


def _importance(model: Any) -> np.ndarray[Any, Any]:
    if hasattr(model, "feature_importances_"):
        return np.asarray(model.feature_importances_, dtype=float)
    coef = np.atleast_2d(model.named_steps["model"].coef_)
    return np.asarray(np.abs(coef).sum(axis=0), dtype=float)
