"""Multivariate drift by a domain classifier: can a model tell the reference rows from the current ones?

A gradient-boosted classifier (scikit-learn's ``HistGradientBoostingClassifier``, categories handled
natively) learns to tell at most ``rows`` reference rows from at most ``rows`` current rows, by stratified
k-fold cross-validation, so every row gets a score from a model that did not see it. Its ROC AUC on the held-out
rows (the mean over the folds) is the statistic: 0.5 when the two samples come from one distribution, towards 1
as they separate. It catches changes no per-feature test sees, such as a correlation that flips while every
marginal stays the same.

Each fold's held-out rows get an exact test: the one-sided Mann-Whitney U test of their scores (current
above reference; AUC = U / (n_reference x n_current)). A fold model never saw those rows, so under no drift
their scores do not depend on their labels, whatever the model learnt. The folds' tests are not independent
(each model learnt from the other folds' rows and labels), so pooling the out-of-fold scores into one test
is not valid: measured, 6% of undrifted draws fall below p = 0.01 that way (alibi-detect's classifier
detector pools them). The folds' p-values are merged by Rüschendorf's rule instead, valid under any
dependence: ``K / r`` times the ``r``-th smallest of the ``K`` p-values (Markov's inequality on how many fall
below ``t``), ``r`` the median's rank; with the :data:`FOLDS` = 2 halves that is Bonferroni, ``2 x min``.
The reported AUC is the mean of the folds'. Drift when the merged p-value is below the drift config's
``p_value``. The features that carry the shift are ranked by permutation importance (the drop in the held-out folds' AUC
when a feature's values are shuffled), computed only when the verdict is drift.

The reference must be rows (the stored reference sample of the training split), not a
:class:`ReferenceProfile`: a profile keeps each feature's values apart, and rows rebuilt from independent
marginals would lose the very dependence this test looks at.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from loopline.core.config import DriftConfig
from loopline.core.errors import ConfigError, DataError, did_you_mean
from loopline.monitor._report import DRIFT, NO_DRIFT, NOT_AVAILABLE, NOT_ENOUGH_DATA

FOLDS = 2
"""Cross-validation folds of the domain classifier (cross-fitting: each half trains the model that scores the
other). Two folds keep the merged p-value near exact: ``2 x min`` (Bonferroni) holds its level under any
dependence and, the two halves' tests being nearly independent, loses almost nothing; with 5 folds the median
rule was measured at 0.5% false alarms for a 10% level (power thrown away)."""

MIN_ROWS = 50
"""Rows each side needs for a verdict (fewer: ``"not enough data"``)."""

MAX_CATEGORIES = 250
"""Most categories of one feature the classifier tells apart (the most common; rarer ones share one code)."""

TOP_FEATURES = 5
"""How many features a drifted verdict names."""

IMPORTANCE_ROWS = 500
"""Held-out rows of each side and fold that permutation importance shuffles (all of them, 5000 a side, took
13 s for 20 features; the ranking needs far fewer)."""

ITERATIONS = 100
"""Boosting iterations of each fold's classifier, always all of them: early stopping (on a tenth of the training
rows) stopped a 20-feature model on a correlation flip after about 20 iterations in half the seeds, before it had
found the interaction (held-out AUC 0.50 instead of 0.84)."""

THREADS = 1
"""OpenMP threads of the classifier: a monitoring job runs beside the service, and on a busy machine more threads
than free cores make it many times slower (measured: 40 s instead of 2 s on 2 loaded cores)."""


@dataclass(frozen=True)
class MultivariateDrift:
    """The domain classifier's verdict: ``status`` (``"drift"``, ``"no drift"``, ``"not enough data"`` or
    ``"not available"``), its cross-validated ``auc`` and one-sided ``p_value`` against chance, the level
    ``alpha`` it was judged at, the rows of each side it saw, and, on drift, ``top_features``: the features
    that carry the shift with their permutation importance (the AUC lost when the feature is shuffled)."""

    status: str
    auc: float | None
    p_value: float | None
    alpha: float
    n_reference: int
    n_current: int
    top_features: dict[str, float] = field(default_factory=dict)
    reason: str = ""

    @property
    def drifted(self) -> bool:
        """The classifier tells the two samples apart beyond chance."""
        return self.status == DRIFT

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` reads it back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MultivariateDrift:
        """Rebuild a verdict written by :meth:`to_dict`."""
        return cls(**{**data, "top_features": dict(data.get("top_features", {}))})


def multivariate_drift(
    reference: pl.DataFrame | None,
    current: pl.DataFrame,
    *,
    numeric: list[str],
    categorical: list[str],
    config: DriftConfig = DriftConfig(),
    seed: int = 0,
) -> MultivariateDrift:
    """Whether a domain classifier tells ``current`` from ``reference`` rows (see the module docstring).

    ``reference`` None (only a profile at hand) gives ``"not available"``. Each side is sampled down to
    ``config.multivariate.rows`` rows (seeded). DataError naming a feature a frame lacks; ConfigError when no
    feature is given.
    """
    alpha = config.p_value
    if not numeric and not categorical:
        raise ConfigError("no features to compare.", hint="Pass at least one name in numeric or categorical.")
    if reference is None:
        reason = "no reference rows (a profile keeps features apart): pass the stored reference sample"
        return MultivariateDrift(NOT_AVAILABLE, None, None, alpha, 0, current.height, reason=reason)
    for side, frame in (("reference", reference), ("current", current)):
        _check_columns(frame, side, [*numeric, *categorical])
    rows = config.multivariate.rows
    ref = reference.sample(rows, seed=seed) if reference.height > rows else reference
    cur = current.sample(rows, seed=seed + 1) if current.height > rows else current
    if min(ref.height, cur.height) < MIN_ROWS:
        reason = f"not enough data ({ref.height} reference and {cur.height} current rows; {MIN_ROWS} a side needed)"
        return MultivariateDrift(NOT_ENOUGH_DATA, None, None, alpha, ref.height, cur.height, reason=reason)
    typed = [pl.col(numeric).cast(pl.Float64, strict=False), pl.col(categorical).cast(pl.String)]
    features, is_category = _matrix(pl.concat([ref.select(typed), cur.select(typed)]), numeric, categorical)
    labels = np.concatenate([np.zeros(ref.height, dtype=np.int8), np.ones(cur.height, dtype=np.int8)])
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=THREADS, user_api="openmp"):
        folds = _folds(features, labels, is_category, seed)
        tests = [_auc_test(model.predict_proba(features[held])[:, 1], labels[held]) for model, held in folds]
        auc, p_value = float(np.mean([auc for auc, _ in tests])), merged_p_value([p for _, p in tests])
        drifted = p_value < alpha
        top = _importance(folds, features, labels, [*numeric, *categorical], seed) if drifted else {}
    reason = f"domain classifier AUC {auc:.3f}, p = {p_value:.2g} ({'<' if drifted else '>='} {alpha:g})"
    if top:
        reason += "; carried by " + ", ".join(top)
    status = DRIFT if drifted else NO_DRIFT
    return MultivariateDrift(status, auc, p_value, alpha, ref.height, cur.height, top, reason)


def _check_columns(frame: pl.DataFrame, side: str, names: list[str]) -> None:
    for name in names:
        if name not in frame.columns:
            raise DataError(
                f"the {side} frame has no column {name!r}.",
                column=name,
                hint=did_you_mean(name, frame.columns) or f"Use one of its columns: {', '.join(frame.columns)}.",
            )


def _matrix(frame: pl.DataFrame, numeric: list[str], categorical: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Numbers as float (null: NaN); each category as the code of its rank by frequency (rare ones pooled)."""
    columns = [frame.get_column(name).fill_nan(None) for name in numeric]
    for name in categorical:
        text = frame.get_column(name)
        counted = text.drop_nulls().value_counts().sort(["count", name], descending=[True, False])
        ranked = counted.get_column(name).head(MAX_CATEGORIES).to_list()  # ties by name: codes are reproducible
        codes = {category: float(code) for code, category in enumerate(ranked)}
        coded = text.replace_strict(codes, default=float(len(ranked)), return_dtype=pl.Float64)
        columns.append(coded.zip_with(text.is_not_null(), pl.Series(name, [None], dtype=pl.Float64)))
    matrix = np.column_stack([column.to_numpy() for column in columns])
    is_category = np.array([False] * len(numeric) + [True] * len(categorical))
    return np.asarray(matrix, dtype=np.float64), is_category


def merged_p_value(p_values: list[float]) -> float:
    """One p-value from dependent ones: ``K / r`` x the ``r``-th smallest, ``r`` the median's rank (Rüschendorf)."""
    rank = (len(p_values) + 1) // 2
    return min(1.0, len(p_values) / rank * sorted(p_values)[rank - 1])


def _folds(
    features: np.ndarray, labels: np.ndarray, is_category: np.ndarray, seed: int
) -> list[tuple[Any, np.ndarray]]:
    """The (model, held-out rows) of each stratified fold; a fold's model never saw its held-out rows."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold

    folds = []
    splitter = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    for train, held_out in splitter.split(features, labels):
        model = HistGradientBoostingClassifier(
            max_iter=ITERATIONS,
            categorical_features=is_category if is_category.any() else None,
            early_stopping=False,
            min_samples_leaf=40,
            random_state=seed,
        )
        model.fit(features[train], labels[train])
        folds.append((model, held_out))
    return folds


def _auc_test(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """ROC AUC of the scores for "current" (label 1) and its one-sided Mann-Whitney p-value against chance."""
    from scipy.stats import mannwhitneyu

    current, reference = scores[labels == 1], scores[labels == 0]
    result = mannwhitneyu(current, reference, alternative="greater", method="asymptotic")
    return float(result.statistic) / (current.size * reference.size), float(result.pvalue)


def _importance(
    folds: list[tuple[Any, np.ndarray]], features: np.ndarray, labels: np.ndarray, names: list[str], seed: int
) -> dict[str, float]:
    """The :data:`TOP_FEATURES` features whose shuffling costs the held-out AUC most, with that cost."""
    from sklearn.inspection import permutation_importance

    lost = np.zeros(len(names))
    rng = np.random.default_rng(seed)
    for model, held_out in folds:
        rows = np.concatenate(
            [rng.permutation(held_out[labels[held_out] == side])[:IMPORTANCE_ROWS] for side in (0, 1)]
        )
        found = permutation_importance(
            model, features[rows], labels[rows], scoring="roc_auc", n_repeats=3, random_state=seed
        )
        lost += np.asarray(found.importances_mean) / len(folds)
    order = np.argsort(-lost, kind="stable")[:TOP_FEATURES]
    return {names[i]: round(float(lost[i]), 4) for i in order if lost[i] > 0}
