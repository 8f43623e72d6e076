"""A user's own estimator, as a plugin author writes it: a class, a helper type it holds, and its spec.

Imported by module name (``_user_trainer``) in the tests and in the subprocesses they start.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from loopline.train import EstimatorSpec


class Prototypes:
    """The fitted class centres: a type of the plugin's own, which skops must be allowed to load."""

    def __init__(self, centres: np.ndarray) -> None:
        self.centres = centres


class Other:
    """A type of the same module that no spec declares."""

    def __init__(self, value: Any = None) -> None:
        self.value = value


class Centroid(ClassifierMixin, BaseEstimator):
    """Nearest class centre with softmax probabilities; ``random_state`` drives a seeded jitter of the centres."""

    def __init__(self, temperature: float = 1.0, jitter: float = 0.0, random_state: int | None = None) -> None:
        self.temperature = temperature
        self.jitter = jitter
        self.random_state = random_state

    def fit(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> Centroid:
        self.classes_ = np.unique(y)
        rng = np.random.default_rng(self.random_state)
        centres = np.stack([x[y == c].mean(axis=0) for c in self.classes_])
        self.prototypes_ = Prototypes(centres + rng.normal(scale=self.jitter, size=centres.shape))
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        distance = ((x[:, None, :] - self.prototypes_.centres[None, :, :]) ** 2).sum(axis=2)
        logits = -distance / self.temperature
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return np.asarray(exp / exp.sum(axis=1, keepdims=True))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.classes_[self.predict_proba(x).argmax(axis=1)])


class OtherClassifier(Centroid):
    """A classifier of the same module that no spec names."""


SPEC = EstimatorSpec(
    "user_centroid",
    {"binary": "_user_trainer:Centroid", "multiclass": "_user_trainer:Centroid"},
    {"temperature": 1.0},
    trusted_types=("_user_trainer:Prototypes",),
)
"""The spec a plugin registers: ``ESTIMATORS.register(SPEC.name, SPEC)`` or a ``loopline.estimators`` entry point."""
