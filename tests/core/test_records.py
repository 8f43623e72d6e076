"""The records between stages: JSON round trips, reports stored by earlier releases, foreign inputs refused."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

from loopline.core.errors import ConfigError
from loopline.core.records import (
    Candidate,
    CandidateSummary,
    CrossValidation,
    Features,
    Finding,
    GateDecision,
    LeaderboardRow,
    RetrainDecision,
    Selection,
    TrainReport,
    VersionConfig,
)

REPORT = TrainReport(
    algorithm="lightgbm",
    metrics={"valid": {"roc_auc": 0.8}, "cv": {"roc_auc": 0.79}},
    params={"n_estimators": 10},
    timings={"fit_s": 0.5, "training": {"stopped": "converged", "iterations": 7}},
    input_schema=[{"name": "x", "dtype": "Float64"}],
    features=Features(("x",), ("g",)),
    target="y",
    task="binary",
    data_fingerprint="fp",
    rows={"train": 80, "valid": 20},
    step_config={"target": "y", "estimator": "lightgbm"},
    lineage={"x": ["x"]},
    cv=CrossValidation(
        method="stratified",
        folds=3,
        seed=0,
        fold_rows=({"train": 53, "valid": 27},) * 3,
        fold_metrics=({"roc_auc": 0.77}, {"roc_auc": 0.79}, {"roc_auc": 0.81}),
        mean={"roc_auc": 0.79},
        std={"roc_auc": 0.02},
    ),
    threads={"requested": 1, "openmp": 1, "blas": None},
    findings=(
        Finding("target_leakage", "late", "feature 'late' alone predicts the target.", 0.9995),
        Finding("constant", "currency", "feature 'currency' holds one value.", None, "dropped"),
    ),
)


def test_a_train_report_round_trips_through_json_with_its_marker() -> None:
    data = json.loads(json.dumps(REPORT.to_dict()))
    assert data["record"] == TrainReport.KIND and TrainReport.is_one(data)
    assert TrainReport.from_dict(data) == REPORT


def test_a_report_stored_before_the_marker_still_loads() -> None:
    old = {
        k: v
        for k, v in REPORT.to_dict().items()
        if k not in ("record", "lineage", "cv", "threads", "slice_metrics", "findings")
    }
    loaded = TrainReport.from_dict(old)
    assert loaded.algorithm == "lightgbm" and loaded.features.names == ["x", "g"]
    assert (loaded.lineage, loaded.cv, loaded.threads, loaded.findings) == (None, None, None, ())
    assert not TrainReport.is_one(old)  # recognised by the select step through Candidate.from_dict


def test_the_version_config_is_what_the_repository_stores_and_reads_back() -> None:
    config = VersionConfig.from_dict(REPORT.version_config())
    assert config.features == REPORT.features and config.resolved == REPORT.step_config
    assert config.cv_std("roc_auc") == 0.02 and config.cv_std("rmse") is None
    assert config.findings == REPORT.findings and [f.feature for f in config.suspicious] == ["late"]
    assert VersionConfig.from_dict({}) == VersionConfig()  # a version registered by hand


def test_findings_ride_on_leaderboard_rows_and_old_rows_have_none() -> None:
    row = LeaderboardRow(1, 3, "ridge", 0.99, findings=REPORT.findings)
    loaded = LeaderboardRow.from_dict(json.loads(json.dumps(row.to_dict())))
    assert loaded == row and loaded.suspicious and loaded.flags == ["leak late", "constant currency"]
    old = LeaderboardRow.from_dict({"rank": 1, "version": 3, "algorithm": "ridge", "score": 0.99})
    assert old.findings == () and not old.suspicious


def test_a_candidate_is_its_train_steps_outputs() -> None:
    reference = pl.DataFrame({"x": [1.0], "g": ["a"]})
    outputs = Candidate(b"bundle", reference, REPORT).to_dict()
    assert Candidate.is_one(outputs)
    again = Candidate.from_dict(outputs, where="steps.best.inputs[0]")
    assert again.bundle == b"bundle" and again.report == REPORT and again.reference is reference


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"report": REPORT.to_dict()}, r"steps.best.inputs\[1\] is not a candidate: it lacks bundle"),
        ({"bundle": "text", "report": REPORT.to_dict()}, r"its bundle is str, not bytes"),
        ({"bundle": b"b", "report": {"rows": 3}}, r"inputs\[1\].report is not a train report: it lacks algorithm"),
        (
            {"bundle": b"b", "report": {**REPORT.to_dict(), "record": "loopline.selection"}},
            r"it is a 'loopline.selection' record",
        ),
        ({"bundle": b"b", "report": [1, 2]}, r"got list, not a mapping"),
    ],
)
def test_a_foreign_input_is_a_config_error_naming_it(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        Candidate.from_dict(value, where="steps.best.inputs[1]")
    assert info.value.key is not None and info.value.key.startswith("steps.best.inputs[1]")


def test_a_selection_round_trips_and_reads_the_gate_of_earlier_releases() -> None:
    gate = GateDecision(True, "gain", "roc_auc", 0.7, 0.8, 0.01, champion=1, challenger=2)
    selection = Selection(
        model="m",
        candidates=(CandidateSummary(2, "lightgbm", {"valid": {"roc_auc": 0.8}}),),
        best=2,
        promote=True,
        reason="gain",
        gate=gate,
        metric="roc_auc",
        leaderboard=(LeaderboardRow(1, 2, "lightgbm", 0.8, valid=0.8, best=True, promoted=True),),
    )
    data = json.loads(json.dumps(selection.to_dict()))
    assert Selection.is_one(data) and Selection.from_dict(data) == selection and selection.promoted == 2
    old_gate = {"champion": 1, "challenger": 2, "metric": "roc_auc", "champion_score": 0.7, "challenger_score": 0.8}
    old = {k: v for k, v in data.items() if k not in ("record", "leaderboard")} | {"gate": old_gate}
    loaded = Selection.from_dict(old)
    assert Selection.is_one(old) and loaded.gate is not None
    assert (loaded.gate.promote, loaded.gate.reason, loaded.gate.champion) == (True, "gain", 1)
    assert loaded.leaderboard == ()


def test_decisions_round_trip() -> None:
    assert RetrainDecision.from_dict(RetrainDecision(True, "drift").to_dict()) == RetrainDecision(True, "drift")
    nan_gate = GateDecision.from_dict({"metric": "f1", "challenger_score": 0.5})
    assert math.isnan(nan_gate.champion_score) and nan_gate.challenger_score == 0.5


def test_a_cross_validation_summary_round_trips_inside_the_report() -> None:
    cv = CrossValidation(
        method="group",
        folds=2,
        seed=4,
        fold_rows=({"train": 60, "valid": 40}, {"train": 40, "valid": 60}),
        fold_metrics=({"roc_auc": 0.7}, {"roc_auc": 0.9}),
        mean={"roc_auc": 0.8},
        std={"roc_auc": 0.1},
        group_column="store",
        fit_s=1.5,
    )
    report = TrainReport("a", {"cv": cv.mean}, {}, {}, [], Features(("x",)), "y", "binary", "f", {}, {}, cv=cv)
    again = TrainReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report and isinstance(again.cv, CrossValidation)
    version = VersionConfig.from_dict(json.loads(json.dumps(report.version_config())))
    assert version.cv == cv and version.cv_std("roc_auc") == 0.1 and version.cv_std("log_loss") is None
    assert CrossValidation.from_dict(None) is None and VersionConfig.from_dict({}).cv is None
