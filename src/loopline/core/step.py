"""The contract of a step type, and the registry every step type is found in.

A step type turns validated config and input values into output values::

    class Double(StepType):
        type_name = "double"
        Config = DoubleConfig              # a pydantic model, extra keys forbidden
        def run(self, config, inputs, ctx):  # -> {"out": value}
            return {"out": inputs[0] * config.factor}

Guarantees the orchestrator relies on: ``run`` is a pure function of ``config``,
``inputs`` and the content named by :meth:`StepType.source_fingerprint`, so equal
fingerprints mean equal outputs and the step can be served from the cache.
Output values are polars DataFrames (stored as Parquet), JSON-able values, bytes, or a
:class:`DatasetRef` (a dataset version's rows, passed by reference).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from loopline.core.registry import Registry

STEP_TYPES: Registry[StepType[Any]] = Registry("step", "loopline.steps", instantiate=True)
"""Every step type by its ``type:`` name. The built-ins are entry points of the ``loopline.steps`` group in
loopline's own ``pyproject.toml``, exactly as a user's package declares its own."""


class StepConfig(BaseModel):
    """Base of step configs: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class DatasetRef:
    """A step output that is the rows of one stored dataset version, passed by reference.

    The orchestrator stores only this reference (no copy of the rows) and hands consumers the version's
    rows as a polars DataFrame, read when a consumer runs, never when it is served from the cache.
    Its identity (what consumers' cache keys see) covers ``checksum``, the version's content hash:
    consumers run again exactly when the content changes.
    """

    dataset: str
    version: int
    checksum: str


@dataclass
class StepContext:
    """What a running step may use besides its inputs.

    ``store`` is the run's store (a ``loopline.store.Store``), for the few steps that
    register results (models); ``progress`` reports a fraction between 0 and 1.
    """

    run_id: str
    step: str
    params: dict[str, Any]
    store: Any = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("loopline.step"))
    progress: Callable[[float], None] = lambda fraction: None


C = TypeVar("C", bound=StepConfig)


class StepType(Generic[C]):
    """Base class of step types, generic over their config: ``class Join(StepType[JoinConfig])``.

    Subclasses set ``type_name``, ``Config`` (the same class as the type argument) and ``run``.
    """

    type_name: ClassVar[str]
    Config: ClassVar[type[StepConfig]] = StepConfig
    outputs: ClassVar[tuple[str, ...]] = ("out",)
    min_inputs: ClassVar[int] = 0
    max_inputs: ClassVar[int | None] = None
    cacheable: ClassVar[bool] = True
    #: "all": an input named by a bare step name arrives as a dict of all that step's outputs
    input_mode: ClassVar[str] = "default"

    def code_version(self) -> str:
        """Hash of the step type's source: editing the code invalidates its cache."""
        return _source_hash(type(self))  # type: ignore[arg-type]

    def source_fingerprint(self, config: C) -> str | None:
        """Content hash of data read from outside the pipeline (files), or None."""
        return None

    def run(self, config: C, inputs: list[Any], ctx: StepContext) -> dict[str, Any]:
        """Compute the outputs, keyed by the names in ``outputs``."""
        raise NotImplementedError


class _FunctionConfig(StepConfig):
    model_config = ConfigDict(extra="allow", frozen=True)


class FunctionStep(StepType[_FunctionConfig]):
    """A user's Python function as a step: inputs positionally, config as keywords.

    The keywords reach the function in their JSON form, as every step config travels to where steps run
    (a tuple arrives as a list, a date as its ISO text). On a Dask cluster the function travels with the
    task: by reference (its module must be importable where the workers run), or by value when it is
    defined in ``__main__`` or inside another function.

    Its cache key covers the function's source, its config and its inputs. A closure's
    captured values are not part of the source, so closures are never served from the cache;
    pass ``cache=False`` for a function that reads other outside state (files, clocks, globals).
    """

    Config = _FunctionConfig

    def __init__(self, func: Callable[..., Any], name: str | None = None, *, cache: bool = True) -> None:
        self.func = func
        self.cacheable = cache and getattr(func, "__closure__", None) is None  # type: ignore[misc]
        qualname = func.__qualname__
        default = f"{func.__module__}.{qualname}"
        if "<" in qualname:  # lambdas and local functions: names alone are not unique
            default += f"#{_source_hash(func)[:8]}"
        self.type_name = name or default  # type: ignore[misc]

    def code_version(self) -> str:
        return _source_hash(self.func)

    def run(self, config: _FunctionConfig, inputs: list[Any], ctx: StepContext) -> dict[str, Any]:
        kwargs = dict(config.model_extra or {})
        return {"out": self.func(*inputs, **kwargs)}


_SOURCE_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1024)
def _source_hash(obj: Any) -> str:
    """Short hash of an object's source (bytecode when the source is not available).

    Serialised: ``inspect.getsource`` of a class parses its module with ``ast``, and CPython 3.11 before
    3.11.8 fails with "AST constructor recursion depth mismatch" when two threads do that at once.
    """
    try:
        with _SOURCE_LOCK:
            source = inspect.getsource(obj)
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        source = code.co_code.hex() if code is not None else obj.__qualname__
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def step(name: str | None = None, *, cache: bool = True) -> Callable[[Callable[..., Any]], FunctionStep]:
    """Decorator: register a function as a step type usable from YAML as ``type: name``."""

    def wrap(func: Callable[..., Any]) -> FunctionStep:
        step_type = FunctionStep(func, name or func.__name__, cache=cache)
        STEP_TYPES.register(step_type.type_name, step_type, replace=True)
        return step_type

    return wrap
