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
    InputField,
    Leaderboard,
    LeaderboardRow,
    RetrainDecision,
    Selection,
    Slice,
    SliceMetrics,
    ThreadInfo,
    Timings,
    Training,
    TrainReport,
    VersionConfig,
)

REPORT = TrainReport(
    algorithm="lightgbm",
    metrics={"valid": {"roc_auc": 0.8}, "cv": {"roc_auc": 0.79}},
    params={"n_estimators": 10},
    timings=Timings(fit_s=0.5, training=Training(stopped="converged", iterations=7)),
    input_schema=(InputField("x", "number", train_dtype="Float64"), InputField("g", "string", max_length=8)),
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
    slice_metrics=SliceMetrics({"valid": {"g": {"a": Slice(12, {"roc_auc": 0.75}), "null": Slice(3)}}}),
    threads=ThreadInfo(requested=1, granted=1, openmp=1, blas=None),
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


# A report as the train step of this release stores it (JSON in the run's artifacts, and through the repository
# in the model version's timings, input_schema and config columns): to_dict writes it back byte for byte.
STORED = {
    "record": "loopline.train_report",
    "algorithm": "hist_gradient_boosting",
    "metrics": {"train": {"roc_auc": 0.91}, "valid": {"roc_auc": 0.88}},
    "params": {"max_iter": 50, "random_state": 0},
    "timings": {
        "prep_s": 0.01,
        "fit_s": 0.4,
        "valid_score_s": 0.02,
        "total_s": 0.45,
        "training": {
            "stopped": "converged",
            "iterations": 31,
            "best_iteration": 21,
            "max_iterations": 50,
            "metric": "loss",
            "learning_curve": {"train": [0.6, 0.5], "valid": [0.62, 0.55]},
            "watched": "valid",
            "peak_rss_increase_mb": None,
            "train_metrics_rows": 300,
        },
    },
    "input_schema": [
        {"name": "x", "dtype": "number", "nullable": True, "train_dtype": "Float64"},
        {"name": "g", "dtype": "string", "nullable": True, "train_dtype": "String", "max_length": 4},
    ],
    "features": {"numeric": ["x"], "categorical": ["g"]},
    "target": "label",
    "task": "binary",
    "data_fingerprint": "ab12",
    "rows": {"train": 300, "valid": 100},
    "step_config": {"target": "label", "estimator": "hist_gradient_boosting", "slices": ["g"]},
    "lineage": None,
    "slice_metrics": {
        "valid": {"g": {"a": {"rows": 60, "roc_auc": 0.9, "accuracy": 0.8}, "other": {"rows": 4}}},
        "test": {"g": {}},
    },
    "cv": None,
    "threads": {"requested": None, "granted": 2, "openmp": 2, "blas": 2},
    "findings": [],
}

# The same report as a release before the record marker, the core budget, the curve's ``watched`` and the
# training types stored it: no marker, no ``granted``, fewer timings and training keys, a bare input schema.
OLD = {
    "algorithm": "lightgbm",
    "metrics": {"valid": {"rmse": 1.5}},
    "params": {"n_estimators": 10},
    "timings": {
        "prep_s": 0.01,
        "fit_s": 0.3,
        "total_s": 0.35,
        "training": {
            "stopped": None,
            "iterations": 10,
            "best_iteration": 10,
            "max_iterations": 10,
            "metric": None,
            "learning_curve": None,
        },
    },
    "input_schema": [{"name": "x", "dtype": "number", "nullable": True}],
    "features": {"numeric": ["x"], "categorical": []},
    "target": "y",
    "task": "regression",
    "data_fingerprint": "cd34",
    "rows": {"train": 80, "valid": 20},
    "step_config": {"target": "y"},
    "slice_metrics": {"valid": {"g": {"a": {"rows": 20, "rmse": 1.25}}}},
    "threads": {"requested": 1, "openmp": 1, "blas": None},
}


def test_a_stored_report_reads_as_records_and_writes_back_byte_for_byte() -> None:
    report = TrainReport.from_dict(json.loads(json.dumps(STORED)))
    assert report.timings.valid_score_s == 0.02 and report.timings.training is not None
    assert (report.timings.training.iterations, report.timings.training.watched) == (31, "valid")
    assert report.input_schema[1] == InputField("g", "string", True, "String", 4)
    assert report.threads == ThreadInfo(requested=None, granted=2, openmp=2, blas=2)
    assert report.slice_metrics is not None
    assert report.slice_metrics.splits["valid"]["g"]["a"] == Slice(60, {"roc_auc": 0.9, "accuracy": 0.8})
    assert report.slice_metrics.splits["valid"]["g"]["other"] == Slice(4)
    assert json.dumps(report.to_dict()) == json.dumps(STORED)
    version = VersionConfig.from_dict(json.loads(json.dumps(report.version_config())))
    assert (version.slice_metrics, version.threads) == (report.slice_metrics, report.threads)


def test_a_report_of_an_earlier_release_reads_as_records() -> None:
    report = TrainReport.from_dict(json.loads(json.dumps(OLD)))
    assert report.timings == Timings(
        prep_s=0.01,
        fit_s=0.3,
        total_s=0.35,
        training=Training(iterations=10, best_iteration=10, max_iterations=10),
    )
    assert list(report.timings.to_dict()) == ["prep_s", "fit_s", "total_s", "training"]  # no valid_score_s added
    assert report.input_schema == (InputField("x", "number"),)
    assert [field.to_dict() for field in report.input_schema] == OLD["input_schema"]
    assert report.threads == ThreadInfo(requested=1, granted=None, openmp=1, blas=None)
    assert report.slice_metrics == SliceMetrics({"valid": {"g": {"a": Slice(20, {"rmse": 1.25})}}})
    assert report.slice_metrics.to_dict() == OLD["slice_metrics"]
    assert report.params == OLD["params"] and report.step_config == OLD["step_config"]  # free-form JSON, as given
    assert TrainReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    # a version registered by hand has no timings at all; the leaderboard reads them as unknown
    assert Timings.from_dict({}) == Timings() and Timings().to_dict() == {}
    assert Timings.from_dict({"fit_s": 2, "training": "?"}) == Timings(fit_s=2.0)


def test_a_leaderboard_round_trips() -> None:
    board = Leaderboard("m", "r1", "roc_auc", "test", (LeaderboardRow(1, 2, "lightgbm", 0.8, test=0.8, best=True),))
    data = json.loads(json.dumps(board.to_dict()))
    assert list(data) == ["model", "run_id", "metric", "split", "rows"] and data["rows"][0]["version"] == 2
    assert Leaderboard.from_dict(data) == board


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
    assert again.profile is None and outputs["profile"] is None
    profiled = Candidate.from_dict(Candidate(b"bundle", None, REPORT, b"{}").to_dict())
    assert profiled.profile == b"{}"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"report": REPORT.to_dict()}, r"steps.best.inputs\[1\] is not a candidate: it lacks bundle"),
        ({"bundle": "text", "report": REPORT.to_dict()}, r"its bundle is str, not bytes"),
        ({"bundle": b"b", "profile": "{}", "report": REPORT.to_dict()}, r"its profile is str, not bytes"),
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
    report = TrainReport("a", {"cv": cv.mean}, {}, Timings(), (), Features(("x",)), "y", "binary", "f", {}, {}, cv=cv)
    again = TrainReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report and isinstance(again.cv, CrossValidation)
    version = VersionConfig.from_dict(json.loads(json.dumps(report.version_config())))
    assert version.cv == cv and version.cv_std("roc_auc") == 0.1 and version.cv_std("log_loss") is None
    assert CrossValidation.from_dict(None) is None and VersionConfig.from_dict({}).cv is None
