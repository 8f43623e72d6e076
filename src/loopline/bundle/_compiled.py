"""Compiled predictors: a fitted estimator evaluated with numpy alone, each row independent of its batch.

Two kinds, each with its own routing limit (:attr:`CompiledEstimator.max_rows`):

- gradient boosting, bit for bit as scikit-learn, used for small batches (speed);
- linear models, used for every batch (exactness across batch sizes), equal to scikit-learn
  to rounding only.

**Gradient boosting.** scikit-learn spends most of a one-row ``predict_proba`` on per-call work:
input validation, a Python loop over every tree, an OpenMP pool per tree. :func:`compile_estimator`
turns a fitted ``HistGradientBoostingClassifier``/``Regressor`` with numerical splits into flat node
arrays and walks all trees of a batch at once, one vectorised step per tree level.

Exactness, step by step against scikit-learn 1.x:

- the decision rule is ``_predictor.pyx``'s: NaN goes where ``missing_go_to_left`` says,
  otherwise ``x <= num_threshold`` goes left (so ``+inf`` goes left only on an ``inf``
  threshold, the "split on NaN" case);
- the raw score is ``0.0 + baseline`` plus each tree's leaf value in iteration order, as
  ``_raw_predict``/``_predict_iterations`` add them; ``np.cumsum`` accumulates sequentially
  (each partial sum is an output, so nothing is reassociated), unlike ``np.sum``'s pairwise sum;
- the raw scores are laid out in Fortran order as scikit-learn's, and go through the
  estimator's own loss object (``_loss.predict_proba``, ``_loss.link.inverse``).

One deliberate difference: scikit-learn's softmax sums each row's exponentials with
``np.sum(axis=1)``, which is sequential on a batch (Fortran order, the class axis strided) but
pairwise on a lone row (contiguous), so with 8 or more classes its one-row probabilities can
differ in the last bit from the same row's in a batch. The compiled predictor always answers
as in a batch (a single row is evaluated twice), so the service's one-record answer equals
offline batch scoring. Below 8 classes, and for binary and regression models, both agree anyway.

**Linear models** (``LogisticRegression``, binary and multinomial; ``Ridge``; ``LinearRegression``).
scikit-learn's decision ``X @ coef_.T + intercept_`` is a BLAS product whose summation order
depends on the number of rows and on a row's place in its block, so one record scored alone, in
a micro-batch of 5 or in a 100,000-row chunk can differ in the last bit. The compiled form sums
each row's products with ``np.einsum`` (``optimize=False``: numpy's own loop, no BLAS), in an
order fixed by the number of features alone, then adds ``intercept_``; the rest is
``predict_proba``'s math in this scikit-learn version: binary ``expit(d)`` stacked as
``[1 - p, p]``; multinomial softmax (minus the row maximum, ``exp``, divided by the row sum, here
summed class by class in order). Its numbers equal scikit-learn's to rounding (within about
1e-12 relative), not always bit for bit, and that is intended: the bundle routes every batch
size through it, so serving, batch scoring and evaluation share one implementation and agree
bit for bit with each other. Like scikit-learn, it refuses NaN and infinite inputs (ValueError).

Compilation checks the internals it reads and returns None for anything else (categorical
splits, a built-in preprocessor, multi-output regression, unknown attributes) — it never
guesses. As a last guard, on probe rows a compiled predictor must reproduce the estimator —
exactly for gradient boosting (rows made of the model's own thresholds, their neighbours, NaN
and infinities), within a rounding bound for linear models — and give each row alone what it
gives it in the batch, or it is discarded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

_HGB_MODULE = "sklearn.ensemble._hist_gradient_boosting.gradient_boosting"
_HGB_CLASSES = {"HistGradientBoostingClassifier", "HistGradientBoostingRegressor"}
_NODE_FIELDS = {"value", "feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf"}
_PROBE_ROWS = 64
_LINEAR_MODULES = {
    "LogisticRegression": "sklearn.linear_model._logistic",
    "Ridge": "sklearn.linear_model._ridge",
    "LinearRegression": "sklearn.linear_model._base",
}
_LINEAR_PROBE_RTOL = 1e-10
"""Linear probe check: allowed difference to scikit-learn, relative to the row's sum of ``|x_j * coef_j|``."""
COMPILED_MAX_ROWS = 64
"""Largest batch predicted through a compiled gradient boosting model; bigger ones go to the estimator.

Measured on a busy 2-core machine, HistGradientBoostingClassifier, 20 features, 150 trees of
up to 16 levels, predict_proba per call (single-threaded scikit-learn / compiled numpy):
1 row 1000 / 70 us, 8 rows 920 / 140 us, 32 rows 1260 / 350 us, 64 rows 1490 / 720 us,
128 rows 1390 / 1690 us, 256 rows 3000 / 2450 us, 512 rows 4770 / 8600 us. The crossover
sits between 64 and 256 rows; with scikit-learn's default OpenMP threads it is later still.
64 keeps the compiled path where it wins at least twofold. (Linear models have no limit.)
"""


class CompiledEstimator:
    """A fitted estimator's predictions with numpy alone.

    Guarantee: for a float64, C-contiguous matrix of ``n_features`` columns, each row's result
    of ``predict`` and ``predict_proba`` is independent of the batch it comes in (its size, the
    row's position), a lone row included. Gradient boosting returns the estimator's own numbers
    bit for bit (as within a batch of two or more: see the module docstring); linear models
    return them to rounding. Stateless after construction, so safe to share between threads.

    ``max_rows`` is the largest batch a caller should send (None: any); beyond it the estimator
    itself is faster and, for gradient boosting, equal.
    """

    n_features: int
    is_classifier: bool
    max_rows: int | None

    def predict(self, features: np.ndarray) -> np.ndarray:
        """What ``estimator.predict(features)`` returns."""
        raise NotImplementedError

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """What ``estimator.predict_proba(features)`` returns (classifiers only)."""
        raise NotImplementedError


class CompiledHistGradientBoosting(CompiledEstimator):
    """All trees of a HistGradientBoosting model in flat arrays (see the module docstring).

    Node ``i`` tests column ``feature[i]`` against ``threshold[i]``; its children are
    ``children[2 * i + 1]`` (left) and ``children[2 * i]`` (right), and a leaf is its own child,
    so after ``steps`` levels every row sits on a leaf of every tree. Tree ``t`` starts at
    ``roots[t]``; trees are in scikit-learn's order (iteration-major, class within iteration).
    """

    max_rows = COMPILED_MAX_ROWS

    def __init__(self, estimator: Any, forest: dict[str, Any]) -> None:
        self.n_features = int(estimator.n_features_in_)
        self._loss = estimator._loss
        self._classes = getattr(estimator, "classes_", None)
        self.is_classifier = self._classes is not None
        self._per_iteration = int(estimator.n_trees_per_iteration_)
        self._start = np.zeros((1, self._per_iteration)) + estimator._baseline_prediction
        self._feature: np.ndarray = forest["feature"]
        self._threshold: np.ndarray = forest["threshold"]
        self._missing_left: np.ndarray = forest["missing_left"]
        self._children: np.ndarray = forest["children"]
        self._value: np.ndarray = forest["value"]
        self._roots: np.ndarray = forest["roots"]
        self._steps: int = forest["steps"]

    def raw(self, features: np.ndarray) -> np.ndarray:
        """The raw scores, shape (rows, trees per iteration), Fortran order: ``_raw_predict``'s."""
        leaves = self._value.take(self._leaves(features))
        rows, iterations = features.shape[0], self._roots.size // self._per_iteration
        partial = np.empty((rows, iterations + 1, self._per_iteration))
        partial[:, 0, :] = self._start
        partial[:, 1:, :] = leaves.reshape(rows, iterations, self._per_iteration)
        np.cumsum(partial, axis=1, out=partial)  # sequential: ((b + v1) + v2) + ...
        return np.asfortranarray(partial[:, -1, :])

    def _leaves(self, features: np.ndarray) -> np.ndarray:
        """The leaf index of every (row, tree) pair."""
        flat = features.reshape(-1)
        row_start = (np.arange(features.shape[0], dtype=np.intp) * features.shape[1])[:, None]
        node = np.tile(self._roots, (features.shape[0], 1))
        has_nan = bool(np.isnan(flat).any())
        for _ in range(self._steps):
            value = flat.take(row_start + self._feature.take(node))
            go_left = value <= self._threshold.take(node)  # False for NaN
            if has_nan:
                go_left |= np.isnan(value) & self._missing_left.take(node)
            node = self._children.take(2 * node + go_left)
        return node

    def predict(self, features: np.ndarray) -> np.ndarray:
        raw = self.raw(features)
        if self._classes is None:
            return np.asarray(self._loss.link.inverse(raw.ravel()))
        if raw.shape[1] == 1:
            return np.asarray(self._classes[(raw.ravel() > 0).astype(int)])
        return np.asarray(self._classes[np.argmax(raw, axis=1)])

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        if self._classes is None:
            raise AttributeError("a regressor has no predict_proba")
        raw = self.raw(features)
        if raw.shape[0] > 1:
            return np.asarray(self._loss.predict_proba(raw))
        twice = np.asfortranarray(np.repeat(raw, 2, axis=0))  # a row of a batch, not a lone row (see the docstring)
        return np.asarray(self._loss.predict_proba(twice))[:1].copy()


class CompiledLinearModel(CompiledEstimator):
    """A linear model's decision summed in a fixed order per row (see the module docstring).

    ``coef`` is (outputs, features) and ``intercept`` (outputs,): one output for a binary
    classifier or a regressor, one per class for a multinomial classifier.
    """

    max_rows = None

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray | None, name: str) -> None:
        self.n_features = int(coef.shape[1])
        self.is_classifier = classes is not None
        self._coef = coef
        self._intercept = intercept
        self._classes = classes
        self._name = name

    def decision_function(self, features: np.ndarray) -> np.ndarray:
        """Shape (rows, outputs): each row's products summed by ``np.einsum`` (no BLAS), plus the intercept."""
        if not np.isfinite(features).all():
            raise ValueError(
                f"Input X contains NaN or infinity; {self._name} does not accept them. "
                "Impute missing values before the model (the preprocessor's impute_numeric, or an impute transform)."
            )
        decision: np.ndarray = np.einsum("ij,kj->ik", features, self._coef, optimize=False)
        decision += self._intercept
        return decision

    def predict(self, features: np.ndarray) -> np.ndarray:
        decision = self.decision_function(features)
        if self._classes is None:
            return decision.ravel()
        if decision.shape[1] == 1:
            return np.asarray(self._classes[(decision.ravel() > 0).astype(int)])
        return np.asarray(self._classes[np.argmax(decision, axis=1)])

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        if self._classes is None:
            raise AttributeError("a regressor has no predict_proba")
        decision = self.decision_function(features)
        if decision.shape[1] == 1:  # LogisticRegression._predict_proba_lr, binary
            positive = expit(decision.ravel())
            return np.stack([1 - positive, positive], axis=1)
        return _softmax(decision)


def _softmax(decision: np.ndarray) -> np.ndarray:
    """scikit-learn's ``softmax`` in place, with each row's sum taken class by class in order."""
    decision -= decision.max(axis=1, keepdims=True)
    np.exp(decision, out=decision)
    total = decision[:, 0].copy()
    for column in range(1, decision.shape[1]):
        total += decision[:, column]
    decision /= total[:, None]
    return decision


def compile_estimator(estimator: Any) -> CompiledEstimator | None:
    """A :class:`CompiledEstimator` for ``estimator``, or None when it cannot be compiled.

    Compiles fitted ``HistGradientBoostingClassifier``/``Regressor`` models whose splits are
    all numerical (equal bit for bit), and fitted ``LogisticRegression``, ``Ridge`` and
    ``LinearRegression`` models with one target (equal to rounding, exact across batch sizes);
    everything else (other estimators, categorical splits, internals this code does not know)
    gives None, and the caller keeps using the estimator itself.
    """
    linear = _compile_linear(estimator)
    if linear is not None:
        return linear if _linear_reproduces(linear, estimator) else None
    forest = _hist_gradient_boosting_forest(estimator)
    if forest is None:
        return None
    compiled = CompiledHistGradientBoosting(estimator, forest)
    return compiled if _reproduces(compiled, estimator, forest["probe_values"]) else None


def _hist_gradient_boosting_forest(estimator: Any) -> dict[str, Any] | None:
    """The flat node arrays of a numerical-only HistGradientBoosting model, or None."""
    cls = type(estimator)
    if cls.__module__ != _HGB_MODULE or cls.__name__ not in _HGB_CLASSES:
        return None
    if not _known_hgb_state(estimator):
        return None
    trees = [predictor.nodes for iteration in estimator._predictors for predictor in iteration]
    if not trees or any(not _numerical_tree(nodes) for nodes in trees):
        return None
    return _flatten(trees, int(estimator.n_features_in_))


def _known_hgb_state(estimator: Any) -> bool:
    """The fitted attributes the compiled predictor reads are there and shaped as expected."""
    try:
        per_iteration = int(estimator.n_trees_per_iteration_)
        baseline = np.asarray(estimator._baseline_prediction)
        predictors = estimator._predictors
        loss = estimator._loss
        int(estimator.n_features_in_)
    except (AttributeError, TypeError, ValueError):
        return False
    if getattr(estimator, "_preprocessor", None) is not None or getattr(estimator, "_in_fit", False):
        return False
    if baseline.dtype != np.float64 or baseline.shape != (1, per_iteration):
        return False
    if any(len(iteration) != per_iteration for iteration in predictors):
        return False
    if hasattr(estimator, "classes_"):
        return callable(getattr(loss, "predict_proba", None))
    return callable(getattr(getattr(loss, "link", None), "inverse", None))


def _numerical_tree(nodes: Any) -> bool:
    """A structured node array with the fields read here and no categorical split."""
    if not isinstance(nodes, np.ndarray) or nodes.dtype.names is None or nodes.size == 0:
        return False
    if not set(nodes.dtype.names) >= _NODE_FIELDS:
        return False
    return "is_categorical" in nodes.dtype.names and not nodes["is_categorical"].any()


def _flatten(trees: list[np.ndarray], n_features: int) -> dict[str, Any] | None:
    sizes = np.array([nodes.size for nodes in trees], dtype=np.intp)
    roots = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.intp)
    nodes = np.concatenate([np.asarray(t[sorted(_NODE_FIELDS)]) for t in trees])
    shift = np.repeat(roots, sizes)
    leaf = nodes["is_leaf"].astype(bool)
    own = np.arange(nodes.size, dtype=np.intp)
    left = np.where(leaf, own, nodes["left"].astype(np.intp) + shift)
    right = np.where(leaf, own, nodes["right"].astype(np.intp) + shift)
    feature = np.where(leaf, 0, nodes["feature_idx"]).astype(np.intp)
    ends = np.repeat(roots + sizes, sizes)
    inside = (left >= shift) & (left < ends) & (right >= shift) & (right < ends)
    if not inside.all() or (feature < 0).any() or (feature >= n_features).any():
        return None
    children = np.stack((right, left), axis=1).reshape(-1)
    steps = _levels(roots, children, leaf)
    if steps is None:
        return None
    threshold = np.ascontiguousarray(nodes["num_threshold"], dtype=np.float64)
    return {
        "feature": feature,
        "threshold": threshold,
        "missing_left": nodes["missing_go_to_left"].astype(bool),
        "children": children,
        "value": np.ascontiguousarray(nodes["value"], dtype=np.float64),
        "roots": roots,
        "steps": steps,
        "probe_values": _split_values(feature[~leaf], threshold[~leaf], n_features),
    }


def _levels(roots: np.ndarray, children: np.ndarray, leaf: np.ndarray) -> int | None:
    """How many levels to walk until every root reaches a leaf; None for a cycle."""
    frontier, steps = roots, 0
    while True:
        frontier = frontier[~leaf[frontier]]
        if frontier.size == 0:
            return steps
        steps += 1
        if steps > leaf.size:
            return None
        frontier = np.unique(children[np.concatenate((2 * frontier, 2 * frontier + 1))])


def _split_values(feature: np.ndarray, threshold: np.ndarray, n_features: int) -> list[np.ndarray]:
    """Per column: its thresholds, their float neighbours, NaN and the infinities."""
    special = np.array([np.nan, np.inf, -np.inf, 0.0])
    out = []
    for column in range(n_features):
        at = threshold[feature == column]
        out.append(np.concatenate((special, at, np.nextafter(at, np.inf), np.nextafter(at, -np.inf))))
    return out


def _reproduces(compiled: CompiledEstimator, estimator: Any, values: list[np.ndarray]) -> bool:
    """Whether ``compiled`` gives the estimator's exact batch outputs on probe rows, in a batch and alone."""
    rng = np.random.default_rng(0)
    probe = np.ascontiguousarray(np.column_stack([rng.choice(v, _PROBE_ROWS) for v in values]))
    method = "predict_proba" if compiled.is_classifier else "predict"
    expected = getattr(estimator, method)(probe)
    if not np.array_equal(getattr(compiled, method)(probe), expected):
        return False
    return all(np.array_equal(getattr(compiled, method)(probe[i : i + 1]), expected[i : i + 1]) for i in range(2))


def _compile_linear(estimator: Any) -> CompiledLinearModel | None:
    """The compiled form of a fitted single-target linear model of a known class, or None."""
    cls = type(estimator)
    if _LINEAR_MODULES.get(cls.__name__) != cls.__module__:
        return None
    try:
        coef = np.asarray(estimator.coef_)
        intercept = np.asarray(estimator.intercept_)
        n_features = int(estimator.n_features_in_)
    except (AttributeError, TypeError, ValueError):
        return None
    classes = getattr(estimator, "classes_", None) if cls.__name__ == "LogisticRegression" else None
    if classes is not None:
        if not isinstance(classes, np.ndarray) or classes.ndim != 1 or classes.size < 2:
            return None
        outputs = 1 if classes.size == 2 else classes.size
    elif cls.__name__ == "LogisticRegression" or coef.ndim != 1:
        return None  # an unfitted classifier, or a multi-output regressor
    else:
        outputs, coef = 1, coef.reshape(1, -1)
    if coef.dtype != np.float64 or coef.shape != (outputs, n_features) or intercept.dtype.kind != "f":
        return None
    if intercept.shape not in ((), (outputs,)):
        return None
    intercept = np.ascontiguousarray(np.broadcast_to(intercept, (outputs,)), dtype=np.float64)
    return CompiledLinearModel(np.ascontiguousarray(coef), intercept, classes, cls.__name__)


def _linear_reproduces(compiled: CompiledLinearModel, estimator: Any) -> bool:
    """Whether ``compiled`` is within rounding of the estimator on probe rows, and gives each row alone
    exactly what it gives it in the batch.

    The bound per row is ``_LINEAR_PROBE_RTOL`` times the sum of ``|x_j * coef_j|`` plus ``|intercept|``
    (what rounding scales with, whatever the cancellation), with a floor of 1e-12 for probabilities
    near 0 or 1; expit and softmax do not enlarge a decision's error.
    """
    rng = np.random.default_rng(0)
    probe = np.ascontiguousarray(rng.normal(scale=3.0, size=(_PROBE_ROWS, compiled.n_features)))
    scale = np.abs(probe) @ np.abs(compiled._coef).T + np.abs(compiled._intercept)
    bound = _LINEAR_PROBE_RTOL * scale.max(axis=1, keepdims=True) + 1e-12
    method = "predict_proba" if compiled.is_classifier else "predict"
    ours = getattr(compiled, method)(probe)
    theirs = np.asarray(getattr(estimator, method)(probe), dtype=np.float64)
    if ours.shape != theirs.shape or not np.all(np.abs(ours - theirs).reshape(_PROBE_ROWS, -1) <= bound):
        return False
    if compiled.is_classifier and not np.array_equal(compiled.predict(probe), estimator.predict(probe)):
        return False
    return all(np.array_equal(getattr(compiled, method)(probe[i : i + 1]), ours[i : i + 1]) for i in range(_PROBE_ROWS))
