"""Read a pipeline YAML file into a :class:`Pipeline`, with errors that name the line."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from loopline.core.config import PipelineFile
from loopline.core.errors import ConfigError
from loopline.core.pipeline import Pipeline, config_error_from_validation, line_of
from loopline.core.step import STEP_TYPES


def load_pipeline(path: str | Path, params: Mapping[str, Any] | None = None) -> Pipeline:
    """Parse and validate a pipeline file; ``params`` override the file's ``params:``."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(
            f"pipeline file {str(file)!r} does not exist.",
            file=str(file),
            hint="Check the path, or create one with `loopline init`.",
        )
    return parse_pipeline(file.read_text(encoding="utf-8"), source=str(file), params=params)


def parse_pipeline(text: str, *, source: str = "<string>", params: Mapping[str, Any] | None = None) -> Pipeline:
    """Parse pipeline YAML text; every step's config is validated against its step type."""
    data, lines = _load_yaml(text, source)
    return pipeline_from_dict(data, source=source, params=params, lines=lines)


def pipeline_from_dict(
    data: Any,
    *,
    source: str = "<dict>",
    params: Mapping[str, Any] | None = None,
    lines: Mapping[str, int] | None = None,
) -> Pipeline:
    """Build and validate a pipeline from its mapping form (parsed YAML, or a stored run's spec)."""
    lines = lines or {}
    if not isinstance(data, dict):
        raise ConfigError(
            "a pipeline file must be a mapping with 'name' and 'steps'.",
            file=source,
            line=1,
            hint="Start from `loopline init`.",
        )
    try:
        spec = PipelineFile.model_validate(data)
    except ValidationError as exc:
        raise config_error_from_validation(exc, prefix="", model=PipelineFile, file=source, lines=lines) from None
    pipeline = Pipeline(
        spec.name, params=spec.params, description=spec.description, monitor=spec.monitor, source=source
    )
    configs = spec.step_configs()
    for name, entry in spec.steps.items():
        try:
            pipeline.add(name, entry.type, inputs=entry.inputs, **configs[name])
        except ConfigError as exc:
            raise _with_line(exc, lines, source) from None
    try:
        pipeline.bind(params)
    except ConfigError as exc:
        raise _with_line(exc, lines, source) from None
    if params:
        pipeline.params.update(params)
    return pipeline


def pipeline_json_schema() -> dict[str, Any]:
    """JSON Schema of pipeline files: ``steps`` is a union tagged by ``type:``, one branch per step type."""
    schema = PipelineFile.model_json_schema()
    defs = schema.setdefault("$defs", {})
    configs = {name: STEP_TYPES.get(name).Config for name in STEP_TYPES.names()}
    inputs = {"inputs": {"type": "array", "items": {"type": "string"}}}
    schema["properties"]["steps"]["additionalProperties"] = {"oneOf": tagged_union(configs, defs, inputs)}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def tagged_union(
    members: Mapping[str, type[BaseModel]], defs: dict[str, Any], extra: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One JSON Schema branch per ``type:`` name: ``type`` is a const, then the member config's keys.

    A config class may shape its own schema with a ``json_schema()`` classmethod (the ingest step nests the
    sources' union under ``source``); nested definitions are hoisted into ``defs``. Editors complete each
    branch's keys once ``type:`` is written.
    """
    branches = []
    for name, model in members.items():
        own = getattr(model, "json_schema", model.model_json_schema)()
        defs.update(own.pop("$defs", {}))
        properties = {"type": {"const": name}, **(extra or {}), **own.get("properties", {})}
        branches.append(
            {**own, "title": name, "properties": properties, "required": ["type", *own.get("required", [])]}
        )
    return branches


def _with_line(exc: ConfigError, lines: Mapping[str, int], source: str) -> ConfigError:
    if exc.line is not None or exc.key is None:
        return exc
    return ConfigError(
        exc.detail,
        key=exc.key,
        file=source,
        line=line_of(exc.key, lines),
        hint=exc.hint,
    )


class _Yaml12Loader(yaml.SafeLoader):  # type: ignore[misc]
    """SafeLoader with YAML 1.2 booleans: ``on``, ``off``, ``yes`` and ``no`` stay strings."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _load_yaml(text: str, source: str) -> tuple[Any, dict[str, int]]:
    try:
        node = yaml.compose(text, Loader=_Yaml12Loader)
        data = yaml.load(text, Loader=_Yaml12Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"this is not valid YAML: {problem}.",
            file=source,
            line=line,
            hint="Check the indentation and quoting around this line.",
        ) from None
    lines: dict[str, int] = {}
    if node is not None:
        _collect_lines(node, "", lines)
    return data, lines


def _collect_lines(node: yaml.Node, path: str, lines: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{path}.{key_node.value}" if path else str(key_node.value)
            lines[key] = key_node.start_mark.line + 1
            _collect_lines(value_node, key, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            key = f"{path}.{index}"
            lines[key] = item.start_mark.line + 1
            _collect_lines(item, key, lines)
