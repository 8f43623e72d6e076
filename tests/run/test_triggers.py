"""The loop service's triggers and cooldown (run/policy/'s triggers section) and its config (monitor.loop)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from loopline.core.config import LoopConfig, MonitorConfig, RetrainConfig, parse_duration
from loopline.core.errors import ConfigError
from loopline.core.yamlfile import load_pipeline
from loopline.monitor import MIN_LABELS, DriftReport, drift_report
from loopline.run.policy import (
    LoopSignals,
    cooldown,
    drift_importance,
    drift_trigger,
    evaluate_triggers,
    metric_trigger,
    schedule_trigger,
    volume_trigger,
)

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def frame(seed: int, *, x_mean: float = 0.0, n: int = 2000) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame({"x": rng.normal(x_mean, 1.0, n), "y": rng.normal(0.0, 1.0, n)})


@pytest.fixture(scope="module")
def x_drifted() -> DriftReport:
    """``x`` drifted (its mean moved by 1.5 standard deviations), ``y`` did not."""
    report = drift_report(frame(1), frame(2, x_mean=1.5), numeric=["x", "y"], categorical=[])
    assert report.drifted == ["x"]
    return report


def monitor(**loop: Any) -> MonitorConfig:
    return MonitorConfig(model="m", loop=LoopConfig(**loop))


def test_drift_on_an_important_feature_fires_and_on_an_unimportant_one_does_not(x_drifted: DriftReport) -> None:
    important = drift_trigger(x_drifted, {"x": 0.8, "y": 0.2}, monitor())
    assert important.fire and important.trigger == "drift" and important.value == pytest.approx(0.8)
    assert important.reason == "1 feature(s) drifted (x), 80% of the model's feature importance >= 20%"
    unimportant = drift_trigger(x_drifted, {"x": 0.05, "y": 0.95}, monitor())
    assert not unimportant.fire and unimportant.value == pytest.approx(0.05)
    assert unimportant.reason == "1 feature(s) drifted (x), 5% of the model's feature importance: below 20%"


def test_without_importance_each_feature_weighs_the_same(x_drifted: DriftReport) -> None:
    equal = drift_trigger(x_drifted, None, monitor())
    assert equal.fire and equal.value == pytest.approx(0.5)
    assert "50% of the features (no importance recorded)" in equal.reason
    assert drift_importance(x_drifted, {"other": 1.0}) == (0.5, False)  # names none of the features: equal
    assert drift_importance(x_drifted, {"x": -0.1, "y": 0.3}) == (0.0, True)  # negative counts as zero
    assert not drift_trigger(x_drifted, None, monitor(min_drift_importance=0.6)).fire


def test_the_drift_trigger_respects_on_drift_min_features_and_min_rows(x_drifted: DriftReport) -> None:
    off = MonitorConfig(model="m", retrain=RetrainConfig(on_drift=False))
    assert drift_trigger(x_drifted, None, off).reason.startswith("retraining on drift is off (monitor.retrain.on_drift")
    two = MonitorConfig.model_validate({"model": "m", "drift": {"min_drifted_features": 2}})
    decision = drift_trigger(x_drifted, {"x": 1.0}, two)
    assert not decision.fire and decision.reason.endswith("fewer than 2 drifted")
    few = drift_report(frame(1), frame(2, x_mean=1.5, n=50), numeric=["x", "y"], categorical=[])
    assert drift_trigger(few, {"x": 1.0}, monitor()).reason == "only 50 current rows; drift needs at least 100"
    assert drift_trigger(None, None, monitor()).reason == "no drift report this tick"


def test_a_realised_drop_fires_before_an_estimated_one_and_either_works_alone() -> None:
    signals = LoopSignals(NOW, metric="roc_auc", baseline=0.80, realised=0.70, realised_rows=500, estimated=0.79)
    realised = metric_trigger(signals, monitor())
    assert realised.fire and realised.value == pytest.approx(0.10)
    assert realised.reason == "realised roc_auc 0.7000 on 500 labelled rows vs 0.8000 at training (drop +0.1000 > 0.05)"
    estimated = metric_trigger(LoopSignals(NOW, metric="roc_auc", baseline=0.80, estimated=0.79), monitor())
    assert not estimated.fire and estimated.reason.startswith("estimated roc_auc 0.7900 vs 0.8000")
    assert metric_trigger(LoopSignals(NOW, metric="roc_auc", baseline=0.8), monitor()).reason == (
        "no realised or estimated roc_auc this tick"
    )
    assert "no baseline" in metric_trigger(LoopSignals(NOW, metric="roc_auc", realised=0.5), monitor()).reason
    assert not metric_trigger(signals, monitor(max_metric_drop=None)).fire


def test_a_metric_whose_lower_is_better_drops_when_it_rises() -> None:
    worse = metric_trigger(LoopSignals(NOW, metric="log_loss", baseline=0.40, realised=0.52), monitor())
    assert worse.fire and worse.value == pytest.approx(0.12)
    better = metric_trigger(LoopSignals(NOW, metric="log_loss", baseline=0.40, realised=0.30), monitor())
    assert not better.fire and better.value == pytest.approx(-0.10)


def test_the_schedule_fires_every_n_regardless() -> None:
    config = monitor(retrain_every="7d")
    assert schedule_trigger(None, NOW, config).fire
    assert not schedule_trigger(NOW - timedelta(days=6), NOW, config).fire
    due = schedule_trigger(NOW - timedelta(days=7), NOW, config)
    assert due.fire and due.reason == "last retrain 168.0h ago; retrain every 7d"
    assert not schedule_trigger(None, NOW, monitor()).fire


def test_the_volume_trigger_counts_new_rows() -> None:
    config = monitor(min_new_rows=1000)
    assert volume_trigger(1000, config).fire
    assert volume_trigger(999, config).reason == "999 new rows since the last retrain (1000 needed)"
    assert not volume_trigger(None, config).fire and not volume_trigger(10**6, monitor()).fire


def test_evaluate_triggers_gives_every_trigger_in_order(x_drifted: DriftReport) -> None:
    signals = LoopSignals(NOW, drift=x_drifted, importance={"x": 1.0}, new_rows=5)
    decisions = evaluate_triggers(signals, monitor(min_new_rows=10))
    assert [(d.trigger, d.fire) for d in decisions] == [
        ("drift", True),
        ("metric", False),
        ("schedule", False),
        ("volume", False),
    ]


def test_cooldown_blocks_a_second_retrain_unless_forced() -> None:
    loop = LoopConfig(cooldown="6h")
    assert not cooldown(None, NOW, loop).active
    recent = cooldown(NOW - timedelta(hours=2), NOW, loop)
    assert recent.active and recent.reason == (
        "last retrain 2.00h ago, cooldown 6h: wait until 2026-12-06T16:00:00+00:00"
    )
    assert not cooldown(NOW - timedelta(hours=2), NOW, loop, force=True).active
    assert not cooldown(NOW - timedelta(hours=6), NOW, loop).active


def test_durations_and_cron_schedules_are_checked() -> None:
    assert parse_duration("1d12h") == timedelta(hours=36) and parse_duration("15m") == timedelta(minutes=15)
    assert LoopConfig(schedule="0 * * * *").schedule == "0 * * * *"
    with pytest.raises(ValueError, match="'15 minutes' is not a duration"):
        LoopConfig(interval="15 minutes")
    with pytest.raises(ValueError, match="'0s' is not a positive duration"):
        LoopConfig(cooldown="0s")
    with pytest.raises(ValueError, match="'every hour' is not a cron schedule"):
        LoopConfig(schedule="every hour")
    with pytest.raises(ValueError, match="interval or monitor.loop.schedule, not both"):
        LoopConfig(interval="1h", schedule="0 * * * *")


def test_a_misspelt_loop_key_in_the_pipeline_file_suggests_the_right_one(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text("name: p\nsteps:\n  a: {type: derive}\nmonitor:\n  model: m\n  loop: {cooldwn: 1h}\n")
    with pytest.raises(ConfigError, match=r"unknown key 'monitor.loop.cooldwn'. Did you mean 'cooldown'\?"):
        load_pipeline(path)
    path.write_text("name: p\nsteps:\n  a: {type: derive}\nmonitor:\n  model: m\n  loop: {interval: soon}\n")
    with pytest.raises(ConfigError, match="monitor.loop.interval.*'soon' is not a duration"):
        load_pipeline(path)


def labelled_signals(report: DriftReport, *, realised: float, rows: int = 500) -> LoopSignals:
    return LoopSignals(
        NOW, drift=report, importance={"x": 0.7, "y": 0.3}, metric="roc_auc", baseline=0.80, realised=realised,
        realised_rows=rows,
    )  # fmt: skip


def test_with_labels_drift_is_a_warning_and_the_realised_drop_decides(x_drifted: DriftReport) -> None:
    kept = evaluate_triggers(labelled_signals(x_drifted, realised=0.79), monitor())
    drift, metric = kept[0], kept[1]
    assert not drift.fire and drift.warning and drift.weights == {"x": 0.7}
    assert "70% of the model's feature importance >= 20%, but 500 labelled rows give a realised metric" in drift.reason
    assert drift.to_dict()["weights"] == {"x": 0.7} and not metric.fire
    hurt = evaluate_triggers(labelled_signals(x_drifted, realised=0.60), monitor())
    assert [(d.trigger, d.fire, d.warning) for d in hurt[:2]] == [("drift", False, True), ("metric", True, False)]


def test_drift_retrains_without_labels_with_too_few_or_when_configured(x_drifted: DriftReport) -> None:
    unlabelled = dataclasses.replace(labelled_signals(x_drifted, realised=0.79), realised=None, realised_rows=0)
    assert evaluate_triggers(unlabelled, monitor())[0].fire
    few = labelled_signals(x_drifted, realised=0.79, rows=MIN_LABELS - 1)
    assert evaluate_triggers(few, monitor())[0].fire  # too few labels for a realised metric: drift decides
    retrain = evaluate_triggers(labelled_signals(x_drifted, realised=0.79), monitor(drift_when_labelled="retrain"))
    assert retrain[0].fire and not retrain[0].warning
    no_metric = evaluate_triggers(labelled_signals(x_drifted, realised=0.79), monitor(max_metric_drop=None))
    assert no_metric[0].fire  # the metric trigger is off: nothing else would catch the drift
    with pytest.raises(ValueError, match="drift_when_labelled\\n  Input should be 'warn' or 'retrain'"):
        LoopConfig.model_validate({"drift_when_labelled": "ignore"})


def test_the_drop_is_measured_against_the_version_test_score_not_a_good_first_window() -> None:
    """A fresh model whose windows score above its test split does not fire when they come back to it."""
    better_first = LoopSignals(NOW, metric="roc_auc", baseline=0.80, realised=0.77, realised_rows=500)
    decision = metric_trigger(better_first, monitor())
    assert not decision.fire and decision.value == pytest.approx(0.03)
    assert "vs 0.8000 at training" in decision.reason
