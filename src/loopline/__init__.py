"""loopline: the whole machine-learning loop in one light package.

Importing loopline does nothing observable: no logging setup, no I/O, no registry scan.
"""

from loopline.core import (
    ConfigError,
    DataError,
    LooplineError,
    NotFoundError,
    Pipeline,
    SchemaValidationError,
    StepContext,
    StepError,
    StepType,
    load_pipeline,
    step,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "LooplineError",
    "NotFoundError",
    "Pipeline",
    "SchemaValidationError",
    "StepContext",
    "StepError",
    "StepType",
    "__version__",
    "load_pipeline",
    "step",
]
