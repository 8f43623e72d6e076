"""Performance before the labels arrive, for a multi-class classifier: the one-vs-rest form of
:mod:`loopline.monitor._estimation`.

Each class ``c`` is a binary problem of its own: its probability column ``p_c``, calibrated on the reference by
an isotonic regression to the observed rate of ``c`` (only when that lowers the held-out Brier score, as for a
binary model), then the calibrated rows renormalised to sum to 1. A row is of class ``c`` with its calibrated
probability ``q_c``, so:

- accuracy: the mean of ``q`` at the served class of each row;
- ``f1_macro``: per class, the expected true positives (``q_c`` summed over the rows served as ``c``), false
  positives (``1 - q_c`` over the same rows) and false negatives (``q_c`` over the others), their F1 (0 when
  undefined, as scikit-learn's ``zero_division=0``), averaged over the classes;
- ``roc_auc``: per class, the expected one-vs-rest AUC of the served ``p_c`` with each row positive with
  probability ``q_c`` (the binary estimator's formula), averaged over the classes that can have both outcomes
  (the realised metric's ``multi_class="ovr"``, macro average).

The band: label sets drawn from the calibrated rows, each metric recomputed, as for a binary model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from loopline.core.errors import DataError

MULTICLASS_METRICS = ("accuracy", "f1_macro", "roc_auc")
_CELLS_PER_BLOCK = 2_000_000  # draws x rows x classes simulated at once (bytes of the drawn block: 8x that)


def probability_matrix(values: Any, what: str) -> np.ndarray:
    """``values`` as a (rows, classes) float matrix of probabilities in [0, 1]; DataError otherwise."""
    matrix = np.asarray(values, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] < 3:
        raise DataError(
            f"the {what} probabilities have shape {matrix.shape}; a multi-class estimate needs one column per class "
            "(3 or more).",
            hint="Pass the served probabilities of every class, in the model's class order.",
        )
    bad = ~np.isfinite(matrix) | (matrix < 0) | (matrix > 1)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{what} probability of class {column} in row {row} is {float(matrix[row, column])}; probabilities must "
            "lie in [0, 1].",
            hint="Pass the served probabilities (not logits or scores).",
        )
    return matrix


def class_indices(values: Any, rows: int, classes: int, *, what: str = "label") -> np.ndarray:
    """``values`` as class indices in [0, classes); DataError for a wrong count or an index out of range."""
    array = np.asarray(values).ravel()
    if array.size != rows:
        raise DataError(f"{array.size} {what}s for {rows} probability rows.", hint="Pass one per row.")
    if array.size and (not np.issubdtype(array.dtype, np.integer) or array.min() < 0 or array.max() >= classes):
        raise DataError(
            f"{what}s must be class indices in [0, {classes}).",
            hint="Map each class to its position in the model's classes (fit_estimator does it from the labels).",
        )
    return array.astype(np.int64)


def renormalised(q: np.ndarray) -> np.ndarray:
    """Rows of ``q`` scaled to sum to 1 (a row of zeros is left as is)."""
    total = q.sum(axis=1, keepdims=True)
    scaled: np.ndarray = np.divide(q, total, out=q.copy(), where=total > 0)
    return scaled


def expected_metrics(score: np.ndarray, q: np.ndarray, said: np.ndarray) -> dict[str, float]:
    """The expected accuracy, f1_macro and roc_auc of served ``score`` (rows x classes) and served classes
    ``said``, the rows' classes drawn from the calibrated ``q``."""
    from loopline.monitor._estimation import _expected_auc

    rows, k = q.shape
    if not rows:
        return dict.fromkeys(MULTICLASS_METRICS, float("nan"))
    served = np.zeros_like(q, dtype=bool)
    served[np.arange(rows), said] = True
    tp = (q * served).sum(axis=0)
    fp = served.sum(axis=0) - tp
    fn = (q * ~served).sum(axis=0)
    denominator = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denominator, out=np.zeros(k), where=denominator > 0)
    aucs = np.array([_expected_auc(score[:, c], q[:, c]) for c in range(k)])
    return {
        "accuracy": float(q[np.arange(rows), said].mean()),
        "f1_macro": float(f1.mean()),
        "roc_auc": float(np.nanmean(aucs)) if np.isfinite(aucs).any() else float("nan"),
    }


def drawn_metrics(
    rng: np.random.Generator, draws: int, score: np.ndarray, q: np.ndarray, said: np.ndarray
) -> dict[str, np.ndarray]:
    """Each metric on ``draws`` label sets drawn from the rows of ``q`` (NaN where undefined in a draw)."""
    from loopline.monitor._estimation import _ranks

    rows, k = q.shape
    ranks = np.column_stack([_ranks(score[:, c]) for c in range(k)]) if rows else np.zeros((0, k))
    cumulative = np.cumsum(q, axis=1)
    cumulative[:, -1] = np.inf  # rounding: every draw lands in a class
    served = np.zeros((rows, k))
    served[np.arange(rows), said] = 1.0
    block = max(1, _CELLS_PER_BLOCK // max(rows * k, 1))
    out: dict[str, list[np.ndarray]] = {name: [] for name in MULTICLASS_METRICS}
    for start in range(0, draws, block):
        size = min(block, draws - start)
        drawn = (rng.random((size, rows, 1)) > cumulative[None, :, :]).sum(axis=2)  # (size, rows) class indices
        for name, values in _metrics_of(drawn, said, served, ranks).items():
            out[name].append(values)
    return {name: np.concatenate(parts) for name, parts in out.items()}


def _metrics_of(drawn: np.ndarray, said: np.ndarray, served: np.ndarray, ranks: np.ndarray) -> dict[str, np.ndarray]:
    size, rows = drawn.shape
    k = served.shape[1]
    onehot = (drawn[:, :, None] == np.arange(k)).astype(np.float64)  # (size, rows, k)
    positives = onehot.sum(axis=1)  # (size, k)
    tp = np.einsum("srk,rk->sk", onehot, served)
    fp = served.sum(axis=0)[None, :] - tp
    fn = positives - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        negatives = rows - positives
        auc = (np.einsum("srk,rk->sk", onehot, ranks) - positives * (positives + 1) / 2) / (positives * negatives)
        auc = np.where((positives > 0) & (negatives > 0), auc, np.nan)
        defined = np.isfinite(auc).any(axis=1)
        macro_auc = np.full(size, np.nan)
        macro_auc[defined] = np.nanmean(auc[defined], axis=1)
    return {
        "accuracy": (drawn == said[None, :]).mean(axis=1),
        "f1_macro": f1.mean(axis=1),
        "roc_auc": macro_auc,
    }
