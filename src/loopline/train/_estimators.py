"""The estimator registry: stable aliases mapped to an import path, default parameters and tasks.

Built-ins live in :mod:`loopline.train._builtin_estimators` and are registered on the
first lookup; other packages add theirs through the ``loopline.estimators`` entry
point group. Classes are imported only when an estimator is built, so optional
libraries (LightGBM) cost nothing until used.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from loopline.core.errors import ConfigError, MissingExtraError, did_you_mean
from loopline.core.registry import Registry
from loopline.train._lazy import load


@dataclass(frozen=True)
class EstimatorSpec:
    """How to build one estimator alias.

    ``classes`` maps each supported task ("binary", "multiclass", "regression") to a
    ``"module:Class"`` path. ``seed_param`` receives the training seed unless the user
    set it. ``extra`` names the loopline extra that provides the module, if optional.
    ``fitter`` names how it trains round by round, watched on the validation split
    (one of :data:`loopline.train._iterative.FITTERS`; None: a single ``fit``).
    ``encode_labels`` fits classifiers on class indices 0..k-1 (XGBoost needs them);
    the bundle keeps the labels.
    """

    name: str
    classes: dict[str, str]
    defaults: dict[str, Any] = field(default_factory=dict)
    seed_param: str | None = "random_state"
    extra: str | None = None
    fitter: str | None = None
    encode_labels: bool = False

    @property
    def tasks(self) -> list[str]:
        """The tasks this estimator supports."""
        return sorted(self.classes)

    def resolve_params(self, task: str, params: dict[str, Any] | None = None, seed: int = 0) -> dict[str, Any]:
        """Defaults, then ``params``, then the seed; unknown parameter names raise ConfigError."""
        cls = self.load(task)
        merged = {**self.defaults, **(params or {})}
        if self.seed_param and self.seed_param not in merged:
            merged[self.seed_param] = seed
        accepted = _accepted_params(cls)
        for key in merged:
            if accepted is not None and key not in accepted:
                hint = did_you_mean(key, accepted) or f"Parameters of {cls.__name__}: {', '.join(accepted)}."
                raise ConfigError(f"estimator {self.name!r} has no parameter {key!r}.", key=key, hint=hint)
        return merged

    def build(self, task: str, params: dict[str, Any] | None = None, seed: int = 0) -> Any:
        """A new, unfitted estimator for ``task``."""
        return self.load(task)(**self.resolve_params(task, params, seed))

    def load(self, task: str) -> Any:
        """The estimator class for ``task`` (imported now)."""
        if task not in self.classes:
            raise ConfigError(
                f"estimator {self.name!r} does not support task {task!r}.",
                key="estimator",
                hint=f"It supports: {', '.join(self.tasks)}. {_alternatives(task)}",
            )
        module_name, _, class_name = self.classes[task].partition(":")
        try:
            module = load(module_name)
        except ImportError:
            if self.extra is None:
                raise
            raise MissingExtraError(module_name.split(".")[0], self.extra) from None
        return getattr(module, class_name)


ESTIMATORS: Registry[EstimatorSpec] = Registry(
    "estimator", "loopline.estimators", ("loopline.train._builtin_estimators",)
)
"""Estimator aliases usable in a pipeline's ``estimator:`` key."""


def _accepted_params(cls: Any) -> list[str] | None:
    signature = inspect.signature(cls)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        return None
    return sorted(signature.parameters)


def _alternatives(task: str) -> str:
    names = [n for n in ESTIMATORS.names() if task in ESTIMATORS.get(n).classes]
    return f"Estimators for {task}: {', '.join(names)}." if names else ""
