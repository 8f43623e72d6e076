"""Training diagnostics: empty and constant features, target leakage, near-perfect validation scores.

:func:`~loopline.train.train_candidate` runs them on the columns the preprocessor is fitted on (the
transform chain's outputs when there is one), over the training split only, and records each finding as a
:class:`~loopline.core.records.Finding` in the candidate's report (configuration: ``diagnostics:`` of the
train step, :class:`~loopline.train._spec.Diagnostics`):

- ``all_null``: every training row is missing (null; NaN or infinite for floats, as the preprocessor counts
  them).
- ``constant``: one distinct value, and the missing rows (if any) are imputed with that very value
  (median or mean imputation of a number, most-frequent of a category): the model would see one value.
  Both kinds are dropped from training by default (``empty_features: flag`` trains on them).
- ``target_leakage``: the feature alone predicts the target almost perfectly on held-out rows. A seeded
  sample of ``sample_rows`` training rows is cut into two halves; the feature is discretised (numbers: their
  values, or up to :data:`BINS` quantile bins, missing values a bin of their own; categories: their values)
  and the target per bin (class shares; regression: the mean) learned on one half predicts the other, both
  ways. The score is the one-feature ROC AUC (multiclass: one-vs-rest, macro over the classes) or R²
  (regression; also the squared rank correlation, which catches a monotone copy with heavy tails).
  Scoring held-out rows keeps identifiers and other high-cardinality columns from looking perfect.
- ``perfect_score``: the validation roc_auc (accuracy for a model without probabilities, unless one class
  alone holds that share of the rows; regression: r2) at or above ``perfect_score``.

The leakage check needs :data:`MIN_ROWS` training rows (classification: :data:`MIN_CLASS_ROWS` of a class
in each half), the perfect-score check :data:`MIN_SCORE_ROWS` validation rows: on fewer rows a perfect
score proves nothing, and nothing is reported. The cost is a few vectorised passes
over the sample: about a millisecond per feature on 10,000 rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from loopline.core.records import Finding

if TYPE_CHECKING:
    from loopline.train._spec import Diagnostics

BINS = 64
"""Quantile bins of a numeric feature with more distinct values than this, in the leakage check."""

MIN_ROWS = 100
"""Training rows below which the leakage check reports nothing."""

MIN_SCORE_ROWS = 500
"""Validation rows below which the perfect-score check reports nothing: on fewer rows an easy problem (the
penguins' species on 113 rows) scores a perfect ROC AUC without any leak."""

MIN_CLASS_ROWS = 10
"""Rows of a class (and of the others) each half of the leakage sample needs for that class to be scored."""

_TEXT = (pl.String, pl.Categorical, pl.Enum)


def training_findings(
    frame: pl.DataFrame,
    y: np.ndarray,
    task: str,
    numeric: Sequence[str],
    categorical: Sequence[str],
    options: Diagnostics,
    *,
    prep: Mapping[str, Any],
    seed: int,
) -> list[Finding]:
    """The training rows' findings: all-null and constant features (exact, over every row), then target
    leakage among the others (on a sample). ``y`` is the target row for row; ``prep`` the preprocessor's
    options (its imputation decides whether nulls beside one value leave it constant)."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(frame.height, min(frame.height, options.sample_rows), replace=False))
    sample = frame.select([*numeric, *categorical])[rows]
    empty = empty_features(frame, numeric, categorical, prep, drop=options.empty_features == "drop", screen=sample)
    if options.leakage is None:
        return empty
    skip = {f.feature for f in empty}
    leaks = target_leakage(
        sample,
        y[rows],
        task,
        [n for n in numeric if n not in skip],
        [n for n in categorical if n not in skip],
        threshold=options.leakage,
        halves=rng.permutation(rows.size) < rows.size // 2,
    )
    return [*empty, *leaks]


def empty_features(
    frame: pl.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    prep: Mapping[str, Any],
    *,
    drop: bool,
    screen: pl.DataFrame | None = None,
) -> list[Finding]:
    """``all_null`` and ``constant`` findings for the features of ``frame``; ``drop`` says whether training
    drops them (the finding's action). ``screen``, a sample of ``frame``'s rows, spares the full pass for
    the columns it already shows to hold two values."""
    names = [*numeric, *categorical]
    if screen is not None and screen.height < frame.height:
        stats = _stats(screen, names)
        names = [n for n in names if stats[n][0] == screen.height or stats[n][1] is None or stats[n][1] == stats[n][2]]
    if not names or frame.height == 0:
        return []
    stats = _stats(frame, names)
    imputes_mode = {
        "numeric": prep.get("impute_numeric", "median") in ("median", "mean"),
        "categorical": prep.get("impute_categorical", "most_frequent") == "most_frequent",
    }
    action = "dropped" if drop else "flagged"
    findings = []
    for name in names:
        missing, low, high = stats[name]
        if missing == frame.height:
            findings.append(Finding("all_null", name, _all_null_detail(name, frame.height, drop), None, action))
        elif low is not None and low == high and (missing == 0 or imputes_mode[_kind(name, numeric)]):
            findings.append(Finding("constant", name, _constant_detail(name, low, missing, drop), None, action))
    return findings


def _stats(frame: pl.DataFrame, names: Sequence[str]) -> dict[str, tuple[int, Any, Any]]:
    """``{name: (missing rows, lowest, highest)}`` in one pass (the bounds None where not comparable)."""
    exprs = []
    for i, name in enumerate(names):
        column = _missing_as_null(name, frame.schema[name])
        exprs.append(column.null_count().alias(f"n{i}"))
        if _comparable(frame.schema[name]):
            exprs += [column.min().alias(f"lo{i}"), column.max().alias(f"hi{i}")]
    row = frame.select(exprs).row(0, named=True) if exprs else {}
    return {name: (row[f"n{i}"], row.get(f"lo{i}"), row.get(f"hi{i}")) for i, name in enumerate(names)}


def _missing_as_null(name: str, dtype: pl.DataType) -> pl.Expr:
    column = pl.col(name)
    if dtype.is_float():
        return pl.when(column.is_finite()).then(column)
    return column.cast(pl.String) if isinstance(dtype, pl.Categorical | pl.Enum) else column


def _comparable(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype.is_temporal() or dtype == pl.Boolean or isinstance(dtype, _TEXT)


def _kind(name: str, numeric: Sequence[str]) -> str:
    return "numeric" if name in numeric else "categorical"


def _all_null_detail(name: str, rows: int, drop: bool) -> str:
    used = "dropped: the model does not use it" if drop else "the model sees only its fill value"
    return f"feature {name!r} is missing in all {rows:,} training rows; {used}."


def _constant_detail(name: str, value: Any, missing: int, drop: bool) -> str:
    nulls = f" (its {missing:,} missing rows are imputed with it)" if missing else ""
    used = "dropped: it carries no information" if drop else "it carries no information"
    return f"feature {name!r} holds one value, {value!r}, in every training row{nulls}; {used}."


# -- target leakage ------------------------------------------------------------------------------


def target_leakage(
    sample: pl.DataFrame,
    y: np.ndarray,
    task: str,
    numeric: Sequence[str],
    categorical: Sequence[str],
    *,
    threshold: float,
    halves: np.ndarray,
) -> list[Finding]:
    """``target_leakage`` findings: the features of ``sample`` (training rows) that alone predict ``y`` (its
    target, row for row) with a held-out score at or above ``threshold``; ``halves`` (a random boolean
    mask) cuts the rows into the two halves that learn and score in turn."""
    if sample.height < MIN_ROWS:
        return []
    scorer = _scorer(task, y, halves)
    if scorer is None:
        return []
    findings = []
    for name in [*numeric, *categorical]:
        series = sample.get_column(name)
        values = _numbers(series) if name in numeric else None
        codes = _text_codes(series) if values is None else _bins(values)
        score = scorer.score(codes)
        if values is not None and isinstance(scorer, _Regression):
            score = max(score, scorer.rank_r2(values))
        if score >= threshold:
            detail = (
                f"feature {name!r} alone predicts the target: its one-feature {scorer.metric} is {score:.4f} on "
                f"held-out training rows (threshold {threshold:g}); a feature derived from the target, or known "
                "only after it, leaks the label."
            )
            findings.append(Finding("target_leakage", name, detail, round(score, 6)))
    return findings


def _numbers(series: pl.Series) -> np.ndarray | None:
    """The column as float64 with NaN for missing values; None for a column that is not numbers."""
    if not (series.dtype.is_numeric() or series.dtype in (pl.Boolean, pl.Null)):
        return None
    return series.cast(pl.Float64).to_numpy().astype(np.float64, copy=False)


def _bins(values: np.ndarray) -> np.ndarray:
    """Bin codes: each distinct value (or quantile bin past :data:`BINS` of them); non-finite: the last code."""
    finite = np.isfinite(values)
    ordered = np.sort(values[finite])
    distinct = ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if ordered.size else ordered
    if distinct.size <= BINS:
        edges = distinct[1:]
    else:
        edges = np.unique(ordered[(_QUANTILES * (ordered.size - 1)).astype(np.int64)])
    codes = np.searchsorted(edges, values, side="right")
    codes[~finite] = edges.size + 1
    return codes


_QUANTILES = np.linspace(0.0, 1.0, BINS + 1)[1:-1]


def _text_codes(series: pl.Series) -> np.ndarray:
    """One code per distinct value (compared as text, as the preprocessor does; missing values share one)."""
    hashes = series.cast(pl.String).hash(seed=0).to_numpy()
    return np.unique(hashes, return_inverse=True)[1].reshape(-1).astype(np.int64, copy=False)


class _Classes:
    """Held-out one-feature ROC AUC of a class target (binary: the positive class; multiclass: macro)."""

    metric = "ROC AUC"

    def __init__(self, labels: np.ndarray, first: np.ndarray, scored: list[int]) -> None:
        self.labels, self.first, self.scored = labels, first, scored
        self.n_classes = int(labels.max()) + 1

    def score(self, codes: np.ndarray) -> float:
        size = int(codes.max()) + 1
        aucs = []
        for fit, held in ((self.first, ~self.first), (~self.first, self.first)):
            seen = self._counts(codes, fit, size)
            prior = seen.sum(axis=0) / seen.sum()
            rate = (seen + prior) / (seen.sum(axis=1, keepdims=True) + 1.0)
            counts = self._counts(codes, held, size)
            rows = counts.sum(axis=1)
            aucs += [_grouped_auc(rate[:, c], counts[:, c], rows - counts[:, c]) for c in self.scored]
        return float(np.mean(aucs))

    def _counts(self, codes: np.ndarray, rows: np.ndarray, size: int) -> np.ndarray:
        flat = codes[rows] * self.n_classes + self.labels[rows]
        return np.bincount(flat, minlength=size * self.n_classes).reshape(size, self.n_classes).astype(np.float64)


class _Regression:
    """Held-out one-feature R² of a numeric target: per-bin means learned on the other half."""

    metric = "R^2"

    def __init__(self, target: np.ndarray, first: np.ndarray) -> None:
        self.target, self.first = target, first

    def score(self, codes: np.ndarray) -> float:
        size = int(codes.max()) + 1
        scores = []
        for fit, held in ((self.first, ~self.first), (~self.first, self.first)):
            y_fit, y_held = self.target[fit], self.target[held]
            sums = np.bincount(codes[fit], weights=y_fit, minlength=size)
            counts = np.bincount(codes[fit], minlength=size)
            predicted = ((sums + y_fit.mean()) / (counts + 1.0))[codes[held]]
            total = float(((y_held - y_held.mean()) ** 2).sum())
            scores.append(1.0 - float(((y_held - predicted) ** 2).sum()) / total if total > 0 else 0.0)
        return float(np.mean(scores))

    def rank_r2(self, values: np.ndarray) -> float:
        """The squared rank correlation of the feature's finite values with the target (0: too few)."""
        from scipy.stats import rankdata

        finite = np.isfinite(values)
        if finite.sum() < MIN_ROWS:
            return 0.0
        x, y = rankdata(values[finite]), rankdata(self.target[finite])
        if x.std() == 0 or y.std() == 0:
            return 0.0
        return float(np.corrcoef(x, y)[0, 1] ** 2)


def _scorer(task: str, y: np.ndarray, first: np.ndarray) -> _Classes | _Regression | None:
    """The scorer for the sample's target, or None when it has too few rows of its classes to judge."""
    if task == "regression":
        target = y.astype(np.float64)
        return _Regression(target, first) if np.isfinite(target).all() and target.std() > 0 else None
    labels = np.unique(y, return_inverse=True)[1].reshape(-1)
    n_classes = int(labels.max()) + 1
    halves = [np.bincount(labels[part], minlength=n_classes) for part in (first, ~first)]
    sizes = [int(first.sum()), int((~first).sum())]
    enough = [
        c
        for c in range(n_classes)
        if all(min(h[c], size - h[c]) >= MIN_CLASS_ROWS for h, size in zip(halves, sizes, strict=True))
    ]
    if task == "binary" or n_classes == 2:
        enough = [1] if 1 in enough else []
    return _Classes(labels, first, enough) if enough else None


def _grouped_auc(score: np.ndarray, positive: np.ndarray, negative: np.ndarray) -> float:
    """ROC AUC when every row of a bin has the bin's ``score`` (ties count half)."""
    total = positive.sum() * negative.sum()
    _, group = np.unique(score, return_inverse=True)
    pos, neg = np.bincount(group, weights=positive), np.bincount(group, weights=negative)
    below = np.cumsum(neg) - neg
    return float((pos * (below + 0.5 * neg)).sum() / total)


# -- scores --------------------------------------------------------------------------------------


def perfect_score(task: str, metrics: Mapping[str, float], y_valid: np.ndarray, threshold: float) -> Finding | None:
    """A ``perfect_score`` finding when the validation score reaches ``threshold`` on enough rows."""
    if y_valid.shape[0] < MIN_SCORE_ROWS:
        return None
    metric = "r2" if task == "regression" else "roc_auc" if "roc_auc" in metrics else "accuracy"
    value = metrics.get(metric)
    if value is None or not value >= threshold:
        return None
    if metric == "accuracy" and np.unique(y_valid, return_counts=True)[1].max() / y_valid.shape[0] >= threshold:
        return None  # one class alone scores that well
    detail = (
        f"validation {metric} {value:.4f} on {y_valid.shape[0]:,} rows is at or above {threshold:g}: a "
        "near-perfect score usually means a leak (a feature derived from the target, rows shared between the "
        "splits)."
    )
    return Finding("perfect_score", None, detail, round(float(value), 6))
