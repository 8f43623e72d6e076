"""Performance before the labels arrive: confidence-based estimation for a binary or multi-class classifier.

If a classifier's probability ``p`` of the positive class is calibrated, a row predicted positive is a true
positive with probability ``p`` and a false positive with ``1 - p`` (a row predicted negative: a false negative
with ``p``, a true negative with ``1 - p``). Summed over a window's rows these give the expected confusion matrix,
and from it accuracy, precision, recall and F1; the expected ROC AUC is the chance that a random positive row is
ranked above a random negative one, with each row positive with its probability (pairs of distinct rows only).
This is the idea of confidence-based performance estimation (NannyML's CBPE), written here from that idea.

Calibration: :class:`PerformanceEstimator` learns, on a reference set with labels, an isotonic regression
(scikit-learn) from the served probability to the observed positive rate, and uses it only when it lowers the
Brier score on held-out folds of the reference (``calibration="auto"``): an already calibrated model is left as is.

The band: the realised metric of a finite window scatters around its expectation. Labels are drawn from the
calibrated probabilities (``draws`` times, seeded) and the metric recomputed; ``sampling_error`` is the
standard deviation of the draws and ``lower``/``upper`` their central ``level`` interval.

Valid while the relation between inputs and outcome holds (covariate shift changes the probabilities the
model gives, which the estimate follows); a concept shift (the same inputs now mean another outcome) is
invisible without labels. No regression equivalent is offered: a point prediction carries no confidence to
estimate its error from.

Multi-class: given a probability matrix (one column per class, 3 or more) and class indices, the estimator works
one-vs-rest (:mod:`loopline.monitor._estimation_multiclass`): each class calibrated on its own, the rows
renormalised, then the expected accuracy, ``f1_macro`` and macro one-vs-rest ``roc_auc`` with their bands.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from loopline.core.errors import ConfigError, DataError
from loopline.monitor._estimation_multiclass import (
    MULTICLASS_METRICS,
    class_indices,
    drawn_metrics,
    expected_metrics,
    probability_matrix,
    renormalised,
)

ESTIMATED_METRICS = ("accuracy", "f1", "precision", "recall", "roc_auc")
MIN_REFERENCE_ROWS = 100
_CALIBRATIONS = ("auto", "isotonic", "none")
_FOLDS = 5
_DRAW_BLOCK = 64  # draws simulated at once: memory is block x rows bytes


@dataclass(frozen=True)
class ExpectedConfusion:
    """The expected confusion matrix of a window (counts of rows; fractional)."""

    true_positive: float
    false_positive: float
    false_negative: float
    true_negative: float


@dataclass(frozen=True)
class Estimate:
    """An estimated metric: ``value``, its ``sampling_error`` (standard deviation) and the band
    [``lower``, ``upper``] the realised metric is expected in (``level`` of the time). NaN when undefined."""

    value: float
    sampling_error: float
    lower: float
    upper: float


@dataclass(frozen=True)
class EstimatedPerformance:
    """The estimated performance of one window of ``rows`` predictions (no labels used)."""

    rows: int
    confusion: ExpectedConfusion | None  # None for a multi-class model (its metrics are per class, then averaged)
    metrics: dict[str, Estimate]


class PerformanceEstimator:
    """Confidence-based performance estimation for a binary or multi-class classifier (see the module doc).

    ``calibration``: ``"auto"`` (isotonic when it helps on held-out reference folds), ``"isotonic"`` or
    ``"none"``; ``draws`` and ``level``: the band's simulation; ``seed`` makes it repeatable. :meth:`fit`
    learns ``calibrator_`` (None when not calibrating; a list, one per class, for a multi-class model),
    ``calibrated_``, ``classes_`` (2 for a binary model) and ``reference_rows_``.
    """

    def __init__(self, *, calibration: str = "auto", draws: int = 200, level: float = 0.95, seed: int = 0) -> None:
        self.calibration = calibration
        self.draws = draws
        self.level = level
        self.seed = seed

    def fit(self, probability: Any, label: Any) -> PerformanceEstimator:
        """Learn the calibration from reference ``probability`` (of the positive class) and ``label`` (True or
        1 for positive) — or, for a multi-class model, ``probability`` a matrix with one column per class and
        ``label`` the class indices. Raises DataError for probabilities outside [0, 1], one class only, too
        few rows."""
        if self.calibration not in _CALIBRATIONS:
            raise ConfigError(
                f"unknown calibration {self.calibration!r}.", hint=f"Use one of: {', '.join(_CALIBRATIONS)}."
            )
        if self.draws < 10 or not 0 < self.level < 1:
            raise ConfigError("draws must be at least 10 and level in (0, 1).", hint="Use e.g. draws=500, level=0.95.")
        if np.ndim(probability) == 2 and np.shape(probability)[1] > 2:
            return self._fit_multiclass(probability, label)
        score, positive = _probabilities(probability, "reference"), _labels(label, np.size(probability))
        if score.size < MIN_REFERENCE_ROWS:
            raise DataError(
                f"the reference has {score.size} rows; calibration needs at least {MIN_REFERENCE_ROWS}.",
                hint="Use a longer reference period with labels.",
            )
        if positive.all() or not positive.any():
            only = "positive" if positive.all() else "negative"
            raise DataError(
                f"every reference label is {only}: calibration needs both classes.",
                hint="Use a reference period whose labels hold positives and negatives.",
            )
        self.calibrator_ = _fit_isotonic(score, positive) if self._calibrates(score, positive) else None
        self.calibrated_ = self.calibrator_ is not None
        self.classes_ = 2
        self.reference_rows_ = int(score.size)
        return self

    def _fit_multiclass(self, probability: Any, label: Any) -> PerformanceEstimator:
        matrix = probability_matrix(probability, "reference")
        rows, k = matrix.shape
        index = class_indices(label, rows, k)
        if rows < MIN_REFERENCE_ROWS:
            raise DataError(
                f"the reference has {rows} rows; calibration needs at least {MIN_REFERENCE_ROWS}.",
                hint="Use a longer reference period with labels.",
            )
        if np.unique(index).size < 2:
            raise DataError(
                "every reference label is of one class: calibration needs several.",
                hint="Use a reference period whose labels hold several classes.",
            )
        calibrators = []
        for c in range(k):
            positive = index == c
            fits = positive.any() and not positive.all() and self._calibrates(matrix[:, c], positive)
            calibrators.append(_fit_isotonic(matrix[:, c], positive) if fits else None)
        self.calibrator_ = calibrators
        self.calibrated_ = any(c is not None for c in calibrators)
        self.classes_ = k
        self.reference_rows_ = rows
        return self

    def calibrate(self, probability: Any) -> np.ndarray:
        """The calibrated probabilities of ``probability`` (unchanged without a calibrator; a multi-class
        matrix: each column by its class's calibrator, then the rows renormalised)."""
        calibrator = self._fitted()
        if self.classes_ > 2:
            matrix = probability_matrix(probability, "analysis")
            if matrix.shape[1] != self.classes_:
                raise DataError(
                    f"{matrix.shape[1]} probability columns; the estimator was fitted on {self.classes_} classes.",
                    hint="Pass the served probabilities of every class, in the model's class order.",
                )
            columns = [
                matrix[:, c] if fit is None else np.clip(fit.predict(matrix[:, c]), 0.0, 1.0)
                for c, fit in enumerate(calibrator)
            ]
            return renormalised(np.column_stack(columns)) if self.calibrated_ else matrix
        score = _probabilities(probability, "analysis")
        return score if calibrator is None else np.clip(calibrator.predict(score), 0.0, 1.0)

    def estimate(
        self, probability: Any, predicted: Any | None = None, *, threshold: float = 0.5
    ) -> EstimatedPerformance:
        """The estimated performance of one window: ``probability`` of the positive class as served and
        ``predicted`` (the served class is positive; default ``probability >= threshold``). A multi-class
        model: ``probability`` the served matrix, ``predicted`` the served class indices (default: the most
        probable), metrics ``accuracy``, ``f1_macro`` and ``roc_auc``."""
        self._fitted()
        if self.classes_ > 2:
            return self._estimate_multiclass(probability, predicted)
        score = _probabilities(probability, "analysis")
        said = score >= threshold if predicted is None else _labels(predicted, score.size, what="predicted")
        p = self.calibrate(score)
        confusion = _confusion(p, said)
        expected = _confusion_metrics(confusion)
        expected["roc_auc"] = _expected_auc(score, p)
        draws = self._draws(score, said, p)
        tail = (1 - self.level) / 2
        metrics = {
            name: _estimate(expected[name], draws[name], tail) if score.size else _undefined()
            for name in ESTIMATED_METRICS
        }
        return EstimatedPerformance(int(score.size), confusion, metrics)

    def _estimate_multiclass(self, probability: Any, predicted: Any | None) -> EstimatedPerformance:
        q = self.calibrate(probability)
        score = probability_matrix(probability, "analysis")
        rows, k = score.shape
        said = score.argmax(axis=1) if predicted is None else class_indices(predicted, rows, k, what="predicted")
        expected = expected_metrics(score, q, said)
        draws = drawn_metrics(np.random.default_rng(self.seed), self.draws, score, q, said)
        tail = (1 - self.level) / 2
        metrics = {
            name: _estimate(expected[name], draws[name], tail) if rows else _undefined() for name in MULTICLASS_METRICS
        }
        return EstimatedPerformance(rows, None, metrics)

    def _calibrates(self, score: np.ndarray, positive: np.ndarray) -> bool:
        if self.calibration != "auto":
            return self.calibration == "isotonic"
        from sklearn.metrics import brier_score_loss

        held_out = _cross_calibrated(score, positive, self.seed)
        return bool(brier_score_loss(positive, held_out) < brier_score_loss(positive, score))

    def _fitted(self) -> Any:
        if not hasattr(self, "calibrator_"):
            raise DataError("the estimator is not fitted.", hint="Call fit(probability, label) on a reference first.")
        return self.calibrator_

    def _draws(self, score: np.ndarray, said: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
        """Each metric on ``draws`` label sets drawn from ``p`` (NaN where undefined in a draw)."""
        rng = np.random.default_rng(self.seed)
        ranks = _ranks(score)
        out: dict[str, list[np.ndarray]] = {name: [] for name in ESTIMATED_METRICS}
        for start in range(0, self.draws, _DRAW_BLOCK):
            block = rng.random((min(_DRAW_BLOCK, self.draws - start), score.size)) < p
            for name, values in _drawn_metrics(block, said, ranks).items():
                out[name].append(values)
        return {name: np.concatenate(parts) for name, parts in out.items()}


def estimate_by_period(
    reference_probability: Any,
    reference_label: Any,
    periods: Mapping[str, Any],
    *,
    metric: str = "roc_auc",
    calibration: str = "auto",
) -> dict[str, float]:
    """The estimated ``metric`` of each period (name -> positive-class probabilities, as served), from an
    estimator fitted on the reference period's probabilities and labels. The benchmark's entry point."""
    if metric not in ESTIMATED_METRICS:
        raise ConfigError(f"unknown estimated metric {metric!r}.", hint=f"Use one of: {', '.join(ESTIMATED_METRICS)}.")
    estimator = PerformanceEstimator(calibration=calibration, draws=10).fit(reference_probability, reference_label)
    return {name: estimator.estimate(values).metrics[metric].value for name, values in periods.items()}


def _probabilities(values: Any, what: str) -> np.ndarray:
    score = np.asarray(values, dtype=np.float64).ravel()
    bad = ~np.isfinite(score) | (score < 0) | (score > 1)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{what} probability {index} is {float(score[index])}; probabilities must lie in [0, 1].",
            hint="Pass the served probability of the positive class (not a logit or a score).",
        )
    return score


def _labels(values: Any, rows: int, *, what: str = "label") -> np.ndarray:
    array = np.asarray(values).ravel()
    if array.size != rows:
        raise DataError(f"{array.size} {what}s for {rows} probabilities.", hint="Pass one per row.")
    if array.dtype == bool:
        return array
    if not np.isin(array, [0, 1]).all():
        raise DataError(f"{what}s must be booleans or 0/1.", hint="Map the positive class to True.")
    return array.astype(bool)


def _fit_isotonic(score: np.ndarray, positive: np.ndarray) -> Any:
    from sklearn.isotonic import IsotonicRegression

    return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(score, positive.astype(np.float64))


def _cross_calibrated(score: np.ndarray, positive: np.ndarray, seed: int) -> np.ndarray:
    """Each reference row calibrated by an isotonic fit on the other folds."""
    from sklearn.model_selection import StratifiedKFold

    splits = min(_FOLDS, int(positive.sum()), int((~positive).sum()))
    if splits < 2:
        return score
    out = np.empty_like(score)
    folds = StratifiedKFold(n_splits=splits, shuffle=True, random_state=seed)
    for fit_rows, held_rows in folds.split(score, positive):
        out[held_rows] = _fit_isotonic(score[fit_rows], positive[fit_rows]).predict(score[held_rows])
    return out


def _confusion(p: np.ndarray, said: np.ndarray) -> ExpectedConfusion:
    return ExpectedConfusion(
        true_positive=float(p[said].sum()),
        false_positive=float((1 - p[said]).sum()),
        false_negative=float(p[~said].sum()),
        true_negative=float((1 - p[~said]).sum()),
    )


def _confusion_metrics(c: ExpectedConfusion) -> dict[str, float]:
    tp, fp, fn, tn = c.true_positive, c.false_positive, c.false_negative, c.true_negative
    rows = tp + fp + fn + tn
    return {
        "accuracy": (tp + tn) / rows if rows else np.nan,
        "precision": tp / (tp + fp) if tp + fp else np.nan,
        "recall": tp / (tp + fn) if tp + fn else np.nan,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else np.nan,
    }


def _ranks(score: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    # ties share their mean rank, as in the Mann-Whitney form of the AUC
    return np.asarray(rankdata(score), dtype=np.float64)


def _expected_auc(score: np.ndarray, p: np.ndarray) -> float:
    """E[# (positive, negative) pairs ranked right, ties half] / E[# such pairs], over distinct rows."""
    order = np.argsort(score, kind="stable")
    s, q = score[order], p[order]
    neg = 1 - q
    below = np.concatenate([[0.0], np.cumsum(neg)])  # negative mass of rows before each position
    starts = np.searchsorted(s, s, side="left")
    ends = np.searchsorted(s, s, side="right")
    lower = below[starts]  # strictly lower score
    tied = below[ends] - below[starts] - neg  # same score, other rows
    pairs = q.sum() * neg.sum() - (q * neg).sum()
    if pairs <= 0:
        return float("nan")
    return float((q * (lower + 0.5 * tied)).sum() / pairs)


def _drawn_metrics(block: np.ndarray, said: np.ndarray, ranks: np.ndarray) -> dict[str, np.ndarray]:
    """The metrics of each row of ``block`` (drawn labels) against the fixed predictions and score ranks."""
    said_f = said.astype(np.float64)
    positives = block.sum(axis=1).astype(np.float64)
    tp = block.astype(np.float64) @ said_f
    fp = said_f.sum() - tp
    fn = positives - tp
    rows = said.size
    tn = rows - tp - fp - fn
    with np.errstate(divide="ignore", invalid="ignore"):
        negatives = rows - positives
        auc = (block.astype(np.float64) @ ranks - positives * (positives + 1) / 2) / (positives * negatives)
        return {
            "accuracy": (tp + tn) / rows,
            "precision": tp / (tp + fp),
            "recall": tp / (tp + fn),
            "f1": 2 * tp / (2 * tp + fp + fn),
            "roc_auc": np.where((positives > 0) & (negatives > 0), auc, np.nan),
        }


def _estimate(value: float, draws: np.ndarray, tail: float) -> Estimate:
    finite = draws[np.isfinite(draws)]
    if not np.isfinite(value) or finite.size < 2:
        return Estimate(float(value), float("nan"), float("nan"), float("nan"))
    low, high = np.quantile(finite, [tail, 1 - tail])
    return Estimate(float(value), float(finite.std(ddof=1)), float(low), float(high))


def _undefined() -> Estimate:
    return Estimate(float("nan"), float("nan"), float("nan"), float("nan"))
