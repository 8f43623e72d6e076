"""Class weights for imbalanced targets: ``class_weight: balanced`` or ``{label: weight}``.

Estimators that take a ``class_weight`` parameter (scikit-learn's classifiers) get it
as such; the others, and those fitted on encoded labels (LightGBM, XGBoost), get per-row
``sample_weight`` in ``fit`` with the same values. "balanced" weighs each class
``n_rows / (n_classes * n_rows_of_class)``, as scikit-learn does. Labels missing from a mapping weigh 1.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np

from loopline.core.errors import ConfigError

ClassWeight = str | Mapping[Any, float]


def class_weights(
    class_weight: ClassWeight | None,
    estimator: str,
    cls: Any,
    task: str,
    y_train: np.ndarray,
    *,
    encoded: bool = False,
) -> tuple[dict[str, Any], np.ndarray | None]:
    """The estimator parameters to add and the sample weights to fit with, for ``class_weight``.

    ``encoded``: the estimator is fitted on class indices, so it gets sample weights.

    ConfigError for regression, an unknown label, a weight <= 0, or an estimator that
    takes neither ``class_weight`` nor ``sample_weight``.
    """
    if class_weight is None:
        return {}, None
    if task == "regression":
        raise ConfigError(
            "class_weight applies to classification, and this step trains a regressor.",
            key="class_weight",
            hint="Remove class_weight, or set task: binary / multiclass.",
        )
    labels = np.unique(y_train)
    weights = _label_weights(class_weight, labels.tolist())
    if "class_weight" in inspect.signature(cls).parameters and not encoded:
        return {"class_weight": "balanced" if class_weight == "balanced" else weights}, None
    if "sample_weight" not in inspect.signature(cls.fit).parameters:
        raise ConfigError(
            f"estimator {estimator!r} takes neither class_weight nor sample_weight.",
            key="class_weight",
            hint="Remove class_weight, or resample the training rows with a transform (e.g. undersample).",
        )
    if class_weight == "balanced":
        counts = {label: int(n) for label, n in zip(*np.unique(y_train, return_counts=True), strict=True)}
        weights = {label: len(y_train) / (len(labels) * counts[label]) for label in labels.tolist()}
    lookup = np.array([weights.get(label, 1.0) for label in labels.tolist()], dtype=np.float64)
    return {}, lookup[np.searchsorted(labels, y_train)]


def _label_weights(class_weight: ClassWeight, labels: list[Any]) -> dict[Any, float]:
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ConfigError(
                f"class_weight {class_weight!r} is not understood.",
                key="class_weight",
                hint="Use class_weight: balanced, or a mapping {label: weight}.",
            )
        return {}
    by_text = {str(label).lower(): label for label in labels}
    out: dict[Any, float] = {}
    for key, weight in class_weight.items():
        label = by_text.get(str(key).lower())
        if label is None:
            raise ConfigError(
                f"class_weight names {key!r}, which is not a class of the training rows.",
                key="class_weight",
                hint=f"Classes: {', '.join(map(str, labels[:20]))}.",
            )
        if not weight > 0:
            raise ConfigError(f"class_weight of {key!r} must be > 0.", key="class_weight", hint="Use e.g. 2.0.")
        out[label] = float(weight)
    return out
