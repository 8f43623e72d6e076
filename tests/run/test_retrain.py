"""The retrain loop end to end on a small generated data set and a SQLite store: monitor.retrain's metric and
min_improvement decide whether the retrained challenger replaces the production model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from loopline import Pipeline
from loopline.core.config import MonitorConfig, RetrainConfig
from loopline.core.errors import ConfigError
from loopline.core.records import Selection
from loopline.run import Runner, retrain_and_gate, run_leaderboard
from loopline.store import Store

END = datetime(2013, 7, 1, tzinfo=UTC)
END_PARAM = "${params.end}"


def hourly() -> pl.DataFrame:
    """Hourly rows of 2013's first half; the label leans on ``g`` more and more as the months pass, so a model
    retrained on April-June differs from one trained on January-March."""
    start = datetime(2013, 1, 1, tzinfo=UTC)
    hours = int((END - start).total_seconds() // 3600)
    rng = np.random.default_rng(11)
    x, g = rng.normal(size=hours), rng.choice(["a", "b"], hours)
    trend = np.linspace(0.0, 2.0, hours)
    y = x * (2.0 - trend) + (g == "a") * trend * 1.5 + rng.normal(scale=0.8, size=hours) > 0.4
    return pl.DataFrame({"at": [start + timedelta(hours=i) for i in range(hours)], "x": x, "g": g, "y": y})


def loop_pipeline(retrain: RetrainConfig) -> Pipeline:
    data = hourly()
    return (
        Pipeline(
            "loop",
            params={"start": "2013-01-01", "valid_from": "2013-03-01", "test_from": "2013-03-16", "end": "2013-04-01"},
            monitor=MonitorConfig(model="loop", retrain=retrain),
        )
        .add("data", lambda: data)
        .add(
            "window",
            "derive",
            inputs=["data"],
            window={"column": "at", "start": "${params.start}", "end": "${params.end}"},
        )
        .add(
            "split",
            "split",
            inputs=["window"],
            target="y",
            method="time",
            time_column="at",
            valid_from="${params.valid_from}",
            test_from="${params.test_from}",
        )
        .add(
            "lin",
            "train",
            inputs=["split.train", "split.valid", "split.test"],
            target="y",
            numeric=["x"],
            categorical=["g"],
            estimator="logistic_regression",
        )
        .add("best", "select", inputs=["lin", "split.test"], model="loop", metric="roc_auc")
    )


def retrain(store: Store, metric: str, min_improvement: float) -> Selection:
    pipeline = loop_pipeline(RetrainConfig(metric=metric, min_improvement=min_improvement))
    return retrain_and_gate(store, pipeline, END)


def holdout_gains(store: Store, selection: Selection) -> dict[str, float]:
    """The challenger's gain over the champion on the retrain's holdout, per metric, in each metric's direction."""
    assert selection.gate is not None and selection.gate.champion is not None
    champion = store.models.get("loop", selection.gate.champion).metrics
    challenger = store.models.get("loop", selection.best).metrics
    (key,) = [k for k in challenger if k.startswith("holdout_")]
    auc = challenger[key]["roc_auc"] - champion[key]["roc_auc"]
    loss = champion[key]["log_loss"] - challenger[key]["log_loss"]
    return {"roc_auc": auc, "log_loss": loss}


def test_monitor_retrain_metric_and_min_improvement_decide_the_gate(store: Store) -> None:
    first = Runner(store).run(loop_pipeline(RetrainConfig())).output("best")
    assert first["promote"] and store.models.production("loop").version == 1  # type: ignore[union-attr]

    probe = retrain(store, "roc_auc", 1e9)  # never passes: measures the gains
    assert probe.gate is not None and probe.gate.metric == "roc_auc" and probe.gate.min_improvement == 1e9
    assert not probe.promote and "keep the champion" in probe.reason
    assert (probe.gate.champion, probe.gate.challenger) == (1, probe.best)
    assert store.models.production("loop").version == 1  # type: ignore[union-attr]
    gains = holdout_gains(store, probe)
    assert probe.gate.challenger_score - probe.gate.champion_score == pytest.approx(gains["roc_auc"])
    low, high = sorted(gains, key=gains.__getitem__)
    assert gains[high] > gains[low]
    between = (gains[low] + gains[high]) / 2

    # the same metric, a margin above its gain: kept
    kept = retrain(store, high, gains[high] + 0.01)
    assert not kept.promote and kept.gate is not None and kept.gate.metric == high
    # another metric, a margin between the two gains: kept
    other = retrain(store, low, between)
    assert not other.promote and other.gate is not None and other.gate.metric == low
    assert store.models.production("loop").version == 1  # type: ignore[union-attr]
    # the same margin on the metric that gained more, or a smaller margin on the same metric: promoted
    promoted = retrain(store, high, between)
    assert promoted.promote and promoted.gate is not None and promoted.gate.metric == high
    assert f"> {between:g}): promote" in promoted.reason
    assert promoted.refit is not None and promoted.refit.refitted and promoted.refit.of == promoted.best
    assert store.models.production("loop").version == promoted.promoted == promoted.refit.version  # type: ignore[union-attr]
    assert [row.promoted for row in promoted.leaderboard] == [True]
    assert store.models.events("loop")[-1]["reason"] == promoted.reason
    board = run_leaderboard(store, "loop")  # the latest run, rebuilt from the store
    assert [(row.version, row.promoted) for row in board.rows] == [(promoted.best, True)]


def test_the_retrain_run_registers_and_ranks_but_leaves_promotion_to_the_retrain_gate(store: Store) -> None:
    Runner(store).run(loop_pipeline(RetrainConfig()))
    selection = retrain(store, "roc_auc", 1e9)
    assert [v.version for v in store.models.list("loop")] == [1, 2] and selection.best == 2
    newest, first = store.runs.list(pipeline="loop")
    steps = {s.step: s for s in store.runs.get(newest.run_id).steps}
    assert steps["best"].config["promote"] == "never"  # the run record shows the select step deferred
    assert {s.step: s for s in store.runs.get(first.run_id).steps}["best"].config["promote"] == "if_better"
    assert selection.leaderboard[0].version == 2 and not selection.leaderboard[0].promoted


def test_a_retrain_metric_the_model_lacks_is_refused_before_any_work(store: Store) -> None:
    Runner(store).run(loop_pipeline(RetrainConfig()))
    with pytest.raises(ConfigError, match=r"monitor.retrain.metric 'roc_acu' is not a metric") as info:
        retrain(store, "roc_acu", 0.0)
    assert info.value.key == "monitor.retrain.metric"
    assert "Did you mean 'roc_auc'? Set monitor.retrain.metric to one of them." in str(info.value)
    assert len(store.models.list("loop")) == 1  # nothing retrained


def test_a_pipeline_without_a_moving_window_cannot_be_retrained(store: Store) -> None:
    pipeline = loop_pipeline(RetrainConfig())
    pipeline.params.pop("test_from")
    with pytest.raises(ConfigError, match="params test_from are not declared"):
        retrain_and_gate(store, pipeline, END)
