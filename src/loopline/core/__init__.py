"""The core layer: the pipeline model, config schema, errors, hashing and the plugin registry."""

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
)
from loopline.core.pipeline import BoundStep, Pipeline, StepSpec
from loopline.core.registry import Registry
from loopline.core.step import STEP_TYPES, DatasetRef, FunctionStep, StepConfig, StepContext, StepType, step
from loopline.core.yamlfile import load_pipeline, parse_pipeline, pipeline_from_dict, pipeline_json_schema

__all__ = [
    "STEP_TYPES",
    "BoundStep",
    "ConfigError",
    "ConflictError",
    "DataError",
    "DatasetRef",
    "DriftConfig",
    "FunctionStep",
    "IntegrityError",
    "LooplineError",
    "MissingExtraError",
    "MonitorConfig",
    "NotFoundError",
    "Pipeline",
    "PipelineFile",
    "Registry",
    "RetrainConfig",
    "SchemaValidationError",
    "StepConfig",
    "StepContext",
    "StepError",
    "StepSpec",
    "StepType",
    "StoreError",
    "UnsafeArtifactError",
    "load_pipeline",
    "parse_pipeline",
    "pipeline_from_dict",
    "pipeline_json_schema",
    "step",
]
