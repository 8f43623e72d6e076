"""The step-type contract, as checks (see ``loopline.core.step``)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

from loopline.core.config import NAME_PATTERN
from loopline.core.errors import LooplineError
from loopline.core.step import StepConfig, StepType

_TYPE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.<>#-]*$")


def check_step_type(step_type: StepType[Any]) -> None:
    """Raise AssertionError naming the first broken rule of the step-type contract."""
    name = getattr(step_type, "type_name", None)
    _require(isinstance(name, str) and bool(_TYPE_NAME.match(name)), f"type_name {name!r} is not a stable name")
    _require(issubclass(step_type.Config, BaseModel), f"{name}: Config must be a pydantic model")
    _require(issubclass(step_type.Config, StepConfig), f"{name}: Config must derive from StepConfig")
    _require(bool(step_type.outputs), f"{name}: a step declares at least one output")
    for output in step_type.outputs:
        _require(bool(re.match(NAME_PATTERN, output)), f"{name}: output {output!r} is not a valid name")
    _require(len(set(step_type.outputs)) == len(step_type.outputs), f"{name}: outputs must be unique")
    high = step_type.max_inputs
    _require(step_type.min_inputs >= 0 and (high is None or high >= step_type.min_inputs), f"{name}: bad arity")
    _require(step_type.input_mode in ("default", "all"), f"{name}: input_mode must be 'default' or 'all'")
    version = step_type.code_version()
    _require(isinstance(version, str) and version == step_type.code_version(), f"{name}: code_version must be stable")
    _check_config_rejects_unknown_keys(step_type)
    step_type.Config.model_json_schema()  # the YAML schema is generated from it


def _check_config_rejects_unknown_keys(step_type: StepType[Any]) -> None:
    if step_type.Config.model_config.get("extra") == "allow":
        return  # function steps take keyword arguments as config
    try:
        step_type.Config.model_validate({"surely_not_a_key": 1})
    except ValidationError as exc:
        kinds = {error["type"] for error in exc.errors()}
        _require("extra_forbidden" in kinds, f"{step_type.type_name}: unknown config keys must be refused")
        return
    except LooplineError:
        return
    raise AssertionError(f"{step_type.type_name}: unknown config keys must be refused")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)
