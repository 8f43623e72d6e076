"""The loop policy: the retrain decision and the gate (promotion and retraining end to end: test_retrain.py)."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import numpy as np
import polars as pl
import pytest
from tests._candidates import frame as toy_frame
from tests._candidates import stub_candidate

from loopline.core.config import DriftConfig, RetrainConfig
from loopline.core.errors import DataError
from loopline.core.records import Candidate, Finding
from loopline.monitor import drift_report
from loopline.run import PromotionRule, decide_retrain, gate, promote, rank_candidates
from loopline.store import Store
from loopline.train import TrainSpec, train_candidate

NUMERIC, CATEGORICAL = ["x", "y"], ["colour"]


def make_frame(
    seed: int, *, n: int = 4000, mean: float = 0.0, mix: tuple[float, float, float] = (0.5, 0.3, 0.2)
) -> pl.DataFrame:
    """Two numeric features (``x`` normal, ``y`` exponential) and one categorical (``colour``)."""
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "x": rng.normal(mean, 1.0, n),
            "y": rng.exponential(2.0, n),
            "colour": rng.choice(["red", "green", "blue"], n, p=list(mix)),
        }
    )


@pytest.fixture
def frame() -> Callable[..., pl.DataFrame]:
    return make_frame


@pytest.fixture
def reference() -> pl.DataFrame:
    return make_frame(1)


def test_retrain_on_drift_names_the_drifted_features(
    reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]
) -> None:
    report = drift_report(reference, frame(2, mean=1.0, mix=(0.2, 0.3, 0.5)), numeric=NUMERIC, categorical=CATEGORICAL)
    decision = decide_retrain(report, RetrainConfig(), DriftConfig())
    assert decision.retrain
    assert decision.reason.startswith("2 of 3 features drifted (1 needed): x (PSI ")
    assert "colour (PSI " in decision.reason


def test_no_retrain_without_drift(reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]) -> None:
    decision = decide_retrain(
        drift_report(reference, frame(2), numeric=NUMERIC, categorical=CATEGORICAL), RetrainConfig(), DriftConfig()
    )
    assert not decision.retrain
    assert decision.reason == "0 of 3 features drifted; 1 needed to retrain"


def test_min_drifted_features_comes_from_the_drift_config(
    reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]
) -> None:
    report = drift_report(reference, frame(2, mean=1.0), numeric=NUMERIC, categorical=CATEGORICAL)
    decision = decide_retrain(report, RetrainConfig(), DriftConfig(min_drifted_features=2))
    assert not decision.retrain
    assert "1 of 3 features drifted; 2 needed" in decision.reason


def test_a_joint_shift_the_domain_classifier_sees_retrains_though_no_feature_drifted(
    reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]
) -> None:
    from dataclasses import replace

    from loopline.monitor import MultivariateDrift

    quiet = drift_report(reference, frame(2), numeric=NUMERIC, categorical=CATEGORICAL)
    assert not quiet.drifted
    joint = MultivariateDrift("drift", 0.81, 1e-9, 0.01, 400, 400, {"x": 0.2}, reason="AUC 0.81 > chance")
    decision = decide_retrain(replace(quiet, multivariate=joint), RetrainConfig(), DriftConfig())
    assert decision.retrain and "the domain classifier tells the traffic from the training rows" in decision.reason
    no_drift = replace(joint, status="no drift")
    assert not decide_retrain(replace(quiet, multivariate=no_drift), RetrainConfig(), DriftConfig()).retrain


def test_no_retrain_when_on_drift_is_off(reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]) -> None:
    report = drift_report(reference, frame(2, mean=1.0), numeric=NUMERIC, categorical=CATEGORICAL)
    decision = decide_retrain(report, RetrainConfig(on_drift=False), DriftConfig())
    assert not decision.retrain and "on_drift is false" in decision.reason


def test_no_retrain_on_too_few_current_rows(reference: pl.DataFrame, frame: Callable[..., pl.DataFrame]) -> None:
    report = drift_report(reference, frame(2, n=60, mean=3.0), numeric=NUMERIC, categorical=CATEGORICAL)
    assert report.dataset_drift
    decision = decide_retrain(report, RetrainConfig(), DriftConfig())
    assert not decision.retrain
    assert decision.reason == "only 60 current rows; a retrain decision needs at least 100"
    assert decide_retrain(report, RetrainConfig(), DriftConfig(), min_rows=50).retrain


def test_gate_promotes_a_clear_winner() -> None:
    decision = gate({"roc_auc": 0.70}, {"roc_auc": 0.75}, metric="roc_auc", min_improvement=0.01)
    assert decision.promote
    assert (decision.champion_score, decision.challenger_score, decision.metric) == (0.70, 0.75, "roc_auc")
    assert "gain +0.0500 > 0.01): promote" in decision.reason


def test_gate_keeps_the_champion_on_a_small_gain_a_tie_or_a_loss() -> None:
    assert not gate({"roc_auc": 0.70}, {"roc_auc": 0.705}, metric="roc_auc", min_improvement=0.01).promote
    assert not gate({"roc_auc": 0.70}, {"roc_auc": 0.70}, metric="roc_auc").promote
    loss = gate({"roc_auc": 0.70}, {"roc_auc": 0.65}, metric="roc_auc")
    assert not loss.promote and "keep the champion" in loss.reason


def test_gate_lower_is_better() -> None:
    better = gate({"rmse": 10.0}, {"rmse": 8.0}, metric="rmse", higher_is_better=False, min_improvement=1.0)
    assert better.promote and "lower is better, gain +2.0000" in better.reason
    worse = gate({"rmse": 10.0}, {"rmse": 12.0}, metric="rmse", higher_is_better=False)
    assert not worse.promote and "gain -2.0000" in worse.reason
    assert not gate({"rmse": 10.0}, {"rmse": 9.5}, metric="rmse", higher_is_better=False, min_improvement=1).promote


def test_gate_without_a_champion_and_with_nan() -> None:
    first = gate(None, {"f1": 0.5}, metric="f1")
    assert first.promote and math.isnan(first.champion_score) and "no champion" in first.reason
    assert not gate(None, {"f1": math.nan}, metric="f1").promote
    assert not gate({"f1": 0.5}, {"f1": math.nan}, metric="f1").promote
    assert gate({"f1": math.nan}, {"f1": 0.5}, metric="f1").promote


def test_gate_missing_metric_names_it_and_the_available_ones() -> None:
    with pytest.raises(DataError, match=r"challenger has no metric 'roc_au' \(available: f1, roc_auc\)\. Did you"):
        gate({"roc_auc": 0.7}, {"roc_auc": 0.8, "f1": 0.5}, metric="roc_au")
    with pytest.raises(
        DataError, match=r"champion has no metric 'rmse' \(available: none\)\. Set monitor.retrain.metric"
    ):
        gate({}, {"rmse": 1.0}, metric="rmse", higher_is_better=False)


def test_the_gate_hint_names_the_key_the_metric_came_from() -> None:
    with pytest.raises(DataError, match=r"Did you mean 'roc_auc'\? Set steps.best.metric to one of the available"):
        gate({"roc_auc": 0.7}, {"roc_auc": 0.8}, metric="roc_au", metric_key="steps.best.metric")


def test_the_gate_takes_the_metric_direction_from_the_train_stage() -> None:
    assert gate({"log_loss": 0.6}, {"log_loss": 0.5}, metric="log_loss").promote  # lower is better
    assert not gate({"log_loss": 0.5}, {"log_loss": 0.6}, metric="log_loss").promote
    assert gate({"custom": 1.0}, {"custom": 2.0}, metric="custom").promote  # unknown: higher is better


@functools.cache
def _servable_bundle() -> bytes:
    """A real bundle: promotion loads it before the stage changes."""
    spec = TrainSpec(target="label", numeric=["x"], categorical=["group"], estimator="logistic_regression")
    return train_candidate(toy_frame(200, 1), toy_frame(80, 2), spec).bundle.to_bytes()


def suspicious_candidate(*findings: Finding) -> Candidate:
    candidate = stub_candidate(_servable_bundle())
    return Candidate(candidate.bundle, None, dataclasses.replace(candidate.report, findings=findings))


LEAK = Finding("target_leakage", "late_minutes", "feature 'late_minutes' alone predicts the target...", 1.0)
PERFECT = Finding("perfect_score", None, "validation roc_auc 1.0000 on 300 rows...", 1.0)
EMPTY = Finding("all_null", "sensor", "feature 'sensor' is missing in all 10 training rows; dropped.", None, "dropped")


def test_promotion_refuses_a_suspicious_candidate_unless_the_rule_allows_it(store: Store) -> None:
    leaky = store.models.register_candidate("m", suspicious_candidate(LEAK, PERFECT, EMPTY))
    rule = PromotionRule(allow_key="steps.best.allow_suspicious")
    decision = promote(store, "m", leaky, None, rule, run_id="r1")
    assert not decision.promote and store.models.production("m") is None
    assert decision.reason == (
        "v1 is suspicious, not promoted: feature 'late_minutes' alone predicts the target (one-feature score "
        "1.0000); near-perfect validation score (1.0000). Remove the leaking feature (or check the splits "
        "overlap), or set steps.best.allow_suspicious: true to promote it anyway."
    )
    # promote: always skips the holdout comparison, not this check
    assert not promote(store, "m", leaky, None, dataclasses.replace(rule, mode="always"), run_id="r1").promote
    allowed = promote(store, "m", leaky, None, dataclasses.replace(rule, allow_suspicious=True), run_id="r2")
    assert allowed.promote and store.models.production("m").version == 1  # type: ignore[union-attr]
    assert allowed.reason.startswith("no production model yet; v1 is suspicious (feature 'late_minutes' alone")
    assert allowed.reason.endswith("promoted as steps.best.allow_suspicious is true")


def test_dropped_features_alone_do_not_make_a_candidate_suspicious(store: Store) -> None:
    version = store.models.register_candidate("m", suspicious_candidate(EMPTY))
    assert version.typed_config.findings == (EMPTY,) and version.typed_config.suspicious == ()
    assert promote(store, "m", version, None, PromotionRule(), run_id="r").promote
    (row,) = rank_candidates([version], "roc_auc")
    assert row.findings == (EMPTY,) and not row.suspicious and row.flags == ["all-null sensor"]


def test_a_retrain_keeps_the_select_steps_allowance() -> None:
    rule = PromotionRule.for_retrain(RetrainConfig(), "always", allow_suspicious=True, allow_key="steps.b.x")
    assert (rule.mode, rule.allow_suspicious, rule.allow_key) == ("if_better", True, "steps.b.x")
    assert PromotionRule.for_retrain(RetrainConfig(), "if_better").allow_suspicious is False
