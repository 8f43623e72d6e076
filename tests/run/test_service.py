"""The loop service in process: the tick clock, the enrich hook that brings realised metrics in, and a failed
retrain recorded as an error event (end to end through the CLI: tests/cli/test_loop_service.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from loopline import Pipeline
from loopline.core.config import LoopConfig, MonitorConfig
from loopline.core.errors import ConfigError
from loopline.run._service import LoopService, next_tick
from loopline.run.policy import LoopSignals
from loopline.store import Store
from loopline.store.loop import LoopStore

NOW = datetime(2026, 12, 6, 12, 7, 30, tzinfo=UTC)


def test_the_next_tick_follows_the_interval_or_the_cron_schedule() -> None:
    assert next_tick(NOW, LoopConfig()) == NOW + timedelta(minutes=15)  # the default interval
    assert next_tick(NOW, LoopConfig(interval="1h")) == NOW + timedelta(hours=1)
    assert next_tick(NOW, LoopConfig(schedule="0 * * * *")) == datetime(2026, 12, 6, 13, tzinfo=UTC)
    assert next_tick(NOW, LoopConfig(schedule="0 * * * *"), interval="5m") == NOW + timedelta(minutes=5)
    assert next_tick(NOW, LoopConfig(interval="1h"), schedule="*/10 * * * *") == datetime(
        2026, 12, 6, 12, 10, tzinfo=UTC
    )


def unwindowed(**loop: object) -> Pipeline:
    """A pipeline the loop watches but cannot retrain (it declares no moving window)."""
    return Pipeline("plain", monitor=MonitorConfig(model="plain", loop=LoopConfig.model_validate(loop))).add(
        "data", lambda: pl.DataFrame({"x": [1.0]})
    )


def test_an_enrich_hook_brings_a_realised_metric_that_fires_and_a_failed_retrain_is_an_error_event(
    store: Store,
) -> None:
    def labels(store: Store, config: MonitorConfig, signals: LoopSignals) -> LoopSignals:
        return dataclasses.replace(signals, baseline=0.9, realised=0.7, realised_rows=250)

    result = LoopService(store, unwindowed(), enrich=labels).tick()
    assert result.outcome == "error"
    assert [e.kind for e in result.events] == ["tick", "trigger", "retrain", "error"]
    tick, trigger, _, error = result.events
    assert "drift not checked: model 'plain' has no production version" in tick.reason
    assert "realised roc_auc 0.7000" in tick.reason and tick.details["realised"] == 0.7
    assert trigger.details["trigger"] == "metric" and trigger.reason.startswith("realised roc_auc 0.7000 on 250")
    assert error.reason.startswith("retrain failed: pipeline 'plain' has no select step")
    assert error.details == {"type": "ConfigError"}
    assert LoopStore(store.engine).holder("retrain:plain") is None  # released after the failure


def test_without_signals_nothing_fires_and_the_skip_says_why(store: Store) -> None:
    result = LoopService(store, unwindowed()).tick()
    assert result.outcome == "no trigger" and [e.kind for e in result.events] == ["tick", "skip"]
    skip = result.events[-1]
    assert skip.reason.startswith("no trigger fired: no drift report this tick; no realised or estimated roc_auc")
    assert [d["trigger"] for d in skip.details["decisions"]] == ["drift", "metric", "schedule", "volume"]


def test_a_pipeline_without_monitor_cannot_loop(store: Store) -> None:
    with pytest.raises(ConfigError, match="has no 'monitor:' section for the loop to watch"):
        LoopService(store, Pipeline("bare")).tick()


def test_drift_with_labels_is_a_warning_event_and_the_realised_metric_decides(store: Store) -> None:
    import numpy as np

    from loopline.monitor import drift_report

    rng = np.random.default_rng(0)
    before = pl.DataFrame({"x": rng.normal(0, 1, 2000), "y": rng.normal(0, 1, 2000)})
    after = pl.DataFrame({"x": rng.normal(1.5, 1, 2000), "y": rng.normal(0, 1, 2000)})
    report = drift_report(before, after, numeric=["x", "y"], categorical=[])
    realised = 0.79

    def labels(store: Store, config: MonitorConfig, signals: LoopSignals) -> LoopSignals:
        return dataclasses.replace(
            signals, drift=report, importance={"x": 3.0, "y": 1.0}, baseline=0.8, realised=realised, realised_rows=400
        )

    result = LoopService(store, unwindowed(), enrich=labels).tick()
    assert result.outcome == "no trigger" and [e.kind for e in result.events] == ["tick", "warning", "skip"]
    warning = result.events[1]
    assert warning.details["trigger"] == "drift" and warning.details["weights"] == {"x": 0.75}
    assert "the metric trigger decides (monitor.loop.drift_when_labelled: warn)" in warning.reason
    history = LoopStore(store.engine).events("plain", kinds=("warning",))
    assert [e.id for e in history] == [warning.id]
    realised = 0.6  # the labels say the drift hurts: the realised drop retrains
    hurt = LoopService(store, unwindowed(), enrich=labels).tick()
    assert [e.kind for e in hurt.events][:4] == ["tick", "warning", "trigger", "retrain"]
    assert hurt.events[2].details["trigger"] == "metric"


def test_a_retrain_request_fires_once_past_the_cooldown(store: Store) -> None:
    loops = LoopStore(store.engine)
    loops.record("plain", "retrain", "an earlier retrain, inside the cooldown", details={})
    assert LoopService(store, unwindowed(cooldown="6h")).tick().outcome == "no trigger"
    loops.record("plain", "request", "requested from the dashboard (by ui:token:admin)", details={})
    result = LoopService(store, unwindowed(cooldown="6h")).tick()
    trigger = next(e for e in result.events if e.kind == "trigger")
    assert trigger.details["trigger"] == "requested" and "requested from the dashboard" in trigger.reason
    # past the cooldown: the retrain ran (and failed: the pipeline cannot retrain), it did not wait
    assert result.outcome == "error" and "cooldown" not in " ".join(e.reason for e in result.events if e.kind == "skip")
    # honoured once: the next tick has no request newer than the retrain it started
    assert LoopService(store, unwindowed(cooldown="6h")).tick().outcome == "no trigger"
