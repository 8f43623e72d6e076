"""What a model bundle may contain: loopline's own allowlist of types for skops.

skops already refuses types it does not know (it never unpickles). On top of that,
loopline accepts only (a) the estimator classes of its registry as the top-level
object and (b) the few types outside skops' defaults those estimators need. The
list was found by dumping every registered estimator once; a test keeps it honest.
LightGBM models are stored in LightGBM's own format since bundle format 2; its types
stay listed so format 1 bundles still load.

Estimators named by import path (``sklearn.ensemble:ExtraTreesClassifier``) are any
scikit-learn estimator, so besides the lists the top-level object may be any classifier
or regressor defined in a ``sklearn.`` module, and an inner type is trusted when it is
defined in a ``sklearn.`` module and is a ``sklearn.base.BaseEstimator`` subclass, or lives in one of
:data:`SKLEARN_HELPER_MODULES` (fitted trees, neighbour indexes, optimiser state). The
rule is applied to the type names the artifact asks for, against loopline's own code: no
trust list is ever read from the artifact, and only ``sklearn.`` modules get imported.

A user's own estimator plugs in through its registered :class:`EstimatorSpec`: its
``classes`` may be the top-level object and its declared ``trusted_types`` inner ones,
only while that spec is registered in the running process (in code, or by an installed
package's entry point). An artifact naming any other type is refused; the modules imported
to check a name are only the ones such a spec declares (see :func:`declared_types`).
"""

from __future__ import annotations

import io
import json
import zipfile

from loopline.bundle._estimators import declared_types
from loopline.bundle._lazy import load
from loopline.core.errors import DataError, UnsafeArtifactError

_REFUSED_HINT = (
    "Only load bundles trained by loopline with a registered estimator. A bundle of your own estimator loads "
    "once its EstimatorSpec is registered in this process (ESTIMATORS.register, or the 'loopline.estimators' "
    "entry point of the package that defines it), with every type it holds in trusted_types; "
    "otherwise re-train the model."
)

ESTIMATOR_TYPES: frozenset[str] = frozenset(
    {
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRegressor",
        "sklearn.ensemble._forest.ExtraTreesClassifier",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._forest.RandomForestRegressor",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
        "sklearn.linear_model._base.LinearRegression",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.linear_model._ridge.Ridge",
    }
)
"""Classes a bundle's estimator may be."""

TRUSTED_TYPES: frozenset[str] = ESTIMATOR_TYPES | frozenset(
    {
        "collections.OrderedDict",
        "lightgbm.basic.Booster",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.tree._tree.Tree",
    }
)
"""Every type outside skops' own defaults that loopline lets skops load."""

SKLEARN_HELPER_MODULES: frozenset[str] = frozenset(
    {
        "sklearn.ensemble._hist_gradient_boosting.predictor",
        "sklearn.metrics._dist_metrics",
        "sklearn.neighbors._ball_tree",
        "sklearn.neighbors._kd_tree",
        "sklearn.neural_network._stochastic_optimizers",
        "sklearn.tree._tree",
    }
)
"""scikit-learn modules whose types fitted estimators hold (found by dumping estimators with skops)."""


def trusted_types_for(data: bytes) -> list[str]:
    """The types to pass to ``skops.io.loads(trusted=...)`` for ``data``, after checking them.

    Raises UnsafeArtifactError naming the first type not in :data:`TRUSTED_TYPES` (nor
    declared by a registered spec), or when the top-level object is not an estimator of
    :data:`ESTIMATOR_TYPES`, a scikit-learn predictor or a registered spec's class.
    """
    top = _top_level_type(data)
    if top not in ESTIMATOR_TYPES and not is_sklearn_estimator(top, predictor=True) and not _declared(top, top=True):
        raise UnsafeArtifactError(
            f"the model bundle holds a {top!r}, which is not an estimator loopline trusts.", hint=_REFUSED_HINT
        )
    sio = load("skops.io")  # imported on use: it loads every scikit-learn estimator

    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # skops raises assorted errors on damaged input
        raise _damaged(exc) from None
    refused = [t for t in untrusted if not _trusted(t)]
    if refused:
        raise UnsafeArtifactError(
            f"the model bundle needs the untrusted type {refused[0]!r} to load"
            + (f" (and {len(refused) - 1} more)." if len(refused) > 1 else "."),
            hint=f"loopline refuses to load it. {_REFUSED_HINT}",
        )
    return list(untrusted)


def fast_trusted_types(data: bytes) -> list[str]:
    """The types of ``data``'s skops schema that loopline trusts, without building skops' object tree.

    The same rules as :func:`trusted_types_for` (the top-level object first, then :func:`_trusted` for each
    type), applied to every ``__module__``/``__class__`` pair schema.json names instead of to skops' list of
    untrusted types: skops' own audit in ``skops.io.loads(trusted=...)`` still refuses any type it does not
    trust by default and this list lacks, so a type named elsewhere in the schema (a function's path) fails
    closed, and the caller then runs :func:`trusted_types_for`. Saves skops' first full pass over the file
    (reading every array), a third of a load.
    """
    schema = _schema(data)
    top = _type_name(schema)
    if top not in ESTIMATOR_TYPES and not is_sklearn_estimator(top, predictor=True) and not _declared(top, top=True):
        raise UnsafeArtifactError(
            f"the model bundle holds a {top!r}, which is not an estimator loopline trusts.", hint=_REFUSED_HINT
        )
    return sorted(t for t in _schema_types(schema, set()) if _trusted(t))


def _schema_types(node: object, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        if isinstance(node.get("__module__"), str) and isinstance(node.get("__class__"), str):
            found.add(f"{node['__module__']}.{node['__class__']}")
        for value in node.values():
            _schema_types(value, found)
    elif isinstance(node, list):
        for value in node:
            _schema_types(value, found)
    return found


def is_sklearn_estimator(type_name: str, *, predictor: bool = False) -> bool:
    """Whether ``type_name`` ("module.Class") is a scikit-learn estimator class.

    ``predictor``: a classifier or regressor (what a bundle's top-level object must be;
    a ``Pipeline`` is neither). Only names under ``sklearn.`` made of identifiers are
    looked up (importing that module).
    """
    module_name, _, class_name = type_name.rpartition(".")
    cls = _sklearn_class(module_name, class_name)
    base = load("sklearn.base")
    wanted = (base.ClassifierMixin, base.RegressorMixin) if predictor else (base.BaseEstimator,)
    return cls is not None and issubclass(cls, wanted)


def _trusted(type_name: str) -> bool:
    if type_name in TRUSTED_TYPES:
        return True
    module_name, _, class_name = type_name.rpartition(".")
    if module_name in SKLEARN_HELPER_MODULES:
        return _sklearn_class(module_name, class_name) is not None
    return is_sklearn_estimator(type_name) or _declared(type_name, top=False)


def _declared(type_name: str, *, top: bool) -> bool:
    """Whether a spec registered in this process declares ``type_name`` (its estimator class when ``top``).

    First as the spec writes it, then as the declared classes' own paths (importing only
    the declared modules): the artifact's names are compared, never imported.
    """
    return type_name in declared_types(estimators_only=top) or type_name in declared_types(
        estimators_only=top, imported=True
    )


def _sklearn_class(module_name: str, class_name: str) -> type | None:
    parts = [*module_name.split("."), class_name]
    if parts[0] != "sklearn" or len(parts) < 3 or not all(p.isidentifier() for p in parts):
        return None
    try:
        cls = getattr(load(module_name), class_name, None)
    except ImportError:
        return None
    if not isinstance(cls, type) or not cls.__module__.startswith("sklearn."):
        return None  # re-exported from elsewhere: not scikit-learn's own class
    return cls


def _top_level_type(data: bytes) -> str:
    return _type_name(_schema(data))


def _schema(data: bytes) -> dict[str, object]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError) as exc:
        raise _damaged(exc) from None
    if not isinstance(schema, dict):
        raise _damaged(TypeError("schema.json is not an object"))
    return schema


def _type_name(schema: dict[str, object]) -> str:
    try:
        return f"{schema['__module__']}.{schema['__class__']}"
    except KeyError as exc:
        raise _damaged(exc) from None


def _damaged(exc: Exception) -> DataError:
    return DataError(
        f"the estimator in the model bundle is damaged ({type(exc).__name__}: {exc}).",
        hint="Fetch the bundle again or re-train the model.",
    )
