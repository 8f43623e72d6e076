"""End to end: the feature importance a real train step stores is what the loop's drift trigger weighs by."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

from loopline import Pipeline
from loopline.core.config import MonitorConfig
from loopline.core.records import FeatureImportance
from loopline.monitor import DriftReport, drift_report
from loopline.run import Runner
from loopline.run._service import IMPORTANCE_KEY, LoopService
from loopline.run.policy import LoopSignals
from loopline.store import Store

FEATURES = ["strong", "useless"]


def table(rows: int, seed: int, *, shift: str | None = None) -> pl.DataFrame:
    """``y`` is decided by ``strong``; ``useless`` is noise. ``shift`` moves one column's mean by 1.5."""
    rng = np.random.default_rng(seed)
    strong, useless = rng.normal(size=(2, rows))
    y = strong + rng.normal(scale=0.3, size=rows) > 0
    data = pl.DataFrame({"strong": strong, "useless": useless, "y": y})
    return data if shift is None else data.with_columns(pl.col(shift) + 1.5)


def pipeline() -> Pipeline:
    data = table(1200, 0)
    return (
        Pipeline("weighted", monitor=MonitorConfig(model="weighted"))
        .add("data", lambda: data)
        .add("split", "split", inputs=["data"], target="y", method="random")
        .add(
            "fit",
            "train",
            inputs=["split.train", "split.valid"],
            target="y",
            numeric=FEATURES,
            estimator="hist_gradient_boosting",
        )
        .add("best", "select", inputs=["fit"], model="weighted", promote="always")
    )


def drifted(column: str) -> DriftReport:
    report = drift_report(table(1000, 1), table(1000, 2, shift=column), numeric=FEATURES, categorical=[])
    assert report.drifted == [column]
    return report


def test_the_loop_fires_on_drift_of_an_important_feature_only(store: Store) -> None:
    flow = pipeline()
    Runner(store).run(flow)
    production = store.models.production("weighted")
    assert production is not None
    weights = production.config[IMPORTANCE_KEY]
    assert set(weights) == set(FEATURES) and weights["strong"] > 0.95 and weights["useless"] < 0.05
    details = production.typed_config.importance
    assert isinstance(details, FeatureImportance) and details.metric == "roc_auc" and details.rows == 240

    def with_drift(column: str) -> LoopService:
        def enrich(store: Store, config: MonitorConfig, signals: LoopSignals) -> LoopSignals:
            return dataclasses.replace(signals, drift=drifted(column))

        return LoopService(store, flow, enrich=enrich)

    fired = with_drift("strong").tick()
    drift = fired.decisions[0]
    assert drift.trigger == "drift" and drift.fire and drift.value is not None and drift.value > 0.95
    assert "of the model's feature importance" in drift.reason
    quiet = with_drift("useless").tick()
    drift = quiet.decisions[0]
    assert not drift.fire and drift.value is not None and drift.value < 0.05
    assert quiet.outcome == "no trigger"
