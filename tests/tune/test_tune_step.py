"""The tune step in a pipeline: validated at load, its best trial refitted and registered with its study."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from loopline.core import STEP_TYPES
from loopline.core.errors import ConfigError
from loopline.core.yamlfile import load_pipeline, pipeline_json_schema
from loopline.run import Runner
from loopline.store import Store
from loopline.train import TrainSpec


def pipeline(tmp_path: Path, frame: pl.DataFrame, **tune: Any) -> Path:
    data = tmp_path / "data.parquet"
    frame.write_parquet(data)
    steps: dict[str, Any] = {
        "data": {"type": "file", "path": str(data)},
        "split": {
            "type": "split",
            "inputs": ["data"],
            "target": "y",
            "method": "random",
            "valid_fraction": 0.25,
            "test_fraction": 0.15,
        },
        "search": {
            "type": "tune",
            "inputs": ["split.train", "split.valid", "split.test"],
            "target": "y",
            "numeric": ["x0", "x1", "x2"],
            "categorical": ["g"],
            "estimator": "lightgbm",
            "params": {"n_estimators": 30},
            "space": {"model.num_leaves": {"int": [4, 32]}, "prep.scale": {"choice": ["standard", None]}},
            "sets": [{"type": "valid"}, {"type": "slices", "column": "g"}],
            "aggregate": "worst",
            "n_trials": 3,
            **tune,
        },
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"name": "tuned", "steps": steps}))
    return path


def test_the_tune_config_is_a_train_config_plus_the_search() -> None:
    config = STEP_TYPES.get("tune").Config
    assert issubclass(config, TrainSpec)
    own = set(config.model_fields) - set(STEP_TYPES.get("train").Config.model_fields)
    assert {
        "space",
        "sets",
        "aggregate",
        "sampler",
        "pruner",
        "n_trials",
        "timeout_s",
        "n_jobs",
        "study",
        "model",
    } <= own


def test_a_wrong_search_key_fails_when_the_pipeline_loads(tmp_path: Path, make_labelled: Any) -> None:
    path = pipeline(tmp_path, make_labelled(100, 0), space={"model.num_leafs": {"int": [4, 32]}})
    with pytest.raises(ConfigError, match="has no parameter .num_leafs.. Did you mean") as caught:
        load_pipeline(path)
    assert caught.value.key == "steps.search.space.model.num_leafs"
    with pytest.raises(ConfigError, match="sampler") as caught:
        load_pipeline(pipeline(tmp_path, make_labelled(100, 0), sampler="tep"))


def test_the_schema_knows_the_tune_step_and_its_space() -> None:
    branches = pipeline_json_schema()["properties"]["steps"]["additionalProperties"]["oneOf"]
    tune = next(b for b in branches if b["title"] == "tune")
    assert {"space", "sets", "sampler", "pruner", "n_trials"} <= set(tune["properties"])
    assert "model\\." in tune["properties"]["space"]["propertyNames"]["pattern"]
    import jsonschema

    schema = pipeline_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    space = {
        "model.learning_rate": {"float": [0.01, 0.3], "log": True},
        "prep.impute.strategy": {"choice": ["mean", "median"]},
        "estimator": {"lightgbm": {"model.num_leaves": {"int": [4, 8]}}, "random_forest": None},
    }
    step = {"type": "tune", "inputs": ["s.train", "s.valid"], "target": "y", "estimator": "lightgbm", "space": space}
    jsonschema.validate({"name": "p", "steps": {"t": step}}, schema)
    for wrong in (
        {"learning_rate": {"float": [0.01, 0.3]}},
        {"model.x": {"float": [1]}},
        {"model.x": {"flot": [1, 2]}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"name": "p", "steps": {"t": {**step, "space": wrong}}}, schema)


def test_the_best_trial_is_refitted_and_registered_with_its_study(
    store: Store, tmp_path: Path, make_labelled: Any
) -> None:
    path = pipeline(tmp_path, make_labelled(1200, 2), model="delays")
    result = Runner(store).run(load_pipeline(path))
    study = result.output("search", "study")
    assert study["study"] == "search" and study["trials"] == 3 and study["registered"]["model"] == "delays"
    version = store.models.get("delays", study["registered"]["version"])
    tuning = version.config["resolved"]["tuning"]
    assert tuning["study"] == "search" and tuning["trials"] == 3
    assert set(tuning["scores"]) == {"valid", "g=a", "g=b", "g=c"}
    assert min(tuning["scores"].values()) == pytest.approx(tuning["best_values"][0])
    resolved = version.config["resolved"]
    assert resolved["params"]["num_leaves"] == tuning["best_params"]["model.num_leaves"]
    assert resolved["prep"] == {"scale": tuning["best_params"]["prep.scale"]}
    assert "test" in version.metrics  # refitted as a train step would be: scored on the test split too
    again = Runner(store).run(load_pipeline(path))  # the study resumes: its 3 trials are done, nothing reruns
    assert again.output("search", "study")["trials"] == 3


def test_the_tune_step_passes_the_step_type_conformance_check() -> None:
    from loopline.testing import check_step_type

    check_step_type(STEP_TYPES.get("tune"))
    (base,) = type(STEP_TYPES.get("tune")).__orig_bases__  # type: ignore[attr-defined]
    assert base.__args__ == (STEP_TYPES.get("tune").Config,)
