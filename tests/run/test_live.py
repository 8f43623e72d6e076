"""compare_live: a shadow's and a canary's logged traffic against the champion's, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from tests.serve.conftest import make_frame, register

from loopline.core.errors import DataError, NotFoundError
from loopline.monitor import performance_figures
from loopline.run import compare_live
from loopline.serve import ServeSettings, create_app
from loopline.store import Store

ROWS, LABELLED = 60, 40


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(store_url, tmp_path / "artifacts", local_dir=tmp_path / "local")
    opened.models.promote("toy", register(opened).version)
    register(opened, seed=7)
    yield opened
    opened.close()


def serve_traffic(store: Store, settings: ServeSettings) -> tuple[list[dict[str, object]], list[bool]]:
    """ROWS one-record requests (keyed), then labels for the first LABELLED answers; the answers and truths."""
    frame = make_frame(ROWS, seed=11)
    truths = frame["label"].to_list()
    with TestClient(create_app(store, settings)) as client:
        answers = [
            client.post("/predict/toy", json=record, headers={"X-Request-Key": f"r{i}"}).json()
            for i, record in enumerate(frame.drop("label").to_dicts())
        ]
        labels = [
            {"id": a["predictions"][0]["prediction_id"], "label": t}  # type: ignore[index]
            for a, t in zip(answers[:LABELLED], truths, strict=False)
        ]
        assert client.post("/feedback", json={"model": "toy", "labels": labels}).status_code == 200
    return answers, truths


def _shares(values: list[object]) -> dict[object, float]:
    return {k: v / len(values) for k, v in Counter(values).items()}


def window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(hours=1), now + timedelta(hours=1)


def test_a_shadow_is_compared_on_the_same_requests(store: Store) -> None:
    serve_traffic(store, ServeSettings(shadow=["toy=2"], refresh_interval=60))
    start, end = window()
    result = compare_live(store, "toy", start, end, min_labels=10)
    assert result.mode == "shadow" and result.task == "binary"
    assert (result.champion.version, result.challenger.version) == (1, 2)
    assert result.champion.rows == result.challenger.rows == result.paired == ROWS
    assert result.champion.latency_p50_ms is not None and result.challenger.latency_p99_ms is not None
    # the figures, from the rows themselves: predictions paired by id, labels joined through the champion's id
    frame = next(store.feedback.labelled("toy", start, end, inputs=False, shadows=True))
    mine = frame.filter(~frame["prediction_id"].str.ends_with(":shadow")).sort("prediction_id")
    theirs = frame.filter(frame["prediction_id"].str.ends_with(":shadow")).sort("prediction_id")
    assert theirs["label"].null_count() == ROWS  # the shadow's own ids carry no label...
    same = (mine["prediction"] == theirs["prediction"]).to_numpy()
    assert result.agreement == pytest.approx(same.mean())
    a, b = (_shares(f["prediction"].to_list()) for f in (mine, theirs))
    tvd = 0.5 * sum(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in a.keys() | b.keys())
    assert result.distribution_distance == pytest.approx(tvd)
    # ...yet both sides are scored on the LABELLED requests
    assert result.champion.realised.labelled == result.challenger.realised.labelled == LABELLED
    expected = performance_figures(theirs.with_columns(mine["label"]), "binary", [False, True], min_labels=10).metrics
    assert result.challenger.realised.metrics == pytest.approx(expected)
    evidence = result.evidence("roc_auc")
    assert evidence is not None
    assert [e.version for e in evidence] == [1, 2] and evidence[1].score == pytest.approx(expected["roc_auc"])
    assert result.evidence("no_such_metric") is None
    assert compare_live(store, "toy", start, end).evidence("roc_auc") is not None  # 40 labels: enough by default


def test_a_canary_is_compared_on_its_own_traffic(store: Store) -> None:
    answers, _ = serve_traffic(store, ServeSettings(canary=["toy=2:0.5"], refresh_interval=60))
    start, end = window()
    result = compare_live(store, "toy", start, end, min_labels=5)
    served = [a["version"] for a in answers]
    assert result.mode == "canary" and result.paired == 0 and result.agreement is None
    assert (result.champion.rows, result.challenger.rows) == (served.count(1), served.count(2))
    assert result.champion.realised.labelled + result.challenger.realised.labelled == LABELLED
    assert result.distribution_distance is not None and 0 <= result.distribution_distance <= 1
    p99 = result.challenger.latency_p99_ms
    assert p99 is not None and np.isfinite(p99)


def test_bad_windows_and_missing_challengers_are_clear_errors(store: Store) -> None:
    start, end = window()
    with pytest.raises(DataError, match="no challenger of 'toy' logged any traffic"):
        compare_live(store, "toy", start, end)
    with pytest.raises(DataError, match="ends .* before it starts"):
        compare_live(store, "toy", end, start)
    with pytest.raises(NotFoundError, match="no production version"):
        compare_live(store, "toyy", start, end)
    with pytest.raises(DataError, match="the champion itself"):
        compare_live(store, "toy", start, end, challenger=1)
    empty = compare_live(store, "toy", start, end, challenger=2)
    assert empty.mode == "none" and empty.champion.rows == 0 and empty.distribution_distance is None


def test_a_regression_shadow_reports_the_difference_and_the_ks_statistic(store: Store) -> None:
    """Rows logged by hand the way the service logs them (ids, created_at, versions, role) for a regression."""
    from scipy import stats

    from loopline.store import Label, PredictionRow
    from loopline.train import TrainSpec, train_candidate

    frame = make_frame(300, seed=1)
    spec = TrainSpec(target="x", numeric=["n"], categorical=["group"], estimator="linear_regression", task="regression")
    result = train_candidate(frame, make_frame(100, seed=2), spec)
    for _ in range(2):
        version = store.models.register(
            name="price",
            algorithm="linear_regression",
            bundle_digest=store.artifacts.put_bytes(result.bundle.to_bytes()),
            reference_digest=None,
            metrics=result.metrics,
            params=result.params,
            config={},
            input_schema=result.bundle.input_schema,
            data_fingerprint="test",
            run_id=None,
            timings=result.timings,
        )
    store.models.promote("price", 1)
    rng = np.random.default_rng(0)
    mine, theirs = rng.normal(size=50), rng.normal(0.5, size=50)
    now = datetime.now(UTC)
    rows = []
    for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
        pid = f"p{i:03d}"
        rows.append(PredictionRow(pid, "price", 1, now, {"n": i}, {"prediction": float(a)}, 1.0 + i))
        shadow = {"prediction": float(b), "role": "shadow"}
        rows.append(PredictionRow(pid + ":shadow", "price", version.version, now, {"n": i}, shadow, 2.0))
    store.predictions.append(rows)
    store.feedback.put("price", [Label(f"p{i:03d}", 0.0) for i in range(35)], source="test")
    start, end = window()
    found = compare_live(store, "price", start, end)
    assert found.mode == "shadow" and found.paired == 50 and found.agreement is None
    assert found.mean_abs_difference == pytest.approx(np.abs(mine - theirs).mean())
    assert found.distribution_test == "ks"
    assert found.distribution_distance == pytest.approx(stats.ks_2samp(mine, theirs).statistic)
    assert found.champion.latency_p50_ms == pytest.approx(np.percentile(1.0 + np.arange(50), 50))
    assert found.challenger.latency_p99_ms == pytest.approx(2.0)
    assert found.challenger.realised.labelled == 35
    assert found.challenger.realised.metrics["mae"] == pytest.approx(np.abs(theirs[:35]).mean())
