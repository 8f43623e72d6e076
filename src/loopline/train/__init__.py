"""loopline.train: splits, candidate training, cross-validation, early stopping and slice metrics.

The model bundle, the estimator registry and the metrics live in :mod:`loopline.bundle` (what a service imports
without the trainer); their names are re-exported here as before.
"""

from loopline.bundle import (
    ESTIMATOR_TYPES,
    ESTIMATORS,
    FORMAT_VERSION,
    METRIC_DIRECTION,
    TRUSTED_TYPES,
    EstimatorSpec,
    ModelBundle,
    compute_metrics,
    resolve_estimator,
)
from loopline.train._cv import CV_METHODS, cross_validate, resolve_cv_method
from loopline.train._folds import kfold_indices, time_series_folds
from loopline.train._refit import refit_candidate, refit_spec
from loopline.train._slices import slice_metrics
from loopline.train._spec import TRAIN_METRICS_ROWS, EarlyStopping, TrainSpec
from loopline.train._split import parse_gap, split_table
from loopline.train._threads import limited_threads, observed_threads, thread_params
from loopline.train._trainer import TrainResult, resolve_task, train_candidate

__all__ = [
    "CV_METHODS",
    "ESTIMATORS",
    "ESTIMATOR_TYPES",
    "FORMAT_VERSION",
    "METRIC_DIRECTION",
    "TRAIN_METRICS_ROWS",
    "TRUSTED_TYPES",
    "EarlyStopping",
    "EstimatorSpec",
    "ModelBundle",
    "TrainResult",
    "TrainSpec",
    "compute_metrics",
    "cross_validate",
    "kfold_indices",
    "limited_threads",
    "observed_threads",
    "parse_gap",
    "refit_candidate",
    "refit_spec",
    "resolve_cv_method",
    "resolve_estimator",
    "resolve_task",
    "slice_metrics",
    "split_table",
    "thread_params",
    "time_series_folds",
    "train_candidate",
]
