"""The core layer: the pipeline model, config schema, errors, hashing, the records between stages and the
plugin registry."""

from loopline.core.config import DriftConfig, MonitorConfig, PipelineFile, RetrainConfig
from loopline.core.errors import (
    ConfigError,
    ConflictError,
    DataError,
    IntegrityError,
    LooplineError,
    MissingExtraError,
    NotFoundError,
    SchemaValidationError,
    StepError,
    StoreError,
    UnsafeArtifactError,
    UnservableModelError,
)
from loopline.core.pipeline import BoundStep, Pipeline, StepSpec
from loopline.core.records import (
    Candidate,
    CandidateSummary,
    CrossValidation,
    Features,
    GateDecision,
    LeaderboardRow,
    RetrainDecision,
    Selection,
    TrainReport,
    VersionConfig,
)
from loopline.core.registry import Registry
from loopline.core.step import STEP_TYPES, DatasetRef, FunctionStep, StepConfig, StepContext, StepType, step
from loopline.core.yamlfile import load_pipeline, parse_pipeline, pipeline_from_dict, pipeline_json_schema

__all__ = [
    "STEP_TYPES",
    "BoundStep",
    "Candidate",
    "CandidateSummary",
    "ConfigError",
    "ConflictError",
    "CrossValidation",
    "DataError",
    "DatasetRef",
    "DriftConfig",
    "Features",
    "FunctionStep",
    "GateDecision",
    "IntegrityError",
    "LeaderboardRow",
    "LooplineError",
    "MissingExtraError",
    "MonitorConfig",
    "NotFoundError",
    "Pipeline",
    "PipelineFile",
    "Registry",
    "RetrainConfig",
    "RetrainDecision",
    "SchemaValidationError",
    "Selection",
    "StepConfig",
    "StepContext",
    "StepError",
    "StepSpec",
    "StepType",
    "StoreError",
    "TrainReport",
    "UnsafeArtifactError",
    "UnservableModelError",
    "VersionConfig",
    "load_pipeline",
    "parse_pipeline",
    "pipeline_from_dict",
    "pipeline_json_schema",
    "step",
]
