"""The pipeline model: named steps with declared inputs, forming a DAG.

The YAML file and the Python API both end in a :class:`Pipeline`; two pipelines
with the same steps, config and params are equal and have the same fingerprint.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from loopline.core.config import NAME_PATTERN, MonitorConfig
from loopline.core.errors import ConfigError, did_you_mean
from loopline.core.hashing import fingerprint
from loopline.core.step import STEP_TYPES, FunctionStep, StepType

_PARAM_REF = re.compile(r"\$\{params\.([A-Za-z_][A-Za-z0-9_]*)\}")
_STEP_NAME = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class StepSpec:
    """A step as declared: ``inputs`` name steps (``step``) or outputs (``step.output``)."""

    name: str
    type: str
    inputs: tuple[str, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The step as it would be written in YAML."""
        out: dict[str, Any] = {"type": self.type}
        if self.inputs:
            out["inputs"] = list(self.inputs)
        out.update(self.config)
        return out


@dataclass(frozen=True)
class BoundStep:
    """A validated step: its spec, its step type and its typed config."""

    spec: StepSpec
    step_type: StepType[Any]
    config: BaseModel
    inputs: tuple[tuple[str, str], ...]  # (producer step, output name)


class Pipeline:
    """A named DAG of steps, with params that step config may reference as ``${params.x}``."""

    def __init__(
        self,
        name: str,
        *,
        params: Mapping[str, Any] | None = None,
        description: str = "",
        monitor: MonitorConfig | Mapping[str, Any] | None = None,
        source: str | None = None,
    ) -> None:
        self.name = name
        self.params = dict(params or {})
        self.description = description
        self.monitor = MonitorConfig.model_validate(monitor) if isinstance(monitor, Mapping) else monitor
        self.source = source
        self.steps: dict[str, StepSpec] = {}

    def add(
        self,
        name: str,
        type: str | Callable[..., Any],
        /,
        *,
        inputs: list[str] | tuple[str, ...] = (),
        **config: Any,
    ) -> Pipeline:
        """Add a step; ``type`` is a registered name or a Python function. Returns self."""
        if not _STEP_NAME.match(name):
            raise ConfigError(
                f"invalid step name {name!r}.",
                key=f"steps.{name}",
                hint="Use lower-case letters, digits and '_', starting with a letter.",
            )
        if name in self.steps:
            raise ConfigError(f"step {name!r} is defined twice.", key=f"steps.{name}", hint="Rename one.")
        if callable(type):
            function_step = FunctionStep(type)
            STEP_TYPES.register(function_step.type_name, function_step, replace=True)
            type_name = function_step.type_name
        else:
            type_name = type
        self.steps[name] = StepSpec(name, type_name, tuple(inputs), dict(config))
        return self

    # -- validation ---------------------------------------------------------------------------
    def bind(self, params: Mapping[str, Any] | None = None) -> dict[str, BoundStep]:
        """Validate every step and return them in dependency order, params substituted."""
        merged = {**self.params, **(params or {})}
        bound: dict[str, BoundStep] = {}
        for spec in self.steps.values():
            step_type = _step_type(spec, self.source)
            config = _validate_config(
                spec, step_type, _substitute(spec.config, merged, spec.name, self.source), self.source
            )
            inputs = tuple(self._resolve_input(spec, ref, step_type) for ref in spec.inputs)
            _check_arity(spec, step_type, self.source)
            bound[spec.name] = BoundStep(spec, step_type, config, inputs)
        return {name: bound[name] for name in self._order(bound)}

    def _resolve_input(self, spec: StepSpec, ref: str, consumer: StepType[Any]) -> tuple[str, str]:
        producer, _, output = ref.partition(".")
        if producer not in self.steps:
            hint = did_you_mean(producer, self.steps) or f"Steps: {', '.join(self.steps)}."
            raise ConfigError(
                f"step {spec.name!r} takes input {ref!r}, but no step is named {producer!r}.",
                key=f"steps.{spec.name}.inputs",
                file=self.source,
                hint=hint,
            )
        outputs = _step_type(self.steps[producer], self.source).outputs
        output = output or outputs[0]
        if output not in outputs:
            raise ConfigError(
                f"step {producer!r} has no output {output!r} (input of {spec.name!r}).",
                key=f"steps.{spec.name}.inputs",
                file=self.source,
                hint=f"Its outputs: {', '.join(producer + '.' + o for o in outputs)}.",
            )
        return producer, output

    def _order(self, bound: Mapping[str, BoundStep]) -> list[str]:
        graph = {name: {producer for producer, _ in b.inputs} for name, b in bound.items()}
        try:
            return list(TopologicalSorter(graph).static_order())
        except CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            raise ConfigError(
                f"the steps form a cycle: {cycle}.",
                key="steps",
                file=self.source,
                hint="Remove one of these inputs so that data flows one way.",
            ) from None

    # -- identity -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The pipeline as a YAML-equivalent mapping."""
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        if self.params:
            out["params"] = dict(self.params)
        out["steps"] = {name: spec.to_dict() for name, spec in self.steps.items()}
        if self.monitor is not None:
            out["monitor"] = self.monitor.model_dump(mode="json")
        return out

    def fingerprint(self) -> str:
        """Hash of :meth:`to_dict`: equal pipelines have equal fingerprints."""
        return fingerprint(self.to_dict())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pipeline) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, steps={list(self.steps)})"


def _step_type(spec: StepSpec, source: str | None) -> StepType[Any]:
    try:
        return STEP_TYPES.get(spec.type)
    except ConfigError as exc:
        raise ConfigError(exc.message, key=f"steps.{spec.name}.type", file=source, hint=exc.hint) from None


def _check_arity(spec: StepSpec, step_type: StepType[Any], source: str | None) -> None:
    count = len(spec.inputs)
    low, high = step_type.min_inputs, step_type.max_inputs
    if count < low or (high is not None and count > high):
        want = f"exactly {low}" if low == high else f"at least {low}" if high is None else f"{low} to {high}"
        raise ConfigError(
            f"step {spec.name!r} ({spec.type}) takes {want} input(s), got {count}.",
            key=f"steps.{spec.name}.inputs",
            file=source,
            hint="List the producing steps under 'inputs:'.",
        )


def _validate_config(
    spec: StepSpec, step_type: StepType[Any], config: Mapping[str, Any], source: str | None
) -> BaseModel:
    try:
        return step_type.Config.model_validate(dict(config))
    except ValidationError as exc:
        raise config_error_from_validation(
            exc, prefix=f"steps.{spec.name}", model=step_type.Config, file=source
        ) from None
    except ConfigError as exc:  # a validator of nested config (a source, an estimator): keys relative to the step
        raise exc.under(f"steps.{spec.name}", file=source) from None


def config_error_from_validation(
    exc: ValidationError,
    *,
    prefix: str,
    model: type[BaseModel],
    file: str | None = None,
    lines: Mapping[str, int] | None = None,
) -> ConfigError:
    """Turn pydantic's first error into a ConfigError naming the key, its line and a fix."""
    errors = exc.errors()
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = [str(part) for part in error["loc"]]
    key = ".".join([prefix, *loc]) if prefix else ".".join(loc)
    line = line_of(key, lines)
    if error["type"] == "extra_forbidden":
        known = _fields_at(model, loc[:-1])
        hint = did_you_mean(loc[-1], known) or f"Allowed keys here: {', '.join(sorted(known))}."
        return ConfigError(f"unknown key {key!r}.", key=key, file=file, line=line, hint=hint)
    if error["type"] == "missing":
        return ConfigError(f"missing required key {key!r}.", key=key, file=file, line=line, hint="Add it.")
    value = error.get("input")
    return ConfigError(
        f"invalid value for {key!r}: {error['msg']} (got {value!r}).",
        key=key,
        file=file,
        line=line,
        hint="Fix the value as described.",
    )


def _fields_at(model: type[BaseModel], loc: list[str]) -> list[str]:
    current: Any = model
    keyed = False  # the previous field was a mapping: this part is one of its keys (a feature name)
    for part in loc:
        if keyed or part.isdigit():  # a mapping's key (a feature name) or a list's item: its fields are the value's
            keyed = False
            continue
        field_info = getattr(current, "model_fields", {}).get(part)
        if field_info is None:
            return []
        keyed = get_origin(field_info.annotation) is dict
        current = _model_in(field_info.annotation)
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model ``annotation`` is, or holds as an option (``Model | None``)."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def line_of(key: str, lines: Mapping[str, int] | None) -> int | None:
    if not lines:
        return None
    parts = key.split(".")
    while parts:
        line = lines.get(".".join(parts))
        if line is not None:
            return line
        parts.pop()
    return None


def _substitute(value: Any, params: Mapping[str, Any], step: str, source: str | None) -> Any:
    if isinstance(value, str):
        whole = _PARAM_REF.fullmatch(value)
        if whole:
            return _param(whole.group(1), params, step, source)
        return _PARAM_REF.sub(lambda m: str(_param(m.group(1), params, step, source)), value)
    if isinstance(value, Mapping):
        return {k: _substitute(v, params, step, source) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_substitute(v, params, step, source) for v in value]
    return value


def _param(name: str, params: Mapping[str, Any], step: str, source: str | None) -> Any:
    if name not in params:
        hint = did_you_mean(name, params) or "Declare it under 'params:' or pass --param NAME=VALUE."
        raise ConfigError(
            f"step {step!r} uses ${{params.{name}}}, which is not defined.", key=f"steps.{step}", file=source, hint=hint
        )
    return params[name]
