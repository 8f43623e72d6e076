"""loopline.tune: hyperparameter search over the whole model bundle with Optuna, scored on several sets.

A stage like ``train``: it trains with loopline's trainer (:func:`loopline.train.train_candidate`) and returns
typed records; the orchestrator (:mod:`loopline.run`) refits the best configuration and registers it. Optuna is
imported only when a tuning runs (``pip install 'loopline[tune]'``).
"""

from loopline.tune._objective import SCORES_ATTR, Objective, aggregate
from loopline.tune._space import Dimension, SearchSpace, parse_space
from loopline.tune._spec import (
    PRUNERS,
    SAMPLERS,
    TRADEOFFS,
    DatasetSet,
    FoldSets,
    SliceSets,
    TuneSpec,
    ValidSet,
    WindowSets,
)
from loopline.tune._studies import (
    StudyRecord,
    StudyStamp,
    TrialRecord,
    delete_study,
    list_studies,
    load_study,
    open_storage,
    param_importances,
    storage_at,
    study_page,
    study_stamps,
    summarise,
)
from loopline.tune._study import TuneResult, tune

__all__ = [
    "PRUNERS",
    "SAMPLERS",
    "SCORES_ATTR",
    "TRADEOFFS",
    "DatasetSet",
    "Dimension",
    "FoldSets",
    "Objective",
    "SearchSpace",
    "SliceSets",
    "StudyRecord",
    "StudyStamp",
    "TrialRecord",
    "TuneResult",
    "TuneSpec",
    "ValidSet",
    "WindowSets",
    "aggregate",
    "delete_study",
    "list_studies",
    "load_study",
    "open_storage",
    "param_importances",
    "parse_space",
    "storage_at",
    "study_page",
    "study_stamps",
    "summarise",
    "tune",
]
