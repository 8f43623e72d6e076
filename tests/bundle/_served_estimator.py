"""A user's estimator whose package imports only ``loopline.bundle``: a service loading it stays off the trainer.

Imported by module name (``_served_estimator``) in the tests and in the service processes they start, where a
``loopline.estimators`` entry point names :data:`SPEC`.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from loopline.bundle import EstimatorSpec


class Centres:
    """The fitted class centres: a type of the plugin's own, declared in ``trusted_types``."""

    def __init__(self, points: np.ndarray) -> None:
        self.points = points


class Nearest(ClassifierMixin, BaseEstimator):
    """Nearest class centre, with softmax probabilities over the negative squared distances."""

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = temperature

    def fit(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> Nearest:
        self.classes_ = np.unique(y)
        self.centres_ = Centres(np.stack([x[y == c].mean(axis=0) for c in self.classes_]))
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        logits = -((x[:, None, :] - self.centres_.points[None, :, :]) ** 2).sum(axis=2) / self.temperature
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return np.asarray(exp / exp.sum(axis=1, keepdims=True))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.classes_[self.predict_proba(x).argmax(axis=1)])


SPEC = EstimatorSpec(
    "served_nearest",
    {"binary": "_served_estimator:Nearest", "multiclass": "_served_estimator:Nearest"},
    seed_param=None,
    trusted_types=("_served_estimator:Centres",),
)
"""What the plugin's ``loopline.estimators`` entry point names."""
