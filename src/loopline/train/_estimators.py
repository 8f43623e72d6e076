"""The estimator registry: stable aliases mapped to an import path, default parameters and tasks.

Built-ins live in :mod:`loopline.train._builtin_estimators` and are registered on the
first lookup; other packages add theirs through the ``loopline.estimators`` entry
point group. Classes are imported only when an estimator is built, so optional
libraries (LightGBM) cost nothing until used.

Besides aliases, :func:`resolve_estimator` takes a scikit-learn estimator by import path
(``sklearn.ensemble:ExtraTreesClassifier`` or ``sklearn.ensemble.ExtraTreesClassifier``).
Only modules of :data:`IMPORTABLE_ROOTS` are imported this way: a pipeline file must not
be able to name ``os:system``.
"""

from __future__ import annotations

import importlib.util
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

IMPORTABLE_ROOTS: dict[str, str | None] = {"sklearn": None, "lightgbm": "lightgbm", "xgboost": "xgboost"}
"""Top-level packages an ``estimator:`` import path may name, with the loopline extra providing each."""


def resolve_estimator(name: str) -> EstimatorSpec:
    """The spec for ``name``: a registered alias, or a scikit-learn estimator's import path.

    An import path (``module:Class`` or ``module.Class``) must lie under a package of
    :data:`IMPORTABLE_ROOTS` and name a public class with ``fit`` and ``get_params``
    that is a classifier (tasks binary, multiclass) or a regressor (task regression).
    A class some alias is built on trains as that alias does (its ``fitter`` and
    ``encode_labels``), with the class's own defaults. Anything else raises
    ConfigError; unknown aliases get a did-you-mean.
    """
    if name in ESTIMATORS or (":" not in name and "." not in name):
        return ESTIMATORS.get(name)
    module_name, class_name = name.partition(":")[::2] if ":" in name else name.rpartition(".")[::2]
    _check_importable(name, module_name, class_name)
    cls = _import_class(name, module_name, class_name)
    tasks = _estimator_tasks(name, cls)
    accepted = _accepted_params(cls)
    fitter, encode_labels = _fit_traits(cls)
    return EstimatorSpec(
        name=name,
        classes=dict.fromkeys(tasks, f"{module_name}:{class_name}"),
        seed_param="random_state" if accepted is None or "random_state" in accepted else None,
        extra=IMPORTABLE_ROOTS[module_name.split(".")[0]],
        fitter=fitter,
        encode_labels=encode_labels,
    )


def _fit_traits(cls: Any) -> tuple[str | None, bool]:
    """The ``fitter`` and ``encode_labels`` of the alias built on ``cls`` (XGBClassifier needs encoded labels)."""
    for alias in ESTIMATORS.names():
        spec = ESTIMATORS.get(alias)
        for task, path in spec.classes.items():
            same_name = path.rpartition(":")[2] == cls.__name__
            same_root = path.split(".")[0].split(":")[0] == cls.__module__.split(".")[0]
            if (spec.fitter or spec.encode_labels) and same_name and same_root and spec.load(task) is cls:
                return spec.fitter, spec.encode_labels
    return None, False


def _check_importable(name: str, module_name: str, class_name: str) -> None:
    parts = [*module_name.split("."), class_name]
    if module_name.split(".")[0] not in IMPORTABLE_ROOTS or not all(p.isidentifier() for p in parts):
        raise ConfigError(
            f"estimator {name!r} is neither a registered alias nor an import path loopline may import.",
            key="estimator",
            hint=f"Import paths must lie under {', '.join(f'{r}.' for r in IMPORTABLE_ROOTS)} "
            f"(e.g. sklearn.ensemble:ExtraTreesClassifier); other estimators need a registered alias "
            f"(entry point group 'loopline.estimators'). Aliases: {', '.join(ESTIMATORS.names())}.",
        )
    if class_name.startswith("_"):
        raise ConfigError(
            f"estimator {name!r} names a private class.", key="estimator", hint="Name a public estimator class."
        )


def _import_class(name: str, module_name: str, class_name: str) -> Any:
    extra = IMPORTABLE_ROOTS[module_name.split(".")[0]]
    try:
        module = load(module_name)
    except ImportError:
        if extra is not None and importlib.util.find_spec(module_name.split(".")[0]) is None:
            raise MissingExtraError(module_name.split(".")[0], extra) from None
        raise ConfigError(
            f"estimator {name!r}: there is no module {module_name!r}.",
            key="estimator",
            hint="Check the import path, e.g. sklearn.ensemble:ExtraTreesClassifier.",
        ) from None
    cls = getattr(module, class_name, None)
    if cls is None:
        public = [n for n in dir(module) if not n.startswith("_") and isinstance(getattr(module, n), type)]
        raise ConfigError(
            f"estimator {name!r}: module {module_name!r} has no {class_name!r}.",
            key="estimator",
            hint=did_you_mean(class_name, public) or f"Classes of {module_name}: {', '.join(public[:30])}.",
        )
    return cls


def _estimator_tasks(name: str, cls: Any) -> tuple[str, ...]:
    base = load("sklearn.base")
    if not (isinstance(cls, type) and callable(getattr(cls, "fit", None)) and hasattr(cls, "get_params")):
        raise ConfigError(
            f"estimator {name!r} is not a scikit-learn estimator (a class with fit and get_params).",
            key="estimator",
            hint="Name an estimator class, e.g. sklearn.ensemble:ExtraTreesClassifier.",
        )
    if issubclass(cls, base.ClassifierMixin):
        return ("binary", "multiclass")
    if issubclass(cls, base.RegressorMixin):
        return ("regression",)
    raise ConfigError(
        f"estimator {name!r} is neither a classifier nor a regressor.",
        key="estimator",
        hint="Name a scikit-learn classifier or regressor (e.g. sklearn.linear_model:Ridge).",
    )


def _accepted_params(cls: Any) -> list[str] | None:
    signature = inspect.signature(cls)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        return None
    return sorted(signature.parameters)


def _alternatives(task: str) -> str:
    names = [n for n in ESTIMATORS.names() if task in ESTIMATORS.get(n).classes]
    return f"Estimators for {task}: {', '.join(names)}." if names else ""
