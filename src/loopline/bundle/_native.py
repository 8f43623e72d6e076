"""Gradient-boosted models in their library's own file format instead of skops.

A LightGBM model is stored as its booster's text (``model_to_string``), an XGBoost
model as its booster's JSON (``save_raw("json")``): both are plain data read by the
library's own parser, with no Python objects to allowlist, and both outlive changes
to the scikit-learn wrapper classes. Training converts the fitted wrapper with
:func:`to_native`, so a bundle predicts the same before and after it is stored.
A :class:`NativeBooster` returns what the fitted wrapper returns, exactly for LightGBM;
XGBoost computes in float32, and its probabilities are widened to float64 and each row
divided by its sum, so they add up to 1 as scikit-learn's metrics check (within 1e-7 of
the wrapper's).

Both writers keep only the trees up to the best iteration when early stopping chose
one, which is what the fitted wrapper predicts with.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from loopline.bundle._lazy import load
from loopline.core.errors import DataError, MissingExtraError

NATIVE_FILES = {"lightgbm": "estimator.lightgbm.txt", "xgboost": "estimator.xgboost.json"}
"""Bundle member holding the model, per native format."""


class NativeBooster:
    """A loaded LightGBM or XGBoost booster behind the scikit-learn prediction methods.

    ``n_classes`` is 0 for regression. ``source_class`` is the wrapper class that was
    trained (``lightgbm.sklearn.LGBMClassifier``…), kept for the bundle's manifest.
    Classifiers' ``predict`` returns class indices: labels live in the bundle.
    """

    def __init__(self, native_format: str, booster: Any, n_classes: int, source_class: str) -> None:
        self.native_format = native_format
        self.booster = booster
        self.n_classes = n_classes
        self.source_class = source_class

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Regression values, or the most probable class index."""
        if self.n_classes:
            return np.asarray(self.predict_proba(features).argmax(axis=1))
        return self._raw(features)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities, one column per class (two for binary, as scikit-learn)."""
        raw = self._raw(features)
        if raw.ndim == 1:
            return np.vstack((1.0 - raw, raw)).transpose()
        if self.native_format == "xgboost":
            return np.asarray(raw / raw.sum(axis=1, keepdims=True))
        return raw

    def _raw(self, features: np.ndarray) -> np.ndarray:
        if self.native_format == "lightgbm":
            return np.asarray(self.booster.predict(features))
        return np.asarray(self.booster.inplace_predict(features, missing=np.nan), dtype=np.float64)


def native_format(estimator: Any) -> str | None:
    """ "lightgbm" or "xgboost" when ``estimator`` is stored natively, else None (skops)."""
    if isinstance(estimator, NativeBooster):
        return estimator.native_format
    module = type(estimator).__module__.split(".")[0]
    return module if module in NATIVE_FILES else None


def source_class(estimator: Any) -> str:
    """The trained wrapper's class path, also for a loaded :class:`NativeBooster`."""
    if isinstance(estimator, NativeBooster):
        return estimator.source_class
    return f"{type(estimator).__module__}.{type(estimator).__qualname__}"


def dump_native(estimator: Any) -> bytes:
    """The model file for a fitted LightGBM/XGBoost wrapper or a loaded :class:`NativeBooster`."""
    fmt = native_format(estimator)
    if isinstance(estimator, NativeBooster):
        booster = estimator.booster
        return _dump_lightgbm(booster) if fmt == "lightgbm" else bytes(booster.save_raw("json"))
    if fmt == "lightgbm":
        return _dump_lightgbm(estimator.booster_)
    booster = estimator.get_booster()
    best = booster.attr("best_iteration")
    if best is not None:
        booster = booster[: int(best) + 1]
    return bytes(booster.save_raw("json"))


def to_native(estimator: Any, n_classes: int) -> NativeBooster:
    """A fitted LightGBM/XGBoost wrapper as the :class:`NativeBooster` its bundle will load."""
    fmt = native_format(estimator)
    if fmt is None:
        raise TypeError(f"{type(estimator).__name__} has no native model format")
    return load_native(fmt, dump_native(estimator), n_classes=n_classes, class_path=source_class(estimator))


def load_native(fmt: str, data: bytes, *, n_classes: int, class_path: str) -> NativeBooster:
    """Rebuild a :class:`NativeBooster` from :func:`dump_native`'s bytes; DataError when damaged."""
    try:
        module = load(fmt)
    except ImportError:
        raise MissingExtraError(fmt, fmt) from None
    try:
        if fmt == "lightgbm":
            booster = module.Booster(model_str=data.decode())
        else:
            booster = module.Booster()
            booster.load_model(bytearray(data))
    except Exception as exc:  # the libraries raise their own error types on damaged input
        raise DataError(
            f"the {fmt} model in the bundle is damaged ({type(exc).__name__}: {exc}).",
            hint="Fetch the bundle again or re-train the model.",
        ) from None
    return NativeBooster(fmt, booster, n_classes, class_path)


def _dump_lightgbm(booster: Any) -> bytes:
    return str(booster.model_to_string()).encode()
