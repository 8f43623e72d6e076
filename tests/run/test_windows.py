"""Windows over the prediction log, closed incrementally on SQLite and PostgreSQL: what each check reads, what it
stores, and that the stored figures equal those computed from the whole log."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from tests.run._windows_data import FEATURES, T0, config, production, rows

from loopline.core.errors import ConfigError
from loopline.monitor import WindowResult, WindowSpec, drift_report
from loopline.run import check_windows, stored_windows, window_drift
from loopline.store import Store, WindowRow

HOUR = timedelta(hours=1)


def test_time_windows_close_once_and_a_second_check_reads_only_the_new_rows(store: Store) -> None:
    production(store)
    store.predictions.append(rows(T0, 180))  # hours 0, 1 and 2, one row a minute
    first = check_windows(store, config(), "1h", now=T0 + 3 * HOUR + timedelta(minutes=1), chunk_rows=50)
    hour0 = WindowSpec.parse("1h").seq_of(T0)
    assert [(w.seq, w.health.rows, w.status) for w in first.closed] == [(hour0 + i, 60, "closed") for i in range(3)]
    assert first.rows_read == 180
    assert first.open is not None and (first.open.status, first.open.health.rows) == ("open", 0)

    store.predictions.append(rows(T0 + 3 * HOUR, 60, offset=180))
    second = check_windows(store, config(), "1h", now=T0 + 4 * HOUR + timedelta(minutes=1), chunk_rows=50)
    assert [(w.start, w.health.rows) for w in second.closed] == [(T0 + 3 * HOUR, 60)]
    assert second.rows_read == 60  # only the new hour

    third = check_windows(store, config(), "1h", now=T0 + 4 * HOUR + timedelta(minutes=1))
    assert (third.closed, third.rows_read) == ([], 0)
    assert [w.start for w in stored_windows(store, "churn", "1h")] == [T0 + i * HOUR for i in range(4)]


def test_the_open_window_is_reported_not_stored_until_it_completes(store: Store) -> None:
    production(store)
    store.predictions.append(rows(T0, 90))
    check = check_windows(store, config(), "1h", now=T0 + 90 * timedelta(minutes=1))
    assert [w.health.rows for w in check.closed] == [60]
    assert check.open is not None and (check.open.start, check.open.health.rows) == (T0 + HOUR, 30)
    assert len(stored_windows(store, "churn")) == 1
    # within the grace period after its end the window is still open: late rows from the spool can land
    check = check_windows(store, config(), "1h", now=T0 + 2 * HOUR + timedelta(seconds=10))
    assert check.closed == [] and check.open is not None and check.open.start == T0 + HOUR


def test_window_figures_equal_those_computed_from_the_whole_log(store: Store) -> None:
    production(store)
    store.predictions.append(rows(T0, 120, age=40) + rows(T0 + 2 * HOUR, 60, age=55, offset=500, latency_ms=9.0))
    check = check_windows(store, config(), "1h", now=T0 + 3 * HOUR + timedelta(minutes=1), chunk_rows=7)
    whole = store.predictions.read("churn")
    reference = store.artifacts.get_table(store.models.production("churn").reference_digest or "")
    for window in check.closed:
        part = whole.filter((pl.col("created_at") >= window.start) & (pl.col("created_at") < window.end))
        assert window.health.rows == part.height
        expected = drift_report(reference, part, numeric=["age"], categorical=["city"])
        assert window.drift is not None
        assert [(f.feature, f.psi, f.drifted) for f in window.drift.features] == [
            (f.feature, f.psi, f.drifted) for f in expected.features
        ]
        assert window.health.latency_p99_ms == pytest.approx(part["latency_ms"].quantile(0.99, "linear"))
    last = check.closed[-1]
    assert last.drift is not None and "age" in last.drift.drifted
    assert last.health.throughput_rps == pytest.approx(60 / 3600)
    assert WindowResult.from_dict(last.to_dict()) == last


def test_count_windows_follow_created_at_then_prediction_id(store: Store) -> None:
    production(store)
    tied = [replace(r, created_at=T0) for r in rows(T0, 30, prefix="t")]  # 30 rows at the same instant
    store.predictions.append(tied + rows(T0 + HOUR, 220, offset=100))
    first = check_windows(store, config(), "100", chunk_rows=33)
    assert [(w.seq, w.health.rows) for w in first.closed] == [(1, 100), (2, 100)]
    assert first.closed[0].start == T0 and first.closed[0].last_id == "p0000169"
    assert first.open is not None and first.open.health.rows == 50 and first.open.status == "open"
    assert first.rows_read == 250

    store.predictions.append(rows(T0 + 5 * HOUR, 60, offset=900))
    second = check_windows(store, config(), "100", chunk_rows=33)
    assert [(w.seq, w.health.rows) for w in second.closed] == [(3, 100)]
    assert second.rows_read == 110  # the 50 of the open window and the 60 new ones
    assert second.open is not None and second.open.health.rows == 10
    assert second.closed[0].last_id == "p0000949"


def test_no_window_is_stored_twice(store: Store) -> None:
    production(store)
    store.predictions.append(rows(T0, 120))
    rules = [{"when": "rows", "above": 10}]
    check = check_windows(store, config(rules), "1h", now=T0 + 3 * HOUR)
    assert len(check.closed) == 2 and len(check.alerts) == 2
    stored = store.windows.last("churn", "1h")
    assert stored is not None
    again = WindowRow(**{name: getattr(stored, name) for name in WindowRow.__dataclass_fields__})
    assert store.windows.close(again, []) is None  # a second process closing the same window stores nothing
    check_windows(store, config(rules), "1h", now=T0 + 3 * HOUR)
    assert len(store.windows.list("churn")) == 2 and len(store.alerts.list("churn")) == 2


def test_since_and_until_bound_the_windows(store: Store) -> None:
    production(store)
    store.predictions.append(rows(T0, 300))
    check = check_windows(store, config(), "1h", since=T0 + 2 * HOUR + timedelta(minutes=5), until=T0 + 4 * HOUR)
    assert [w.start for w in check.closed] == [T0 + 2 * HOUR, T0 + 3 * HOUR]
    assert check.open is None and check.rows_read == 120
    counted = check_windows(store, config(), "50", since=T0 + 4 * HOUR, until=T0 + 5 * HOUR)
    assert [w.health.rows for w in counted.closed] == [50] and counted.open is None


def test_empty_windows_between_bursts_are_stored_with_no_rows(store: Store) -> None:
    production(store)
    store.predictions.append(rows(T0, 10) + rows(T0 + 5 * HOUR, 10, offset=50))
    check = check_windows(store, config([{"when": "rows", "below": 1}]), "1h", now=T0 + 6 * HOUR + HOUR)
    assert [w.health.rows for w in check.closed] == [10, 0, 0, 0, 0, 10]
    assert check.closed[1].drift is None and check.closed[1].health.latency_p99_ms is None
    assert [a.window_start for a in check.alerts] == [T0 + i * HOUR for i in (1, 2, 3, 4)]
    assert check.rows_read == 20


def test_missing_and_unseen_values_per_feature(store: Store) -> None:
    production(store)
    batch = rows(T0, 40, city="zzz")  # every odd row in a city the reference never saw
    batch = [replace(r, inputs={"city": r.inputs["city"]}) if i < 10 else r for i, r in enumerate(batch)]
    store.predictions.append(batch)
    window = check_windows(store, config(), "1h", now=T0 + 2 * HOUR).closed[0]
    age, city = window.health.features
    assert (age.feature, age.missing_share, age.unseen_share) == ("age", 0.25, None)
    assert (city.feature, city.missing_share, city.unseen_share) == ("city", 0.0, 0.5)
    assert window.health.prediction.kind == "categorical" and window.health.prediction.shares == {"0": 0.5, "1": 0.5}
    assert window.health.versions == {1: 40}


def test_an_alert_on_an_unknown_feature_suggests_one(store: Store) -> None:
    production(store)
    with pytest.raises(ConfigError, match=r"monitor.alerts.0.when: .*'agee'.*Did you mean 'age'\?"):
        check_windows(store, config([{"when": "missing_share.agee", "above": 0.1}]), "1h")


def test_without_production_or_traffic(store: Store) -> None:
    with pytest.raises(ConfigError, match="no production version"):
        check_windows(store, config(), "1h")
    production(store)
    check = check_windows(store, config(), "1h")
    assert (check.closed, check.open, check.rows_read) == ([], None, 0)


def test_non_finite_predictions_are_stored_as_unknown(store: Store) -> None:
    production(store)
    odd = [replace(r, output={"prediction": 1.5}) for r in rows(T0, 10)]
    odd[0] = replace(odd[0], output={"prediction": float("inf")})
    odd[1] = replace(odd[1], inputs={"age": float("nan"), "city": "a"})
    store.predictions.append(odd if store.engine.dialect.name == "sqlite" else odd[2:])
    check = check_windows(store, config(), "1h", now=T0 + 2 * HOUR)
    [window] = stored_windows(store, "churn", "1h")
    assert window.health.prediction.kind == "numeric" and window.health.rows == check.closed[0].health.rows
    if store.engine.dialect.name == "sqlite":  # PostgreSQL's JSON cannot even log NaN or Infinity
        assert check.closed[0].health.prediction.max == float("inf") and window.health.prediction.max is None
        assert window.health.features[0].missing_share == 0.1  # the NaN age


def test_a_window_compares_its_predictions_with_the_model_s_own_and_uses_the_stored_profile(store: Store) -> None:
    from loopline.monitor import ReferenceProfile, profile_outputs

    rng = np.random.default_rng(0)
    reference = pl.DataFrame({"age": rng.normal(40, 5, 500), "city": rng.choice(["a", "b"], 500)})
    profile = ReferenceProfile.from_frame(reference, numeric=["age"], categorical=["city"])
    validation = {"prediction": np.array([0, 1] * 250)}  # the model says 1 half the time on its validation split
    profile = profile_outputs(profile, validation, pl.Series("label", [0, 1] * 250), classes=[0, 1])
    version = store.models.register(
        name="churn",
        algorithm="logistic_regression",
        bundle_digest=store.artifacts.put_bytes(b"bundle"),
        reference_digest=store.artifacts.put_table(reference),
        profile_digest=store.artifacts.put_bytes(profile.to_json().encode()),
        metrics={},
        params={},
        config={"features": FEATURES},
        input_schema=[],
        data_fingerprint="f" * 64,
        run_id=None,
        timings={},
    )
    store.models.promote("churn", version.version)
    logged = rows(T0, 120)  # predictions alternate 0/1 as on validation: no drift of the outputs
    always_one = [replace(r, output={"prediction": 1}) for r in rows(T0 + timedelta(hours=2), 120, offset=500)]
    store.predictions.append([*logged, *always_one])
    first, second = check_windows(store, config(), "2h", now=T0 + timedelta(hours=5)).closed[:2]
    for window in (first, second):
        assert window.drift is not None and window.output_drift is not None
    assert first.output_drift.features[0].feature == "prediction" and not first.output_drift.drifted  # type: ignore[union-attr]
    assert second.output_drift.drifted == ["prediction"]  # type: ignore[union-attr]
    # the features are compared with the profile: the same verdicts as against the stored sample
    sample = window_drift(reference, pl.DataFrame([r.inputs for r in logged]), version.typed_config.features, config())
    assert [(f.feature, f.status) for f in first.drift.features] == [(f.feature, f.status) for f in sample.features]  # type: ignore[union-attr]
    stored = stored_windows(store, "churn", "2h")
    assert stored[1].output_drift == second.output_drift  # kept in the store


def test_a_version_without_a_profile_says_its_output_drift_is_not_available(store: Store) -> None:
    production(store)
    store.predictions.append(rows(T0, 60))
    (window,) = check_windows(store, config(), "1d", now=T0 + timedelta(days=2)).closed[:1]
    assert window.output_drift is not None
    assert {f.status for f in window.output_drift.features} == {"not available"}


def test_output_drift_compares_the_served_probabilities_with_the_validation_ones(store: Store) -> None:
    """The classes keep their shares (0/1 alternate) but the model grows unsure (probabilities near 0.5): only the
    probability's two-sample test sees it. Rows logged without probabilities (before they were logged) still
    close their window, the probability skipped."""
    from loopline.monitor import ReferenceProfile, profile_outputs

    rng = np.random.default_rng(0)
    reference = pl.DataFrame({"age": rng.normal(40, 5, 500), "city": rng.choice(["a", "b"], 500)})
    profile = ReferenceProfile.from_frame(reference, numeric=["age"], categorical=["city"])
    positive = np.where(np.arange(500) % 2, rng.uniform(0.7, 1.0, 500), rng.uniform(0.0, 0.3, 500))
    validation = {"prediction": np.array([0, 1] * 250), "probability": np.column_stack([1 - positive, positive])}
    profile = profile_outputs(profile, validation, pl.Series("label", [0, 1] * 250), classes=[0, 1])
    assert "probability:1" in profile.outputs.columns  # type: ignore[union-attr]
    version = store.models.register(
        name="churn",
        algorithm="logistic_regression",
        bundle_digest=store.artifacts.put_bytes(b"bundle"),
        reference_digest=store.artifacts.put_table(reference),
        profile_digest=store.artifacts.put_bytes(profile.to_json().encode()),
        metrics={},
        params={},
        config={"features": FEATURES},
        input_schema=[],
        data_fingerprint="f" * 64,
        run_id=None,
        timings={},
    )
    store.predictions.append([])
    store.models.promote("churn", version.version)

    def answered(p: float, i: int) -> dict[str, object]:
        return {"prediction": i % 2, "probabilities": {"0": 1 - p, "1": p}}

    confident = [
        replace(r, output=answered(float(rng.uniform(0.7, 1.0) if i % 2 else rng.uniform(0.0, 0.3)), i))
        for i, r in enumerate(rows(T0, 120))
    ]
    unsure = [
        replace(r, output=answered(float(rng.uniform(0.5, 0.6) if i % 2 else rng.uniform(0.4, 0.5)), i))
        for i, r in enumerate(rows(T0 + 2 * HOUR, 120, offset=500))
    ]
    old = rows(T0 + 4 * HOUR, 120, offset=1000)  # {"prediction": 0/1} only: logged before probabilities were
    store.predictions.append([*confident, *unsure, *old])
    first, second, third = check_windows(store, config(), "2h", now=T0 + timedelta(hours=7)).closed[:3]
    drifts = [{f.feature: f for f in w.output_drift.features} for w in (first, second, third)]  # type: ignore[union-attr]
    assert set(drifts[0]) == set(drifts[1]) == {"prediction", "probability:1"}
    assert not drifts[0]["prediction"].drifted and not drifts[0]["probability:1"].drifted
    assert not drifts[1]["prediction"].drifted and drifts[1]["probability:1"].drifted  # classes alike: only p
    assert drifts[1]["probability:1"].kind == "numeric" and drifts[1]["probability:1"].p_value is not None
    assert drifts[1]["probability:1"].p_value < 0.001 and drifts[1]["probability:1"].n_current == 120
    assert set(drifts[2]) == {"prediction"} and not drifts[2]["prediction"].drifted
