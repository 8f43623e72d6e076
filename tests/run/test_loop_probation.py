"""Probation in the loop on a real store: the loop promotes a deliberately worse version (trained on the other
regime, any challenger passing the gate), the traffic it then serves gets its labels, and the next tick rolls it
back with the reason in the audit trail and the loop's ``rollback``/``probation`` events (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from tests.run._served import post_labels, serve
from tests.run.test_retrain_loop import at, regimes, windowed

from loopline import Pipeline
from loopline.core.config import LoopConfig, MonitorConfig, ProbationConfig, RetrainConfig
from loopline.run import Runner
from loopline.run._loop_probation import check_probation
from loopline.run._service import LoopService
from loopline.store import Store
from loopline.store.loop import LoopStore


def watched(probation: ProbationConfig) -> Pipeline:
    retrain = RetrainConfig(min_improvement=-1.0, refit=False, probation=probation)  # any challenger passes
    pipeline = windowed(retrain, regimes())
    pipeline.monitor = MonitorConfig(model="loop", retrain=retrain, loop=LoopConfig(window="1h", cooldown="6h"))
    return pipeline


def february(rows: int) -> pl.DataFrame:
    """Rows of the regime v1 learnt (y follows x): the world the served traffic comes from."""
    data = regimes().filter((pl.col("at") >= at("2013-02-01")) & (pl.col("at") < at("2013-03-01")))
    return data.head(rows)


def promoted_by_the_loop(store: Store, pipeline: Pipeline) -> int:
    """v1 from a first run; then a forced tick retrains on April-June (y follows -x) and promotes v2."""
    Runner(store).run(pipeline)
    result = LoopService(store, pipeline, end=at("2013-07-01"), force=True).tick()
    kinds = [e.kind for e in result.events]
    assert kinds[-3:] == ["gate", "promotion", "probation"], kinds
    opened = result.events[-1]
    assert opened.details["state"] == "started" and opened.details["previous"] == 1
    window = pipeline.monitor.retrain.probation.window  # type: ignore[union-attr]
    assert opened.reason == f"v{opened.details['version']} is on probation for {window} against v1"
    return int(opened.details["version"])


def test_the_loop_rolls_back_a_worse_version_it_promoted(store: Store) -> None:
    pipeline = watched(ProbationConfig(min_rows=100))
    version = promoted_by_the_loop(store, pipeline)
    opened = LoopStore(store.engine).last("loop", "probation")
    assert opened is not None
    traffic = february(300)
    ids = serve(store, "loop", version, traffic, opened.at + timedelta(milliseconds=1), timedelta(microseconds=10),
                prefix="q")  # fmt: skip
    production, previous = store.models.get("loop", version), store.models.get("loop", 1)
    config = ProbationConfig(min_rows=100)
    early = check_probation(store, production, previous, opened.at, datetime.now(UTC), "roc_auc", config)
    assert early.decision is not None and not early.decision.rollback  # no label yet: both estimated, and an
    assert early.decision.reason.startswith("estimated roc_auc on 300 probation rows")  # estimate is blind to
    post_labels(store, "loop", ids, traffic["y"].to_list())  # a change of concept: the labels decide

    result = LoopService(store, pipeline).tick()
    kinds = [e.kind for e in result.events]
    assert kinds == ["tick", "rollback", "probation", "skip"] and result.outcome == "rolled back", kinds
    rollback, closed = result.events[1], result.events[2]
    assert rollback.reason.startswith(f"probation: realised roc_auc on 300 probation rows: v{version} ")
    assert rollback.reason.endswith("> margin 0.02): roll back")
    assert rollback.details["rolled_back_to"] == 1 and rollback.details["loss"] > 0.5
    assert closed.details["state"] == "failed"
    assert store.models.production("loop").version == 1  # type: ignore[union-attr]
    audit = store.models.events("loop")[-1]
    assert audit["action"] == "rollback" and audit["reason"] == rollback.reason

    after = LoopService(store, pipeline).tick()  # the probation is over: nothing more about it
    assert not {"rollback", "probation"} & {e.kind for e in after.events}


def test_a_probation_that_ends_without_enough_rows_passes_and_says_why(store: Store) -> None:
    pipeline = watched(ProbationConfig(min_rows=100, window="1s"))
    version = promoted_by_the_loop(store, pipeline)
    opened = LoopStore(store.engine).last("loop", "probation")
    assert opened is not None
    traffic = february(50)
    ids = serve(store, "loop", version, traffic, opened.at + timedelta(milliseconds=1), timedelta(microseconds=10),
                prefix="q")  # fmt: skip
    post_labels(store, "loop", ids, traffic["y"].to_list())
    time.sleep(1.1)
    result = LoopService(store, pipeline).tick()  # the second is over, on 50 rows: no rollback decision
    probation = [e for e in result.events if e.kind == "probation"]
    assert [e.details["state"] for e in probation] == ["passed"]
    assert probation[0].reason == (
        f"v{version} passed its probation: only 50 probation rows; a rollback decision needs at least 100"
    )
    assert probation[0].details["decision"]["loss"] is None  # NaN: not compared (stored as JSON null)
    assert store.models.production("loop").version == version  # type: ignore[union-attr]
    assert not [e for e in LoopService(store, pipeline).tick().events if e.kind == "probation"]  # closed


def test_the_loop_rolls_back_a_version_that_fails_on_part_of_its_traffic(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The promoted version raises on a quarter of the requests a real (in-process) service sends it: no label,
    its estimated score alone would keep it, but its error rate (counted by the service, in the store) rolls
    it back, with the reason in the audit trail."""
    from fastapi.testclient import TestClient

    from loopline.bundle import ModelBundle
    from loopline.serve import ServeSettings, create_app

    pipeline = watched(ProbationConfig(min_rows=100))
    version = promoted_by_the_loop(store, pipeline)
    records = february(200).select("x", "g").to_dicts()
    cut = sorted(r["x"] for r in records)[150]
    real = ModelBundle.predict_records

    def failing(self: ModelBundle, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if any(r["x"] >= cut for r in rows):
            raise FloatingPointError("this version breaks on the largest x")
        return real(self, rows)

    with monkeypatch.context() as patched:
        patched.setattr(ModelBundle, "predict_records", failing)
        with TestClient(create_app(store, ServeSettings(log_flush_interval=0.05))) as client:
            statuses = [client.post("/predict/loop", json=record).status_code for record in records]
    assert statuses.count(500) == 50 and statuses.count(200) == 150
    assert store.predictions.error_counts("loop", version=version) == {"model": 50}

    result = LoopService(store, pipeline).tick()
    kinds = [e.kind for e in result.events]
    assert kinds == ["tick", "rollback", "probation", "skip"] and result.outcome == "rolled back", kinds
    rollback = result.events[1]
    assert rollback.reason == (
        f"probation: v{version} fails 25.0% of requests vs 0.0% for v1 (+25.0% > 5.0%): roll back"
    )
    assert store.models.production("loop").version == 1  # type: ignore[union-attr]
    assert store.models.events("loop")[-1]["reason"] == rollback.reason


def test_a_version_that_answered_nothing_is_rolled_back_on_its_errors_alone(store: Store) -> None:
    from loopline.store import ErrorCount

    pipeline = watched(ProbationConfig(min_rows=100))
    version = promoted_by_the_loop(store, pipeline)
    opened = LoopStore(store.engine).last("loop", "probation")
    assert opened is not None
    failures = ErrorCount("e1", "loop", version, "model", "KeyError", opened.at + timedelta(milliseconds=1), 120)
    store.predictions.append_new([], [failures])
    production, previous = store.models.get("loop", version), store.models.get("loop", 1)
    check = check_probation(
        store, production, previous, opened.at, datetime.now(UTC), "roc_auc", ProbationConfig(min_rows=100)
    )
    assert check.decision is not None and check.decision.rolled_back_to == 1
    assert check.decision.reason == f"v{version} fails 100.0% of requests vs 0.0% for v1 (+100.0% > 5.0%): roll back"


def test_failed_requests_count_toward_the_rows_the_error_rule_needs(store: Store) -> None:
    from loopline.store import ErrorCount

    pipeline = watched(ProbationConfig(min_rows=100))
    version = promoted_by_the_loop(store, pipeline)
    opened = LoopStore(store.engine).last("loop", "probation")
    assert opened is not None
    at_ = opened.at + timedelta(milliseconds=1)
    serve(store, "loop", version, february(60), at_, timedelta(microseconds=10), prefix="q")  # 60 answered
    store.predictions.append_new([], [ErrorCount("e1", "loop", version, "model", "KeyError", at_, 60)])  # 60 failed
    production, previous = store.models.get("loop", version), store.models.get("loop", 1)
    config = ProbationConfig(min_rows=100)
    check = check_probation(store, production, previous, opened.at, datetime.now(UTC), "roc_auc", config)
    assert check.decision is not None and check.decision.rolled_back_to == 1
    assert check.decision.reason == f"v{version} fails 50.0% of requests vs 0.0% for v1 (+50.0% > 5.0%): roll back"
