"""FeatureImportance: in the train report, in the version config under the key the loop reads, old records."""

from __future__ import annotations

import dataclasses
import json

from loopline.core.records import (
    IMPORTANCE_KEY,
    FeatureImportance,
    Features,
    InputField,
    Timings,
    TrainReport,
    VersionConfig,
)

REPORT = TrainReport(
    algorithm="lightgbm",
    metrics={"valid": {"roc_auc": 0.83}},
    params={},
    timings=Timings(fit_s=0.5),
    input_schema=(InputField("x", "number"), InputField("g", "string")),
    features=Features(("x",), ("g",)),
    target="y",
    task="binary",
    data_fingerprint="fp",
    rows={"train": 80, "valid": 20},
    step_config={"target": "y"},
)

IMPORTANCE = FeatureImportance(
    weights={"x": 0.9, "g": 0.1},
    metric="roc_auc",
    baseline=0.83,
    rows=5000,
    repeats=3,
    drop={"x": 0.18, "g": 0.02},
    std={"x": 0.01, "g": 0.005},
    seconds=0.4,
)
WITH = dataclasses.replace(REPORT, importance=IMPORTANCE)


def test_the_importance_round_trips_in_the_report_and_the_version_config() -> None:
    data = json.loads(json.dumps(WITH.to_dict()))
    assert data["importance"]["weights"] == {"x": 0.9, "g": 0.1}
    assert TrainReport.from_dict(data) == WITH
    config = json.loads(json.dumps(WITH.version_config()))
    assert config[IMPORTANCE_KEY] == {"x": 0.9, "g": 0.1}  # {input feature: weight}, as the loop reads it
    assert config[f"{IMPORTANCE_KEY}_details"]["metric"] == "roc_auc"
    assert "weights" not in config[f"{IMPORTANCE_KEY}_details"]
    typed = VersionConfig.from_dict(config)
    assert typed.importance == IMPORTANCE
    assert json.dumps(typed.to_dict()) == json.dumps(config)
    assert IMPORTANCE.ranked() == [("x", 0.9), ("g", 0.1)]


def test_records_without_importance_write_back_without_its_keys() -> None:
    assert "importance" not in REPORT.to_dict()
    config = REPORT.version_config()
    assert IMPORTANCE_KEY not in config and f"{IMPORTANCE_KEY}_details" not in config
    assert VersionConfig.from_dict(config).importance is None and VersionConfig.from_dict({}).importance is None


def test_a_skipped_importance_is_kept_with_its_reason() -> None:
    skipped = FeatureImportance(skipped="no validation rows to measure it on")
    config = dataclasses.replace(WITH, importance=skipped).version_config()
    assert config[IMPORTANCE_KEY] == {}
    assert VersionConfig.from_dict(json.loads(json.dumps(config))).importance == skipped


def test_weights_written_by_hand_read_as_given() -> None:
    typed = VersionConfig.from_dict({IMPORTANCE_KEY: {"x": 3, "g": 1}})
    assert typed.importance == FeatureImportance(weights={"x": 3.0, "g": 1.0})
    assert FeatureImportance.from_dict(None) is None
