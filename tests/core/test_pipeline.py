"""The pipeline model: YAML and Python build the same object; DAG validation; params."""

from __future__ import annotations

import pytest

from loopline import ConfigError, Pipeline
from loopline.core import StepConfig, StepContext, StepType, parse_pipeline, pipeline_json_schema, step

YAML = """
name: demo
params: {target: y}
steps:
  data: {type: file, path: data.csv, parse_dates: [t]}
  split:
    type: split
    inputs: [data]
    target: "${params.target}"
    method: random
  model:
    type: train
    inputs: [split.train, split.valid]
    target: y
    numeric: [x]
    estimator: ridge
"""


def python_twin() -> Pipeline:
    return (
        Pipeline("demo", params={"target": "y"})
        .add("data", "file", path="data.csv", parse_dates=["t"])
        .add("split", "split", inputs=["data"], target="${params.target}", method="random")
        .add("model", "train", inputs=["split.train", "split.valid"], target="y", numeric=["x"], estimator="ridge")
    )


def test_yaml_and_python_build_the_same_pipeline() -> None:
    from_yaml = parse_pipeline(YAML)
    assert from_yaml == python_twin()
    assert from_yaml.fingerprint() == python_twin().fingerprint()


def test_changing_config_changes_the_fingerprint() -> None:
    other = python_twin()
    other.params["target"] = "z"
    assert other.fingerprint() != python_twin().fingerprint()


def test_bind_orders_steps_and_substitutes_params() -> None:
    bound = python_twin().bind()
    assert list(bound) == ["data", "split", "model"]
    assert bound["split"].config.target == "y"  # type: ignore[attr-defined]
    assert bound["model"].inputs == (("split", "train"), ("split", "valid"))
    assert python_twin().bind({"target": "label"})["split"].config.target == "label"  # type: ignore[attr-defined]


def test_duplicate_step_is_refused() -> None:
    with pytest.raises(ConfigError, match="defined twice"):
        Pipeline("p").add("a", "file", path="x").add("a", "file", path="y")


def test_python_function_steps_run_as_steps() -> None:
    def double(value: int, *, factor: int = 2) -> int:
        return value * factor

    pipeline = Pipeline("fn").add("one", "file", path="x.csv").add("twice", double, inputs=["one"], factor=3)
    bound = pipeline.bind()
    ctx = StepContext(run_id="r", step="twice", params={})
    assert bound["twice"].step_type.run(bound["twice"].config, [5], ctx) == {"out": 15}


def test_registered_step_types_are_usable_from_yaml() -> None:
    class ScaleConfig(StepConfig):
        factor: float = 1.0

    @step("scale_by_test")
    def scale(value: float, *, factor: float = 1.0) -> float:
        return value * factor

    class Constant(StepType):
        type_name = "constant_test"
        Config = ScaleConfig

    from loopline.core import STEP_TYPES

    STEP_TYPES.register("constant_test", Constant(), replace=True)
    pipeline = parse_pipeline(
        "name: x\nsteps:\n  c: {type: constant_test, factor: 2}\n  s: {type: scale_by_test, inputs: [c]}\n"
    )
    assert list(pipeline.bind()) == ["c", "s"]
    with pytest.raises(ConfigError, match="unknown key 'steps.c.factr'.*Did you mean 'factor'"):
        parse_pipeline("name: x\nsteps:\n  c: {type: constant_test, factr: 2}\n")


def test_json_schema_lists_every_step_type() -> None:
    schema = pipeline_json_schema()
    branches = schema["properties"]["steps"]["additionalProperties"]["oneOf"]
    names = {b["properties"]["type"]["const"] for b in branches}
    assert {"file", "sample", "join", "derive", "split", "train", "select"} <= names
    train = next(b for b in branches if b["properties"]["type"]["const"] == "train")
    assert "estimator" in train["required"]


def test_json_schema_tags_each_ingest_source_by_type() -> None:
    """Editors complete a source's own keys once its ``type:`` is written; a typo there fails the schema."""
    import jsonschema

    schema = pipeline_json_schema()
    branches = schema["properties"]["steps"]["additionalProperties"]["oneOf"]
    ingest = next(b for b in branches if b["properties"]["type"]["const"] == "ingest")
    sources = {b["properties"]["type"]["const"]: b for b in ingest["properties"]["source"]["oneOf"]}
    assert {"file", "postgres", "mysql", "sqlite", "mqtt", "nats", "redis"} <= set(sources)
    assert "path" in sources["file"]["properties"] and sources["file"]["additionalProperties"] is False
    assert "url" in sources["mqtt"]["properties"]
    good = {"name": "s", "steps": {"load": {"type": "ingest", "source": {"type": "file", "path": "d/*.csv"}}}}
    jsonschema.validate(good, schema)
    bad = {"name": "s", "steps": {"load": {"type": "ingest", "source": {"type": "file", "pth": "d/*.csv"}}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


@pytest.mark.parametrize(
    ("relative", "message", "full", "expected"),
    [
        ("source.pth", "unknown key 'source.pth'.", "steps.load.source.pth", "unknown key 'steps.load.source.pth'."),
        ("params.x", "estimator 'e' has no parameter 'x'.", "steps.fit.params.x", "steps.fit.params.x: estimator"),
    ],
)
def test_nested_config_errors_name_the_full_key(relative: str, message: str, full: str, expected: str) -> None:
    error = ConfigError(message, key=relative, hint="Fix it.").under(full.removesuffix("." + relative), file="p.yaml")
    assert error.key == full and error.file == "p.yaml" and error.hint == "Fix it."
    assert expected in str(error) and str(error).startswith("p.yaml: ")


def test_json_schema_completes_estimator_aliases() -> None:
    import jsonschema

    schema = pipeline_json_schema()
    train = {"name": "t", "steps": {"f": {"type": "train", "target": "y", "estimator": "lightgbm"}}}
    jsonschema.validate(train, schema)
    train["steps"]["f"]["estimator"] = "sklearn.ensemble:ExtraTreesClassifier"
    jsonschema.validate(train, schema)
    train["steps"]["f"]["estimator"] = "lightgbn"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(train, schema)
