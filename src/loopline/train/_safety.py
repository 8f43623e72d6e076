"""What a model bundle may contain: loopline's own allowlist of types for skops.

skops already refuses types it does not know (it never unpickles). On top of that,
loopline accepts only (a) the estimator classes of its registry as the top-level
object and (b) the few types outside skops' defaults those estimators need. The
list was found by dumping every registered estimator once; a test keeps it honest.
LightGBM models are stored in LightGBM's own format since bundle format 2; its types
stay listed so format 1 bundles still load.
"""

from __future__ import annotations

import io
import json
import zipfile

from loopline.core.errors import DataError, UnsafeArtifactError
from loopline.train._lazy import load

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


def trusted_types_for(data: bytes) -> list[str]:
    """The types to pass to ``skops.io.loads(trusted=...)`` for ``data``, after checking them.

    Raises UnsafeArtifactError naming the first type not in :data:`TRUSTED_TYPES`,
    or when the top-level object is not an estimator of :data:`ESTIMATOR_TYPES`.
    """
    top = _top_level_type(data)
    if top not in ESTIMATOR_TYPES:
        raise UnsafeArtifactError(
            f"the model bundle holds a {top!r}, which is not an estimator loopline trusts.",
            hint="Only load bundles trained by loopline with a registered estimator; re-train the model.",
        )
    sio = load("skops.io")  # imported on use: it loads every scikit-learn estimator

    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # skops raises assorted errors on damaged input
        raise _damaged(exc) from None
    refused = [t for t in untrusted if t not in TRUSTED_TYPES]
    if refused:
        raise UnsafeArtifactError(
            f"the model bundle needs the untrusted type {refused[0]!r} to load"
            + (f" (and {len(refused) - 1} more)." if len(refused) > 1 else "."),
            hint="loopline refuses to load it; re-train the model with a registered estimator.",
        )
    return list(untrusted)


def _top_level_type(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
        return f"{schema['__module__']}.{schema['__class__']}"
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError) as exc:
        raise _damaged(exc) from None


def _damaged(exc: Exception) -> DataError:
    return DataError(
        f"the estimator in the model bundle is damaged ({type(exc).__name__}: {exc}).",
        hint="Fetch the bundle again or re-train the model.",
    )
