"""Accuracy per window on a real store: a trained binary classifier's performance reference, its served traffic
closed into windows with realised metrics (overall and per slice), label coverage and estimated metrics with
their band; labels that arrive late refresh the closed windows (never their drift), and the realised/estimated
alert figures fire (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from pydantic import ValidationError
from tests.run._served import post_labels, serve
from tests.run.test_retrain_loop import at, regimes, windowed

from loopline.bundle import ModelBundle
from loopline.core.config import AlertRule, MonitorConfig, RetrainConfig
from loopline.core.errors import ConfigError
from loopline.core.records import PERFORMANCE_REFERENCE_KEY
from loopline.run import Runner, check_windows, stored_windows
from loopline.run._window_accuracy import refresh_window_labels
from loopline.run.steps._models import performance_reference
from loopline.store import Store

NOW = datetime(2026, 12, 6, 12, 0, 30, tzinfo=UTC)
START = NOW.replace(minute=0, second=0) - timedelta(hours=3)  # three whole hours before NOW


def trained(store: Store) -> pl.DataFrame:
    """v1 of ``loop`` trained on Jan-Mar (y follows x), with slices by g; February's rows as its traffic."""
    Runner(store).run(windowed(RetrainConfig(), regimes(), {"slices": ["g"]}))
    data = regimes()
    return data.filter((pl.col("at") >= at("2013-02-01")) & (pl.col("at") < at("2013-03-01"))).head(600)


def config(*alerts: dict[str, object]) -> MonitorConfig:
    return MonitorConfig(model="loop", alerts=[AlertRule.model_validate(a) for a in alerts])


def test_a_binary_version_stores_its_performance_reference(store: Store) -> None:
    trained(store)
    version = store.models.get("loop", 1)
    reference = store.artifacts.get_table(version.config[PERFORMANCE_REFERENCE_KEY])
    assert reference.columns == ["probability", "label"]
    assert reference.height == version.config["rows"]["valid"]  # all of valid: fewer than the 5000 kept at most
    assert reference["probability"].is_between(0, 1).all() and reference["label"].dtype == pl.Boolean
    assert 0.2 < reference["label"].mean() < 0.8  # type: ignore[operator]
    assert store.check().missing == [] and all(  # the store check counts it as referenced, never an orphan
        o.path != version.config[PERFORMANCE_REFERENCE_KEY] for o in store.check().orphans
    )


def test_windows_get_realised_and_estimated_metrics_and_late_labels_refresh_them(store: Store) -> None:
    traffic = trained(store)
    ids = serve(store, "loop", 1, traffic, START, timedelta(seconds=18), prefix="p")  # 200 rows per hour
    truth = traffic["y"].to_list()
    post_labels(store, "loop", ids[:200], truth[:200])  # the first hour fully labelled, the third half
    post_labels(store, "loop", ids[400:500], truth[400:500])
    rules = config(
        {"when": "realised.roc_auc", "below": 0.99},
        {"when": "estimated.roc_auc", "below": 0.99},
        {"when": "label_coverage", "below": 0.9},
    )
    check = check_windows(store, rules, "1h", now=NOW)
    first, second, _ = check.closed
    assert [w.label_coverage for w in check.closed] == [1.0, 0.0, 0.5]
    assert first.realised_status == "ok" and first.labelled_rows == 200
    assert 0.8 < first.realised_metrics["roc_auc"] < 1.0  # type: ignore[index]
    assert set(first.realised_slices or {}) == {"g"} and set(first.realised_slices["g"]) == {"a", "b"}  # type: ignore[index]
    assert second.realised_metrics is None and second.realised_status == "not_enough_labels"
    for window in check.closed:  # estimated without labels, with its band, close to the realised value
        estimate = window.estimated_metrics["roc_auc"]  # type: ignore[index]
        low, high = window.estimated_bands["roc_auc"]  # type: ignore[index]
        assert low <= estimate <= high and 0.75 < estimate < 1.0
    assert abs(first.estimate_error("roc_auc")) < 0.08  # type: ignore[arg-type]
    fired = sorted((a.window_start, a.metric) for a in check.alerts)
    assert (START + timedelta(hours=1), "label_coverage") in fired and (START, "realised.roc_auc") in fired
    assert sum(1 for _, metric in fired if metric == "estimated.roc_auc") == 3

    post_labels(store, "loop", ids[200:400], truth[200:400])  # the second hour's labels arrive late
    refreshed, alerts = refresh_window_labels(store, rules, "1h", horizon=timedelta(days=7), now=NOW)
    assert [w.seq for w in refreshed] == [second.seq]
    late = refreshed[0]
    assert late.label_coverage == 1.0 and late.realised_status == "ok" and late.labelled_rows == 200
    assert late.drift is not None and late.drift.to_dict() == second.drift.to_dict()  # type: ignore[union-attr]
    assert late.estimated_metrics == second.estimated_metrics  # the estimate is not recomputed
    assert [(a.metric, a.window_start) for a in alerts] == [("realised.roc_auc", START + timedelta(hours=1))]
    stored = {w.seq: w for w in stored_windows(store, "loop", "1h")}
    assert stored[second.seq].realised_metrics == late.realised_metrics
    again, _ = refresh_window_labels(store, rules, "1h", horizon=timedelta(days=7), now=NOW)
    assert again == []  # nothing changed since: nothing recomputed
    post_labels(store, "loop", ids[:1], [not truth[0]])  # a corrected label refreshes its window
    corrected, none = refresh_window_labels(store, rules, "1h", horizon=timedelta(days=7), now=NOW)
    assert [w.seq for w in corrected] == [first.seq] and none == []  # its alerts fired already
    outside, _ = refresh_window_labels(store, rules, "1h", horizon=timedelta(minutes=30), now=NOW + timedelta(days=1))
    assert outside == []  # past the label horizon nothing is looked at


def test_an_unknown_metric_in_an_alert_gets_a_did_you_mean(store: Store) -> None:
    trained(store)
    with pytest.raises(ConfigError, match=r"monitor.alerts.0.when.*'roc_acu'.*Did you mean 'roc_auc'"):
        check_windows(store, config({"when": "realised.roc_acu", "below": 0.7}), "1h", now=NOW)
    with pytest.raises(ValidationError, match=r"unknown alert figure 'realized.roc_auc'. Did you mean 'realised'"):
        config({"when": "realized.roc_auc", "below": 0.7})


def test_the_performance_reference_is_bounded_skips_null_labels_and_is_for_binary_models_only(store: Store) -> None:
    traffic = trained(store)
    bundle = ModelBundle.from_bytes(store.artifacts.get_bytes(store.models.get("loop", 1).bundle_digest))
    rows = traffic.with_columns(y=pl.when(pl.col("x") > 1.5).then(None).otherwise(pl.col("y")))
    sample = performance_reference(bundle, rows, rows=100)
    assert sample is not None and sample.height == 100 and sample["label"].null_count() == 0
    full = performance_reference(bundle, rows)
    assert full is not None and full.height == rows["y"].drop_nulls().len()
    assert performance_reference(dataclasses.replace(bundle, task="regression"), rows) is None
    # the train step hands it the validation split's scores it already computed: the same sample, no second predict
    shared = performance_reference(bundle, rows, rows=100, scores=bundle.predict_table(rows))
    assert shared is not None and shared.equals(sample)


def test_windows_show_target_drift_once_labels_arrive_and_the_served_probabilities_drift(store: Store) -> None:
    traffic = trained(store)
    ids = serve(store, "loop", 1, traffic, START, timedelta(seconds=18), prefix="p")  # 200 rows per hour
    truth = traffic["y"].to_list()
    post_labels(store, "loop", ids[:200], truth[:200])  # the first hour: its true labels
    post_labels(store, "loop", ids[200:400], [True] * 200)  # the second: every label positive, a target shift
    first, second, third = check_windows(store, config(), "1h", now=NOW).closed
    assert first.target_drift is not None and second.target_drift is not None and third.target_drift is None
    assert [f.feature for f in first.target_drift.features] == ["label"] and not first.target_drift.drifted
    assert second.target_drift.drifted == ["label"]
    outputs = {f.feature for f in first.output_drift.features}  # type: ignore[union-attr]
    assert outputs == {"prediction", "probability:True"}  # the served probability, by a two-sample test
    assert {f.test for f in first.output_drift.features if f.feature != "prediction"} <= {"ks", "wasserstein"}  # type: ignore[union-attr]
    stored = {w.seq: w for w in stored_windows(store, "loop", "1h")}
    assert stored[second.seq].target_drift == second.target_drift

    post_labels(store, "loop", ids[400:600], truth[400:600])  # the third hour's labels arrive late
    refreshed, _ = refresh_window_labels(store, config(), "1h", horizon=timedelta(days=7), now=NOW)
    assert [w.seq for w in refreshed] == [third.seq] and refreshed[0].target_drift is not None
    assert not refreshed[0].target_drift.drifted


def test_a_multiclass_version_gets_estimated_metrics_per_window_close_to_the_realised(store: Store) -> None:
    """A multi-class classifier trained on real penguins (two measurements: Adelie and Chinstrap overlap) stores a
    multi-class performance reference; its windows get estimated accuracy, f1_macro and macro ROC AUC with their
    bands, close to the realised ones once the labels are in."""
    palmerpenguins = pytest.importorskip("palmerpenguins")
    from loopline.store import Label, PredictionRow
    from loopline.train import TrainSpec, train_candidate

    features = ["flipper_length_mm", "body_mass_g"]
    data = (
        pl.from_pandas(palmerpenguins.load_penguins()).drop_nulls([*features, "species"]).select(*features, "species")
    )
    data = data.with_columns(pl.col("body_mass_g").cast(pl.Float64), pl.col("flipper_length_mm").cast(pl.Float64))
    data = data.sample(fraction=1.0, shuffle=True, seed=0)
    third = data.height // 3
    train, valid, traffic = data[:third], data[third : 2 * third], data[2 * third :]
    result = train_candidate(
        train, valid, TrainSpec(target="species", numeric=features, estimator="logistic_regression")
    )
    bundle = result.bundle
    assert bundle.task == "multiclass" and bundle.classes is not None and len(bundle.classes) == 3
    reference = performance_reference(bundle, valid)
    assert reference is not None and reference.columns == [*(f"probability:{c}" for c in bundle.classes), "label"]
    version = store.models.register(
        name="penguins",
        algorithm="logistic_regression",
        bundle_digest=store.artifacts.put_bytes(bundle.to_bytes()),
        reference_digest=store.artifacts.put_table(train.select(features)),
        metrics=result.metrics,
        params=result.params,
        config={"features": {"numeric": features}, PERFORMANCE_REFERENCE_KEY: store.artifacts.put_table(reference)},
        input_schema=bundle.input_schema,
        data_fingerprint="test",
        run_id=None,
        timings=result.timings,
    )
    store.models.promote("penguins", version.version)
    records = traffic.select(features).to_dicts()
    answers = bundle.predict_records(records)
    ids = [f"q{i:04d}" for i in range(len(records))]
    every = timedelta(hours=3) / len(records)
    served = enumerate(zip(ids, records, answers, strict=True))
    store.predictions.append([PredictionRow(i, "penguins", 1, START + n * every, r, a, 1.0) for n, (i, r, a) in served])
    store.feedback.put("penguins", [Label(i, s) for i, s in zip(ids, traffic["species"], strict=True)], source="test")
    check = check_windows(store, MonitorConfig(model="penguins"), "3h", now=NOW)
    [window] = [w for w in check.closed if w.health.rows]
    assert window.estimated_metrics is not None and window.realised_metrics is not None, window.estimation_skipped
    assert set(window.estimated_metrics) == {"accuracy", "f1_macro", "roc_auc"}
    for metric in ("accuracy", "f1_macro", "roc_auc"):
        error = window.estimate_error(metric)
        assert error is not None and abs(error) < 0.08, (metric, error)
        low, high = window.estimated_bands[metric]  # type: ignore[index]
        assert low <= window.estimated_metrics[metric] <= high
