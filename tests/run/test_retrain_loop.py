"""The retrain of issue 13: duration windows, pipelines without a window, the refit on train + valid, the whole
repository competing on the newest window, and probation with automatic rollback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from loopline import Pipeline
from loopline.bundle import ModelBundle
from loopline.core.config import MonitorConfig, ProbationConfig, RetrainConfig
from loopline.core.errors import ConfigError, DataError
from loopline.core.records import ProbationEvidence, Selection
from loopline.core.yamlfile import parse_pipeline
from loopline.run import Runner, decide_probation, probation, retrain_and_gate, retrain_params
from loopline.store import Store

REGIMES = (("2013-01-01", 1.0), ("2013-04-01", -1.0), ("2013-09-01", 1.0), ("2013-10-01", 1.0))
"""From each date on, the label follows ``sign * x``: Jan-Mar one world, Apr-Aug its opposite, Sep the first again."""


def regimes(rng_seed: int = 3) -> pl.DataFrame:
    """Hourly rows of 2013's first nine months; ``y`` is ``sign * x`` plus noise, the sign of :data:`REGIMES`."""
    start = datetime(2013, 1, 1, tzinfo=UTC)
    hours = int((datetime(2013, 10, 1, tzinfo=UTC) - start).total_seconds() // 3600)
    at = [start + timedelta(hours=i) for i in range(hours)]
    rng = np.random.default_rng(rng_seed)
    x = rng.normal(size=hours)
    bounds = [datetime.fromisoformat(d).replace(tzinfo=UTC) for d, _ in REGIMES]
    sign = np.array([REGIMES[max(i for i, b in enumerate(bounds) if b <= t)][1] for t in at])
    y = sign * x + rng.normal(scale=0.7, size=hours) > 0
    return pl.DataFrame({"at": at, "x": x, "g": rng.choice(["a", "b"], hours), "y": y})


def windowed(retrain: RetrainConfig, data: pl.DataFrame, train: dict[str, Any] | None = None) -> Pipeline:
    """A moving-window pipeline over ``data`` (the params of :data:`loopline.run.WINDOW_PARAMS`)."""
    fit = {"estimator": "logistic_regression", "numeric": ["x"], **(train or {})}
    return (
        Pipeline(
            "loop",
            params={"start": "2013-01-01", "valid_from": "2013-03-01", "test_from": "2013-03-16", "end": "2013-04-01"},
            monitor=MonitorConfig(model="loop", retrain=retrain),
        )
        .add("data", lambda: data)
        .add("window", "derive", inputs=["data"], window={"column": "at", "start": START, "end": END})
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
        .add("fit", "train", inputs=["split.train", "split.valid", "split.test"], target="y", **fit)
        .add("best", "select", inputs=["fit", "split.test"], model="loop", metric="roc_auc")
    )


START, END = "${params.start}", "${params.end}"


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


# -- the window -------------------------------------------------------------------------------------


def test_a_window_in_days_weeks_or_months() -> None:
    assert retrain_params(at("2013-07-01"), "90d") == {
        "start": "2013-04-02T00:00:00Z",  # 90 days before the end
        "valid_from": "2013-06-01T00:00:00Z",  # the newest third: 30 days, halved into valid and test
        "test_from": "2013-06-16T00:00:00Z",
        "end": "2013-07-01T00:00:00Z",
    }
    assert retrain_params(at("2013-07-01"), "2w")["start"] == "2013-06-17T00:00:00Z"
    assert retrain_params(at("2013-07-01"), "2w")["valid_from"] == "2013-06-27T00:00:00Z"
    assert retrain_params(at("2013-07-01"), "3mo") == retrain_params(at("2013-07-01"), 3)  # an int stays months
    assert retrain_params(at("2013-07-01"), 3)["start"] == "2013-04-01T00:00:00Z"
    one_day = retrain_params(at("2013-07-01"), "2d")  # a newest period of one day is cut at the hour
    assert (one_day["valid_from"], one_day["test_from"]) == ("2013-06-30T00:00:00Z", "2013-06-30T12:00:00Z")


@pytest.mark.parametrize("window", ["3m", "0d", "ninety days", "", -2, 0, 1.5, True])
def test_a_malformed_window_is_refused_with_the_forms_that_work(window: Any) -> None:
    with pytest.raises(ValidationError, match=r"write a number of months \(3\) or a count and a unit: 3mo"):
        RetrainConfig(window=window)


def test_a_malformed_window_in_a_pipeline_file_names_the_key() -> None:
    text = """
name: p
steps:
  a: {type: derive}
monitor: {model: m, retrain: {window: 90 days}}
"""
    with pytest.raises(ConfigError, match=r"monitor.retrain.window.*90d") as info:
        parse_pipeline(text)
    assert "window" in str(info.value)


def test_a_retrain_on_90_days_moves_the_window(store: Store) -> None:
    data = regimes()
    pipeline = windowed(RetrainConfig(window="90d"), data)
    Runner(store).run(pipeline)
    retrain_and_gate(store, pipeline, at("2013-07-01"))
    newest = store.runs.list(pipeline="loop")[0]
    report = {s.step: s for s in store.runs.get(newest.run_id).steps}
    assert newest.params["start"] == "2013-04-02T00:00:00Z" and newest.params["end"] == "2013-07-01T00:00:00Z"
    hours = {
        part: int(data.filter((pl.col("at") >= at(lo)) & (pl.col("at") < at(hi))).height)
        for part, lo, hi in (("train", "2013-04-02", "2013-06-01"), ("valid", "2013-06-01", "2013-06-16"))
    }
    version = store.models.get("loop", 2)  # the retrain's candidate, trained on the window's rows
    assert version.config["rows"] == hours
    assert report["split"].status == "succeeded"


# -- pipelines without a window ---------------------------------------------------------------------


def write_rows(folder: Path, name: str, seed: int, rows: int = 600) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    pl.DataFrame({"x": x, "y": x + rng.normal(scale=0.8, size=rows) > 0}).write_csv(folder / name)


def static(folder: Path) -> Pipeline:
    """A pipeline over the CSV files of ``folder``: no window params, a random split."""
    return (
        Pipeline("files", monitor=MonitorConfig(model="files"))
        .add("rows", "ingest", source={"type": "file", "path": str(folder / "*.csv")})
        .add("split", "split", inputs=["rows"], target="y", method="random", seed=1)
        .add("fit", "train", inputs=["split.train", "split.valid", "split.test"], target="y", numeric=["x"],
             estimator="logistic_regression")
        .add("best", "select", inputs=["fit", "split.test"], model="files", metric="roc_auc")
    )  # fmt: skip


def test_a_pipeline_over_files_retrains_on_the_newest_data_and_says_when_nothing_changed(
    store: Store, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    write_rows(folder, "a.csv", 1)
    pipeline = static(folder)
    assert Runner(store).run(pipeline).output("best")["promote"]

    same = retrain_and_gate(store, pipeline, datetime.now(UTC))
    assert not same.promote
    assert same.reason.startswith("no new data: the best candidate was trained on the same data as v1")
    assert "nothing to decide, v1 stays in production" in same.reason
    assert [v.version for v in store.models.list("files")] == [1]  # the same model is not registered again

    write_rows(folder, "b.csv", 2)  # new rows arrive: the ingest step picks them up
    fresh = retrain_and_gate(store, pipeline, datetime.now(UTC))
    assert "no new data" not in fresh.reason and fresh.gate is not None
    assert store.models.get("files", 2).config["rows"]["train"] > store.models.get("files", 1).config["rows"]["train"]
    assert {c.role for c in fresh.gate.contenders} == {"champion", "challenger"}


# -- the refit --------------------------------------------------------------------------------------

BOOSTING = {
    "estimator": "hist_gradient_boosting",
    "params": {"max_iter": 300, "learning_rate": 0.3},
    "early_stopping": {"patience": 5},
}


def test_the_winner_is_refitted_on_its_whole_window_with_the_rounds_early_stopping_chose(store: Store) -> None:
    data = regimes()
    selection = retrain_and_gate(store, windowed(RetrainConfig(), data, BOOSTING), at("2013-07-01"))
    assert selection.promote and selection.refit is not None and selection.refit.refitted
    gated = store.models.get("loop", selection.best)
    refit = store.models.get("loop", selection.promoted)  # type: ignore[arg-type]
    assert store.models.production("loop") == refit and refit.version == selection.refit.version != gated.version
    lineage = refit.typed_config.refit
    assert lineage is not None and lineage.of == gated.version
    june = data.filter((pl.col("at") >= at("2013-06-01")) & (pl.col("at") < at("2013-06-16"))).height
    late_june = data.filter((pl.col("at") >= at("2013-06-16")) & (pl.col("at") < at("2013-07-01"))).height
    # the newest period, valid and the gate's holdout, is fitted on
    assert lineage.rows == {"train": gated.config["rows"]["train"], "valid": june, "holdout": late_june}
    assert refit.config["rows"]["train"] == gated.config["rows"]["train"] + june + late_june
    bundle = ModelBundle.from_bytes(store.artifacts.get_bytes(refit.bundle_digest))
    assert bundle.metadata["n_train"] == gated.config["rows"]["train"] + june + late_june
    assert refit.data_fingerprint == lineage.data_fingerprint != gated.data_fingerprint
    rounds = gated.timings["training"]["best_iteration"]
    assert gated.timings["training"]["stopped"] == "converged" and rounds < 300
    assert lineage.rounds == rounds and refit.params["max_iter"] == rounds and refit.params["early_stopping"] is False
    assert refit.timings["training"]["iterations"] == rounds  # no split left to watch: exactly the chosen rounds
    assert refit.params["learning_rate"] == gated.params["learning_rate"]
    # the gated evaluation is kept; the refit's own training metrics are marked as such
    assert refit.metrics["valid"] == gated.metrics["valid"] and "refit_train" in refit.metrics
    assert "refit_holdout" not in refit.metrics  # the holdout is a training split of the refit: no score on it
    assert f"refitted v{gated.version} on train + valid + holdout" in selection.reason
    assert store.models.events("loop")[-1]["reason"] == selection.reason


def test_refit_holdout_false_keeps_the_holdout_unseen_and_scores_the_refit_on_it(store: Store) -> None:
    data = regimes()
    config = RetrainConfig(refit_holdout=False)
    selection = retrain_and_gate(store, windowed(config, data, BOOSTING), at("2013-07-01"))
    assert selection.refit is not None and selection.refit.refitted
    refit = store.models.get("loop", selection.promoted)  # type: ignore[arg-type]
    lineage = refit.typed_config.refit
    assert lineage is not None and set(lineage.rows) == {"train", "valid"}
    assert "refit_holdout" in refit.metrics and "on train + valid (" in selection.reason


def test_refit_false_promotes_the_gated_version(store: Store) -> None:
    selection = retrain_and_gate(store, windowed(RetrainConfig(refit=False), regimes()), at("2013-07-01"))
    assert selection.promote and selection.refit is not None and not selection.refit.refitted
    assert "monitor.retrain.refit is false" in selection.refit.reason
    assert selection.promoted == selection.best == store.models.production("loop").version  # type: ignore[union-attr]
    assert [v.version for v in store.models.list("loop")] == [1]


# -- the repository competes ------------------------------------------------------------------------


def test_an_earlier_version_comes_back_when_the_world_returns_to_it(store: Store) -> None:
    data = regimes()
    pipeline = windowed(RetrainConfig(), data)
    first = Runner(store).run(pipeline).output("best")  # Jan-Mar: the first world
    assert first["promote"] and first["best"] == 1

    opposite = retrain_and_gate(store, pipeline, at("2013-07-01"))  # Apr-Jun: the opposite world
    assert opposite.promote and opposite.best == 2 and opposite.promoted == 3  # v3: v2 refitted
    assert opposite.gate is not None and opposite.gate.contenders[0].version == 2

    back = retrain_and_gate(store, pipeline, at("2013-10-01"))  # trained on Jul-Aug, gated on September
    assert back.gate is not None
    roles = {c.version: c.role for c in back.gate.contenders}
    assert roles == {3: "champion", 4: "challenger", 2: "earlier", 1: "earlier"}
    assert back.gate.contenders[0].version == 1 and back.gate.contenders[0].rank == 1
    assert back.promote and back.best == 1 and back.promoted == 1
    assert back.reason.startswith("v1 (earlier) scores best on the holdout")
    assert back.refit is not None and not back.refit.refitted and "earlier version" in back.refit.reason
    assert store.models.production("loop").version == 1  # type: ignore[union-attr]
    key = f"holdout_{store.runs.list(pipeline='loop')[0].run_id[:8]}"
    assert all(key in store.models.get("loop", v).metrics for v in (1, 2, 3, 4))  # every score recorded

    again = retrain_and_gate(store, pipeline, at("2013-10-01"))  # the champion is best: kept
    assert not again.promote and again.gate is not None and again.gate.contenders[0].role == "champion"
    assert again.reason.startswith("champion v1 scores best on the holdout") and "keep the champion" in again.reason
    assert store.models.production("loop").version == 1  # type: ignore[union-attr]


def test_keep_versions_bounds_the_earlier_versions_and_an_unservable_one_sits_out(store: Store) -> None:
    pipeline = windowed(RetrainConfig(keep_versions=1), regimes())
    Runner(store).run(pipeline)
    retrain_and_gate(store, pipeline, at("2013-07-01"))  # v2, refitted as v3 (production); v1 archived
    back = retrain_and_gate(store, pipeline, at("2013-10-01"))
    assert back.gate is not None
    assert [(c.version, c.role) for c in back.gate.contenders if c.role == "earlier"] == [(2, "earlier")]
    assert not back.promote  # v1, the one that would have won, was not retained

    path = store.artifacts.local_path(store.models.get("loop", 2).bundle_digest)
    assert path is not None
    path.chmod(0o644)
    path.write_bytes(b"not a bundle")  # v2's bytes no longer match their digest
    again = retrain_and_gate(store, pipeline, at("2013-10-01"))
    assert again.gate is not None
    (earlier,) = [c for c in again.gate.contenders if c.role == "earlier"]
    assert earlier.version == 2 and earlier.score is None and earlier.rank is None
    assert earlier.note.startswith("sits out: ")
    assert f"v2 earlier {earlier.note}" in again.reason


# -- probation --------------------------------------------------------------------------------------


def evidence(version: int, score: float, *, rows: int = 500, error_rate: float = 0.0) -> ProbationEvidence:
    return ProbationEvidence(version, "roc_auc", score, rows, error_rate=error_rate)


def test_probation_rolls_back_only_beyond_the_margin() -> None:
    config = ProbationConfig(margin=0.02)
    worse = decide_probation(evidence(3, 0.70), evidence(1, 0.75), config)
    assert worse.rollback and worse.loss == pytest.approx(0.05) and "> margin 0.02): roll back" in worse.reason
    close = decide_probation(evidence(3, 0.74), evidence(1, 0.75), config)
    assert not close.rollback and "keep v3" in close.reason
    better = decide_probation(evidence(3, 0.80), evidence(1, 0.75), config)
    assert not better.rollback
    lower = ProbationEvidence(3, "log_loss", 0.60, 500, estimated=True)  # lower is better, estimated
    assert decide_probation(lower, ProbationEvidence(1, "log_loss", 0.50, 500), config).rollback
    assert "estimated log_loss" in decide_probation(lower, ProbationEvidence(1, "log_loss", 0.5, 500), config).reason


def test_probation_rolls_back_on_errors_and_waits_for_rows() -> None:
    config = ProbationConfig(max_error_rate_increase=0.05, min_rows=100)
    failing = decide_probation(evidence(3, 0.8, error_rate=0.10), evidence(1, 0.75, error_rate=0.01), config)
    assert failing.rollback and "fails 10.0% of requests" in failing.reason
    assert not decide_probation(evidence(3, 0.8, error_rate=0.04), evidence(1, 0.75), config).rollback
    few = decide_probation(evidence(3, 0.1, rows=50), evidence(1, 0.9), config)
    assert not few.rollback and "only 50 probation rows" in few.reason
    with pytest.raises(DataError, match="probation compares v3 on 'roc_auc' with v1 on 'log_loss'"):
        decide_probation(evidence(3, 0.8), ProbationEvidence(1, "log_loss", 0.5, 500), config)


def promoted_twice(store: Store) -> Selection:
    pipeline = windowed(RetrainConfig(min_improvement=-1.0), regimes())  # any challenger passes
    Runner(store).run(pipeline)
    selection = retrain_and_gate(store, pipeline, at("2013-07-01"))
    assert selection.promoted == 3
    return selection


def test_probation_calls_the_stores_rollback_with_the_reason(store: Store) -> None:
    promoted_twice(store)
    kept = probation(store, "loop", evidence(3, 0.74), evidence(1, 0.75), ProbationConfig())
    assert not kept.rollback and kept.rolled_back_to is None
    assert store.models.production("loop").version == 3  # type: ignore[union-attr]
    decision = probation(store, "loop", evidence(3, 0.60), evidence(1, 0.75), ProbationConfig())
    assert decision.rollback and decision.rolled_back_to == 1
    assert store.models.production("loop").version == 1  # type: ignore[union-attr]
    event = store.models.events("loop")[-1]
    assert event["action"] == "rollback" and event["reason"] == f"probation: {decision.reason}"
    late = probation(store, "loop", evidence(3, 0.60), evidence(1, 0.75), ProbationConfig())  # v3 is gone already
    assert not late.rollback and "v1 is in production now, not v3: nothing rolled back" in late.reason


def test_a_suspicious_winner_of_the_competition_is_refused(store: Store) -> None:
    data = regimes().with_columns(leak=pl.col("y").cast(pl.Float64))  # the label itself, as a feature
    Runner(store).run(windowed(RetrainConfig(), data))
    leaky = windowed(RetrainConfig(), data, {"estimator": "logistic_regression", "numeric": ["x", "leak"]})
    selection = retrain_and_gate(store, leaky, at("2013-07-01"))
    assert selection.gate is not None and selection.gate.contenders[0].version == 2  # it does score best
    assert not selection.promote and selection.refit is None
    assert "; but v2 is suspicious, not promoted: feature 'leak' alone predicts the target" in selection.reason
    assert store.models.production("loop").version == 1  # type: ignore[union-attr]
