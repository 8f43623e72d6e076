"""The loop's triggers against sampling error: a metric drop within the error of the baseline and the window does
not retrain, a real one does (monitor.loop.metric_drop_significance); a drift too small to matter does not count
(monitor.loop.min_drift_psi); the counts the error is computed from are recorded at training and per window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tests.run._served import post_labels, serve
from tests.run.test_window_accuracy import START, trained

from loopline.core.config import LoopConfig, MonitorConfig
from loopline.core.errors import ConfigError
from loopline.core.records import PERFORMANCE_REFERENCE_KEY, VersionConfig
from loopline.core.yamlfile import load_pipeline
from loopline.monitor import drift_report
from loopline.run import check_windows
from loopline.run._service import _baseline_sample
from loopline.run.policy import LoopSignals, MetricSample, drift_trigger, hanley_mcneil, metric_trigger, standard_error
from loopline.store import Store

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def monitor(**loop: object) -> MonitorConfig:
    return MonitorConfig(model="m", loop=LoopConfig.model_validate(loop))


def signals(
    baseline: float, realised: float, *, baseline_rows: int, baseline_positives: int, rows: int, positives: int
) -> LoopSignals:
    return LoopSignals(
        NOW, metric="roc_auc", baseline=baseline, realised=realised, realised_rows=rows, realised_positives=positives,
        baseline_sample=MetricSample(baseline_rows, baseline_positives),
    )  # fmt: skip


def test_a_drop_within_the_sampling_error_of_a_small_baseline_does_not_fire() -> None:
    """0.85 on 200 validation rows vs 0.78 on 1000 window rows: a 0.07 drop, past the 0.05 margin, is 1.9
    standard errors: what a lucky 200-row baseline gives by chance."""
    noisy = signals(0.85, 0.78, baseline_rows=200, baseline_positives=60, rows=1000, positives=300)
    decision = metric_trigger(noisy, monitor())
    assert not decision.fire and decision.value == pytest.approx(0.07)
    assert "within sampling error at 0.00135, monitor.loop.metric_drop_significance" in decision.reason
    assert "but z 1.87 on the sampling error of the baseline and window (se 0.0374) < 3.00" in decision.reason
    assert metric_trigger(noisy, monitor(metric_drop_significance=0.05)).fire  # 1.87 > 1.64
    assert metric_trigger(noisy, monitor(metric_drop_significance=None)).fire  # the margin alone decides


def test_a_real_drop_fires_and_the_margin_still_applies() -> None:
    real = signals(0.85, 0.70, baseline_rows=2000, baseline_positives=600, rows=1000, positives=300)
    decision = metric_trigger(real, monitor())
    assert decision.fire and decision.value == pytest.approx(0.15)
    assert decision.reason.endswith(
        "z 6.94 on the sampling error of the baseline and window (se 0.0216) >= 3.00: significant at 0.00135)"
    )
    large = signals(0.85, 0.82, baseline_rows=50_000, baseline_positives=15_000, rows=50_000, positives=15_000)
    small = metric_trigger(large, monitor())  # significant (z about 9) but within the 0.05 margin
    assert not small.fire and small.reason.endswith("(drop +0.0300 <= 0.05)")


def test_a_side_without_counts_adds_no_error_and_neither_leaves_the_margin() -> None:
    window_only = LoopSignals(
        NOW, metric="roc_auc", baseline=0.85, realised=0.78, realised_rows=100, realised_positives=30
    )
    decision = metric_trigger(window_only, monitor())
    assert not decision.fire and "sampling error of the window (se" in decision.reason
    bare = LoopSignals(NOW, metric="roc_auc", baseline=0.85, realised=0.78, realised_rows=1000)
    assert metric_trigger(bare, monitor()).reason.endswith("(drop +0.0700 > 0.05)")  # no counts: as before
    loss = LoopSignals(NOW, metric="log_loss", baseline=0.40, realised=0.52, realised_rows=1000)
    assert metric_trigger(loss, monitor()).fire  # no closed form for log_loss: the margin decides


def test_accuracy_uses_a_binomial_error_on_the_rows() -> None:
    assert standard_error("accuracy", 0.8, MetricSample(400)) == pytest.approx(0.02)
    assert standard_error("f1", 0.6, MetricSample(1000, 100)) == pytest.approx(np.sqrt(0.24 / 100))
    assert standard_error("f1", 0.6, MetricSample(1000)) is None  # needs the positives
    assert standard_error("rmse", 0.6, MetricSample(1000, 100)) is None
    accuracy = LoopSignals(
        NOW, metric="accuracy", baseline=0.90, realised=0.82, realised_rows=100, baseline_sample=MetricSample(100)
    )
    assert not metric_trigger(accuracy, monitor()).fire  # 0.08 on 100 rows each: z 1.6
    many = LoopSignals(
        NOW, metric="accuracy", baseline=0.90, realised=0.82, realised_rows=5000, baseline_sample=MetricSample(5000)
    )
    assert metric_trigger(many, monitor()).fire


def test_the_hanley_mcneil_error_matches_the_spread_of_auc_over_samples() -> None:
    """AUCs of one scorer on 500 samples of 60 positives and 140 negatives: their standard deviation is what
    Hanley-McNeil says (within 15%), so the z of the trigger is on the right scale."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(7)
    labels = np.r_[np.ones(60), np.zeros(140)]
    aucs = [roc_auc_score(labels, labels * 1.2 + rng.normal(0, 1, 200)) for _ in range(500)]
    mean, spread = float(np.mean(aucs)), float(np.std(aucs))
    assert 0.75 < mean < 0.85
    assert hanley_mcneil(mean, 60, 140) == pytest.approx(spread, rel=0.15)


def test_bad_significance_and_psi_floor_settings_name_the_key(tmp_path: Path) -> None:
    path, head = tmp_path / "pipeline.yaml", "name: p\nsteps:\n  a: {type: derive}\nmonitor:\n  model: m\n"
    for value in ("1.5", "0", "-0.1"):
        path.write_text(f"{head}  loop: {{metric_drop_significance: {value}}}\n")
        with pytest.raises(ConfigError, match=r"monitor.loop.metric_drop_significance.*(less|greater) than"):
            load_pipeline(path)
    path.write_text(f"{head}  loop: {{min_drift_psi: -1}}\n")
    with pytest.raises(ConfigError, match=r"monitor.loop.min_drift_psi.*greater than or equal to 0"):
        load_pipeline(path)
    assert monitor(metric_drop_significance=None).loop.metric_drop_significance is None  # the margin alone
    assert LoopConfig().metric_drop_significance == 0.00135 and LoopConfig().min_drift_psi == 0.1


def frame(seed: int, *, shift: float = 0.0, n: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame({"x": rng.normal(shift, 1.0, n), "y": rng.normal(0.0, 1.0, n)})


def test_a_significant_but_tiny_shift_does_not_count_as_drift() -> None:
    """On 20,000 rows a shift of 0.1 standard deviations is significant (KS) but moves PSI by about 0.01."""
    tiny = drift_report(frame(1, n=20_000), frame(2, shift=0.1, n=20_000), numeric=["x", "y"], categorical=[])
    assert tiny.drifted == ["x"] and tiny.features[0].psi < 0.1
    decision = drift_trigger(tiny, {"x": 0.8, "y": 0.2}, monitor())
    assert not decision.fire and decision.value == 0.0
    assert "0 feature(s) drifted (none)" in decision.reason
    assert "1 more below PSI 0.1 not counted (x, monitor.loop.min_drift_psi)" in decision.reason
    assert drift_trigger(tiny, {"x": 0.8, "y": 0.2}, monitor(min_drift_psi=None)).fire  # every flagged one counts
    large = drift_report(frame(1, n=20_000), frame(2, shift=1.0, n=20_000), numeric=["x", "y"], categorical=[])
    assert drift_trigger(large, {"x": 0.8, "y": 0.2}, monitor()).fire


def test_the_counts_are_recorded_at_training_and_per_window(store: Store) -> None:
    traffic = trained(store)
    version = store.models.get("loop", 1)
    support = version.typed_config.support
    reference = store.artifacts.get_table(version.config[PERFORMANCE_REFERENCE_KEY])
    assert support["valid"] == {"rows": reference.height, "positives": int(reference["label"].sum())}
    test = support["test"]  # the baseline is the test score: its counts are the test split's
    assert version.metrics["test"]["roc_auc"] > 0.5 and 0 < test["positives"] < test["rows"]
    assert _baseline_sample(version, "roc_auc") == MetricSample(test["rows"], test["positives"])
    ids = serve(store, "loop", 1, traffic, START, timedelta(seconds=18), prefix="p")  # 200 rows per hour
    truth = traffic["y"].to_list()
    post_labels(store, "loop", ids[:200], truth[:200])
    first = check_windows(store, MonitorConfig(model="loop"), "1h", now=START + timedelta(hours=1, seconds=30)).closed
    assert first[0].labelled_rows == 200 and first[0].labelled_positives == sum(bool(t) for t in truth[:200])
    assert type(first[0]).from_dict(first[0].to_dict()).labelled_positives == first[0].labelled_positives


def test_a_version_config_keeps_its_support_and_old_ones_write_back_unchanged() -> None:
    old = {"features": {"numeric": ["x"], "categorical": []}, "rows": {"train": 10, "valid": 5}}
    assert "support" not in VersionConfig.from_dict(old).to_dict()
    counted = VersionConfig.from_dict({**old, "support": {"valid": {"rows": 5, "positives": 2}, "bad": 3}})
    assert counted.support == {"valid": {"rows": 5, "positives": 2}}
    assert VersionConfig.from_dict(counted.to_dict()).support == counted.support
