"""The estimator registry: stable aliases mapped to an import path, default parameters and tasks.

Built-ins live in :mod:`loopline.bundle._builtin_estimators` and are registered on the
first lookup; other packages add theirs through the ``loopline.estimators`` entry
point group. Classes are imported only when an estimator is built, so optional
libraries (LightGBM) cost nothing until used.

Besides aliases, :func:`resolve_estimator` takes a scikit-learn estimator by import path
(``sklearn.ensemble:ExtraTreesClassifier`` or ``sklearn.ensemble.ExtraTreesClassifier``).
Only modules of :data:`IMPORTABLE_ROOTS` are imported this way: a pipeline file must not
be able to name ``os:system``.

A user's own estimator plugs in as a spec registered in code (``ESTIMATORS.register`` or the
entry point): its classes, plus the ``trusted_types`` it declares, are what its bundles may
hold (see :func:`declared_types` and :mod:`loopline.bundle._safety`).

The registry lives with the bundle, not the trainer, because it is also the list of what a stored bundle may
hold: a serving process reads it (built-ins and ``loopline.estimators`` entry points) to load a user's bundle
without importing :mod:`loopline.train`. Building an estimator is declared here; fitting it is the trainer's.
A plugin imports :class:`EstimatorSpec` from :mod:`loopline.bundle` for the same reason (``loopline.train``
re-exports it).
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from loopline.bundle._lazy import load
from loopline.core.errors import ConfigError, MissingExtraError, did_you_mean
from loopline.core.registry import Registry


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

    ``trusted_types`` (``"module:Class"``) are the types besides ``classes`` that a fitted
    estimator holds and skops must load (a helper object, a fitted inner model). A bundle
    loads them only while this spec is registered in the running process: the declaration
    is code the user installed, never a list read from the artifact. Wrong names raise
    ConfigError when the estimator is built.
    ``native_params`` lists, for a class taking ``**kwargs`` (LightGBM), the parameter
    names it accepts beyond its ``get_params()``; anything else is refused as unknown.
    """

    name: str
    classes: dict[str, str]
    defaults: dict[str, Any] = field(default_factory=dict)
    seed_param: str | None = "random_state"
    extra: str | None = None
    fitter: str | None = None
    encode_labels: bool = False
    trusted_types: tuple[str, ...] = ()
    native_params: Callable[[], Collection[str]] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.trusted_types, str) or not all(isinstance(t, str) for t in self.trusted_types):
            raise ConfigError(
                f"estimator {self.name!r}: trusted_types must be a tuple of 'module:Class' strings.",
                key="trusted_types",
                hint="Write e.g. trusted_types=('mypackage.model:Helper',).",
            )
        object.__setattr__(self, "trusted_types", tuple(self.trusted_types))
        for path in self.trusted_types:
            if _split_path(path) is None:
                module_name, _, class_name = path.rpartition(".")
                fixed = _split_path(f"{module_name}:{class_name}") if ":" not in path else None
                raise ConfigError(
                    f"estimator {self.name!r}: trusted type {path!r} is not a 'module:Class' name.",
                    key="trusted_types",
                    hint=f"Write it as {module_name + ':' + class_name!r}."
                    if fixed
                    else "Name each type by its import path with a colon before the class, "
                    "e.g. 'mypackage.model:Helper'.",
                )

    @property
    def tasks(self) -> list[str]:
        """The tasks this estimator supports."""
        return sorted(self.classes)

    def resolve_params(self, task: str, params: dict[str, Any] | None = None, seed: int = 0) -> dict[str, Any]:
        """Defaults, then ``params``, then the seed; unknown parameter names raise ConfigError.

        Also imports the declared ``trusted_types`` (ConfigError when one is wrong), so a
        spec whose bundles could not load back fails before it trains.
        """
        cls = self.load(task)
        self.trusted_classes()
        merged = {**self.defaults, **(params or {})}
        if self.seed_param and self.seed_param not in merged:
            merged[self.seed_param] = seed
        self._check_names(merged, _accepted_params(cls, self.native_params), key_prefix="")
        return merged

    def check_params(self, params: Collection[str], task: str = "auto") -> None:
        """ConfigError (key ``params.NAME``, with a did-you-mean) for a name no class of ``task`` takes.

        The check a pipeline runs when it loads: ``auto`` accepts a name any of the spec's classes takes
        (the exact task is known at training, where :meth:`resolve_params` checks again). Classes whose
        optional library is not installed are not checked here; training names the extra.
        """
        accepted: set[str] = set()
        for each in self.tasks if task == "auto" else [task]:
            try:
                cls = self.load(each)
            except MissingExtraError:
                return
            names = _accepted_params(cls, self.native_params)
            if names is None:
                return
            accepted.update(names)
        self._check_names(params, sorted(accepted), key_prefix="params.")

    def _check_names(self, params: Collection[str], accepted: list[str] | None, *, key_prefix: str) -> None:
        for key in params:
            if accepted is not None and key not in accepted:
                hint = did_you_mean(key, accepted) or f"Parameters of {self.name}: {', '.join(accepted)}."
                raise ConfigError(
                    f"estimator {self.name!r} has no parameter {key!r}.", key=f"{key_prefix}{key}", hint=hint
                )

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

    def trusted_classes(self) -> list[type]:
        """The declared ``trusted_types``, imported; ConfigError names one that is not an importable class."""
        found = []
        for path in self.trusted_types:
            module_name, class_name = _split_path(path) or ("", "")
            try:
                cls = getattr(load(module_name), class_name, None)
            except ImportError as exc:
                raise ConfigError(
                    f"estimator {self.name!r}: trusted type {path!r} cannot be imported ({exc}).",
                    key="trusted_types",
                    hint=f"Check the module name, and that the package providing {module_name!r} is installed.",
                ) from None
            if not isinstance(cls, type):
                raise ConfigError(
                    f"estimator {self.name!r}: trusted type {path!r}: module {module_name!r} has no class "
                    f"{class_name!r}.",
                    key="trusted_types",
                    hint="Name a class defined or imported in that module, as 'module:Class'.",
                )
            found.append(cls)
        return found

    def type_names(self, *, imported: bool = False) -> tuple[set[str], set[str]]:
        """``(estimators, inner)``: the type names (``module.Class``, as skops writes them) it declares.

        ``estimators`` are the classes of :attr:`classes` (what a bundle's top-level object
        may be); ``inner`` adds :attr:`trusted_types`. By default the names as written; with
        ``imported`` each class's own path after importing it (a class re-exported from
        ``pkg`` is defined in ``pkg._impl``); paths that do not import are left out.
        """
        estimators = {name for path in self.classes.values() if (name := _type_name(path, imported))}
        trusted = {name for path in self.trusted_types if (name := _type_name(path, imported))}
        return estimators, estimators | trusted


ESTIMATORS: Registry[EstimatorSpec] = Registry(
    "estimator", "loopline.estimators", ("loopline.bundle._builtin_estimators",)
)
"""Estimator aliases usable in a pipeline's ``estimator:`` key."""

IMPORTABLE_ROOTS: dict[str, str | None] = {"sklearn": None, "lightgbm": "lightgbm", "xgboost": "xgboost"}
"""Top-level packages an ``estimator:`` import path may name, with the loopline extra providing each."""


def declared_types(*, estimators_only: bool = False, imported: bool = False) -> frozenset[str]:
    """The type names the specs registered in this process declare (see :meth:`EstimatorSpec.type_names`).

    ``estimators_only``: the specs' estimator classes alone. ``imported``: the classes' own
    paths, importing the declared modules; specs whose classes and trusted types all lie
    under :data:`IMPORTABLE_ROOTS` are skipped there, as loopline's own rules already
    cover those libraries (and importing LightGBM to load a scikit-learn model is slow).
    """
    names: set[str] = set()
    for alias in ESTIMATORS.names():
        spec = ESTIMATORS.get(alias)
        if imported and all(_root(p) in IMPORTABLE_ROOTS for p in (*spec.classes.values(), *spec.trusted_types)):
            continue
        estimators, inner = spec.type_names(imported=imported)
        names |= estimators if estimators_only else inner
    return frozenset(names)


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
        try:
            return ESTIMATORS.get(name)
        except ConfigError as exc:
            raise ConfigError(f"unknown estimator {name!r}.", key="estimator", hint=exc.hint) from None
    module_name, class_name = name.partition(":")[::2] if ":" in name else name.rpartition(".")[::2]
    _check_importable(name, module_name, class_name)
    cls = _import_class(name, module_name, class_name)
    tasks = _estimator_tasks(name, cls)
    alias = _alias_of(cls)
    native_params = alias.native_params if alias is not None else None
    accepted = _accepted_params(cls, native_params)
    return EstimatorSpec(
        name=name,
        classes=dict.fromkeys(tasks, f"{module_name}:{class_name}"),
        seed_param="random_state" if accepted is None or "random_state" in accepted else None,
        extra=IMPORTABLE_ROOTS[module_name.split(".")[0]],
        fitter=alias.fitter if alias is not None else None,
        encode_labels=alias.encode_labels if alias is not None else False,
        native_params=native_params,
    )


def _alias_of(cls: Any) -> EstimatorSpec | None:
    """The alias built on ``cls`` that trains it specially (XGBClassifier needs encoded labels), if any.

    Its ``fitter``, ``encode_labels`` and ``native_params`` carry over to the import path.
    """
    for alias in ESTIMATORS.names():
        spec = ESTIMATORS.get(alias)
        special = spec.fitter or spec.encode_labels or spec.native_params
        for task, path in spec.classes.items():
            same_name = path.rpartition(":")[2] == cls.__name__
            same_root = path.split(".")[0].split(":")[0] == cls.__module__.split(".")[0]
            if special and same_name and same_root and spec.load(task) is cls:
                return spec
    return None


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


@functools.lru_cache(maxsize=256)
def _accepted_params(cls: Any, native_params: Callable[[], Collection[str]] | None = None) -> list[str] | None:
    """The parameter names ``cls`` takes; for ``**kwargs``, its ``get_params()`` and ``native_params``.

    None (anything goes) for a ``**kwargs`` class without ``get_params`` or default construction.
    """
    signature = inspect.signature(cls)
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        return sorted(signature.parameters)
    try:
        listed = set(cls().get_params())
    except Exception:  # any class: no default construction or no get_params
        return None
    named = {n for n, p in signature.parameters.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    return sorted(listed | named | set(native_params() if native_params else ()))


def _split_path(path: str) -> tuple[str, str] | None:
    """``("module", "Class")`` for a well-formed ``"module:Class"``, else None."""
    module_name, colon, class_name = path.partition(":")
    parts = [*module_name.split("."), class_name]
    return (module_name, class_name) if colon and all(p.isidentifier() for p in parts) else None


def _root(path: str) -> str:
    return path.split(":")[0].split(".")[0]


def _type_name(path: str, imported: bool) -> str | None:
    split = _split_path(path)
    if split is None:
        return None
    if not imported:
        return ".".join(split)
    try:
        cls = getattr(load(split[0]), split[1], None)
    except ImportError:
        return None
    return f"{cls.__module__}.{cls.__qualname__}" if isinstance(cls, type) else None


def _alternatives(task: str) -> str:
    names = [n for n in ESTIMATORS.names() if task in ESTIMATORS.get(n).classes]
    return f"Estimators for {task}: {', '.join(names)}." if names else ""
