"""loopline.store: the metadata database (runs, models, predictions, datasets) and the artifact store.

Open one with ``Store.open(url, artifact_root)``; SQLite is the embedded default, PostgreSQL is reached
through ``postgresql+psycopg://`` URLs.
"""

from loopline.store._check import CheckReport, Reference, StrayFile
from loopline.store.artifacts import ArtifactStore
from loopline.store.datasets import DatasetRepository, DatasetVersion, DeadLetter, Rejected
from loopline.store.models import ModelRepository, ModelVersion
from loopline.store.predictions import PredictionLog, PredictionRow
from loopline.store.runs import RunRecord, RunRepository, StepRecord
from loopline.store.store import Store

__all__ = [
    "ArtifactStore",
    "CheckReport",
    "DatasetRepository",
    "DatasetVersion",
    "DeadLetter",
    "ModelRepository",
    "ModelVersion",
    "PredictionLog",
    "PredictionRow",
    "Reference",
    "Rejected",
    "RunRecord",
    "RunRepository",
    "StepRecord",
    "Store",
    "StrayFile",
]
