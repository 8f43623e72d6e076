"""loopline.store: the metadata database (runs, models, predictions) and the artifact store.

Open one with ``Store.open(url, artifact_root)``; SQLite is the embedded default, PostgreSQL is reached
through ``postgresql+psycopg://`` URLs.
"""

from loopline.store.artifacts import ArtifactStore
from loopline.store.models import ModelRepository, ModelVersion
from loopline.store.predictions import PredictionLog, PredictionRow
from loopline.store.runs import RunRecord, RunRepository, StepRecord
from loopline.store.store import Store

__all__ = [
    "ArtifactStore",
    "ModelRepository",
    "ModelVersion",
    "PredictionLog",
    "PredictionRow",
    "RunRecord",
    "RunRepository",
    "StepRecord",
    "Store",
]
