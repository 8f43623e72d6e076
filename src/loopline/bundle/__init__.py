"""loopline.bundle: the model bundle, the one object that is trained, stored, promoted and served.

A bundle is fitted preprocessing + estimator + input schema + metadata (:class:`ModelBundle`); this package
loads it safely (:meth:`ModelBundle.from_bytes`, checked against what a bundle may hold; :func:`verify_bundle`
is that load as the one check that a version can be served), predicts with it
(its compiled and native predictors) and evaluates it (:func:`compute_metrics`). It also holds the estimator
registry (:data:`ESTIMATORS`, :class:`EstimatorSpec`), because a registered spec is what lets a user's bundle
load: a service or a batch-scoring job imports this package, never :mod:`loopline.train`, which fits the
estimators and builds the bundles (and re-exports these names).

An ensemble version (:class:`EnsembleBundle`, built by :func:`ensemble_of`) is a bundle too: it serves the mean of
its member bundles' predictions, and loads, evaluates and serves wherever a bundle does.

The input policy (:mod:`loopline.bundle._inputs`: :class:`InputPolicy`, :func:`conform_records`,
:func:`conform_table`) is here too: the one rule the service's protocols and batch scoring apply to what they
are given, read from the input schema the bundle carries.
"""

from loopline.bundle._bundle import FORMAT_VERSION, READABLE_VERSIONS, ModelBundle, target_values
from loopline.bundle._ensemble import MAX_MEMBERS, EnsembleBundle, ensemble_of
from loopline.bundle._estimators import ESTIMATORS, EstimatorSpec, declared_types, resolve_estimator
from loopline.bundle._golden import GOLDEN_ROWS, first_difference, golden_expected, golden_inputs, golden_sample
from loopline.bundle._inputs import (
    DEFAULT_MAX_STRING_LENGTH,
    MAX_FIELD_ERRORS,
    ColumnPlan,
    ConformedRecords,
    FieldRule,
    InputPolicy,
    conform_records,
    conform_table,
    convert_value,
    field_rules,
    plan_columns,
    with_training_types,
)
from loopline.bundle._metrics import METRIC_DIRECTION, TASKS, compute_metrics
from loopline.bundle._safety import ESTIMATOR_TYPES, TRUSTED_TYPES, trusted_types_for
from loopline.bundle._verify import check_servable, verify_bundle

__all__ = [
    "DEFAULT_MAX_STRING_LENGTH",
    "ESTIMATORS",
    "ESTIMATOR_TYPES",
    "FORMAT_VERSION",
    "GOLDEN_ROWS",
    "MAX_FIELD_ERRORS",
    "MAX_MEMBERS",
    "METRIC_DIRECTION",
    "READABLE_VERSIONS",
    "TASKS",
    "TRUSTED_TYPES",
    "ColumnPlan",
    "ConformedRecords",
    "EnsembleBundle",
    "EstimatorSpec",
    "FieldRule",
    "InputPolicy",
    "ModelBundle",
    "check_servable",
    "compute_metrics",
    "conform_records",
    "conform_table",
    "convert_value",
    "declared_types",
    "ensemble_of",
    "field_rules",
    "first_difference",
    "golden_expected",
    "golden_inputs",
    "golden_sample",
    "plan_columns",
    "resolve_estimator",
    "target_values",
    "trusted_types_for",
    "verify_bundle",
    "with_training_types",
]
