"""Trainers that each break one rule of the trainer contract (imported by module name: ``_broken_trainers``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from loopline.train import EstimatorSpec


class Helper:
    """A type of the trainer's own that its spec may or may not declare."""

    def __init__(self, centres: np.ndarray) -> None:
        self.centres = centres


class Sound(ClassifierMixin, BaseEstimator):
    """Nearest class centre with softmax probabilities: keeps every rule (the broken ones below derive from it)."""

    def __init__(self, temperature: float = 1.0, random_state: int | None = None) -> None:
        self.temperature = temperature
        self.random_state = random_state

    def fit(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> Sound:
        self.classes_ = np.unique(y)
        noise = self._rng().normal(scale=0.05, size=(len(self.classes_), x.shape[1]))
        self.centres_ = np.stack([x[y == c].mean(axis=0) for c in self.classes_]) + noise
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        centres = self._centres()
        logits = -((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2) / self.temperature
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return np.asarray(exp / exp.sum(axis=1, keepdims=True))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.classes_[self.predict_proba(x).argmax(axis=1)])

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(self.random_state)

    def _centres(self) -> np.ndarray:
        return np.asarray(self.centres_)


class Unnormalised(Sound):
    """predict_proba rows sum to 0.5."""

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return super().predict_proba(x) * 0.5


class Unseeded(Sound):
    """Ignores its seed: every fit draws other noise."""

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng()


class Scrambled(Sound):
    """classes_ in the reverse of predict_proba's column order."""

    def fit(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> Scrambled:
        super().fit(x, y, sample_weight)
        self.classes_ = self.classes_[::-1]
        return self


class Smuggler(Sound):
    """Keeps its centres in a Helper, a type its spec does not declare: the bundle cannot load back."""

    def fit(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> Smuggler:
        super().fit(x, y, sample_weight)
        self.helper_ = Helper(self.centres_)
        return self

    def _centres(self) -> np.ndarray:
        return np.asarray(self.helper_.centres)


class Forgetful(Sound):
    """Predicts from a module-level value, not from fitted state: predictions change after a load."""

    def fit(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> Forgetful:
        super().fit(x, y, sample_weight)
        _LAST_FIT["centres"] = self.centres_
        self.centres_ = np.zeros_like(self.centres_)
        _FITTED.add(id(self))
        return self

    def _centres(self) -> np.ndarray:
        return np.asarray(_LAST_FIT["centres"] if id(self) in _FITTED else self.centres_)


_LAST_FIT: dict[str, Any] = {}
_FITTED: set[int] = set()


class Rewriting(Sound):
    """Changes an argument in its constructor."""

    def __init__(self, temperature: float = 1.0, random_state: int | None = None) -> None:
        super().__init__(float(temperature) * 2, random_state)


class SeedDropping(Sound):
    """Drops the seed it is given."""

    def __init__(self, temperature: float = 1.0, random_state: int | None = None) -> None:
        super().__init__(temperature, None)


class Loose(Sound):
    """Takes ``**kwargs`` and cannot be built without its spec's defaults: loopline cannot list its parameters."""

    def __init__(self, temperature: float, random_state: int | None = None, **kwargs: Any) -> None:
        super().__init__(temperature, random_state)


def spec(cls: type, name: str | None = None, **kwargs: Any) -> EstimatorSpec:
    """A spec for one of this module's classes, for binary and multiclass."""
    path = f"_broken_trainers:{cls.__name__}"
    return EstimatorSpec(name or f"broken_{cls.__name__.lower()}", {"binary": path, "multiclass": path}, **kwargs)
