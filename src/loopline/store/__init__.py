"""loopline.store: the metadata database (runs, models with their aliases and audit trail, predictions, datasets,
monitoring windows, alerts) and the artifact store.

Open one with ``Store.open(url, artifacts)``; SQLite is the embedded default, PostgreSQL is reached
through ``postgresql+psycopg://`` URLs; artifacts live in a local folder or at any fsspec URL (``s3://…``).
"""

from loopline.store._aliases import ALIAS_PATTERN
from loopline.store._audit import ModelEvent
from loopline.store._check import CheckReport, Reference, StrayFile
from loopline.store._model_gc import GcReport, Retention
from loopline.store.alerts import AlertEvent, AlertRepository
from loopline.store.artifacts import (
    ArtifactEntry,
    ArtifactStore,
    FsspecArtifactStore,
    LocalArtifactStore,
    open_artifacts,
)
from loopline.store.datasets import DatasetRepository, DatasetVersion, DeadLetter, Rejected, SourceActivity
from loopline.store.feedback import FeedbackReceipt, FeedbackRepository, Label, LabelCoverage, LabelSync
from loopline.store.models import ModelRepository, ModelVersion
from loopline.store.predictions import ErrorCount, PredictionLog, PredictionRow
from loopline.store.runs import RunRecord, RunRepository, StepRecord
from loopline.store.store import Store
from loopline.store.windows import AlertRow, StoredWindow, WindowRepository, WindowRow

__all__ = [
    "ALIAS_PATTERN",
    "AlertEvent",
    "AlertRepository",
    "AlertRow",
    "ArtifactEntry",
    "ArtifactStore",
    "CheckReport",
    "DatasetRepository",
    "DatasetVersion",
    "DeadLetter",
    "ErrorCount",
    "FeedbackReceipt",
    "FeedbackRepository",
    "FsspecArtifactStore",
    "GcReport",
    "Label",
    "LabelCoverage",
    "LabelSync",
    "LocalArtifactStore",
    "ModelEvent",
    "ModelRepository",
    "ModelVersion",
    "PredictionLog",
    "PredictionRow",
    "Reference",
    "Rejected",
    "Retention",
    "RunRecord",
    "RunRepository",
    "SourceActivity",
    "StepRecord",
    "Store",
    "StoredWindow",
    "StrayFile",
    "WindowRepository",
    "WindowRow",
    "open_artifacts",
]
