"""The built-in estimator aliases; imported by :data:`ESTIMATORS` on its first lookup.

Defaults are light enough for a laptop. No default sets a thread count: a server
that wants single-threaded predictions wraps the call in
``threadpoolctl.threadpool_limits(1)`` (see ``ModelBundle.predict_records``).
"""

from __future__ import annotations

from loopline.bundle._estimators import ESTIMATORS, EstimatorSpec
from loopline.bundle._lazy import load

_CLASSIFY = ("binary", "multiclass")


def _lightgbm_params() -> set[str]:
    """LightGBM's own parameters and their aliases (``min_data_in_leaf``, ``verbose``), from its C library."""
    aliases = load("lightgbm.basic")._ConfigAliases._get_all_param_aliases()
    return set(aliases) | {alias for names in aliases.values() for alias in names}


def _classifier(path: str) -> dict[str, str]:
    return dict.fromkeys(_CLASSIFY, path)


_BUILTINS = (
    EstimatorSpec("logistic_regression", _classifier("sklearn.linear_model:LogisticRegression"), {"max_iter": 1000}),
    EstimatorSpec(
        "random_forest",
        _classifier("sklearn.ensemble:RandomForestClassifier"),
        {"n_estimators": 100, "min_samples_leaf": 2},
    ),
    EstimatorSpec(
        "extra_trees",
        _classifier("sklearn.ensemble:ExtraTreesClassifier"),
        {"n_estimators": 100, "min_samples_leaf": 2},
    ),
    EstimatorSpec(
        "hist_gradient_boosting",
        _classifier("sklearn.ensemble:HistGradientBoostingClassifier"),
        {"max_iter": 200, "early_stopping": True},
        fitter="hist_gradient_boosting",
    ),
    EstimatorSpec("linear_regression", {"regression": "sklearn.linear_model:LinearRegression"}, seed_param=None),
    EstimatorSpec("ridge", {"regression": "sklearn.linear_model:Ridge"}, {"alpha": 1.0}),
    EstimatorSpec(
        "hist_gradient_boosting_regressor",
        {"regression": "sklearn.ensemble:HistGradientBoostingRegressor"},
        {"max_iter": 200, "early_stopping": True},
        fitter="hist_gradient_boosting",
    ),
    EstimatorSpec(
        "random_forest_regressor",
        {"regression": "sklearn.ensemble:RandomForestRegressor"},
        {"n_estimators": 100, "min_samples_leaf": 2},
    ),
    EstimatorSpec(
        "lightgbm",
        {**_classifier("lightgbm:LGBMClassifier"), "regression": "lightgbm:LGBMRegressor"},
        {"n_estimators": 200, "learning_rate": 0.05, "verbose": -1},
        extra="lightgbm",
        fitter="lightgbm",
        encode_labels=True,  # LightGBM 4.7 does not encode eval_y labels itself
        native_params=_lightgbm_params,
    ),
    EstimatorSpec(
        "xgboost",
        {**_classifier("xgboost:XGBClassifier"), "regression": "xgboost:XGBRegressor"},
        {"n_estimators": 200, "learning_rate": 0.1, "max_depth": 6, "tree_method": "hist", "verbosity": 0},
        extra="xgboost",
        fitter="xgboost",
        encode_labels=True,
    ),
)

for _spec in _BUILTINS:
    ESTIMATORS.register(_spec.name, _spec)
