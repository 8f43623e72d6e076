from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from loopline.store import PredictionRow, Store

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def row(i: int, *, version: int = 1, model: str = "churn") -> PredictionRow:
    return PredictionRow(
        prediction_id=f"p{i:03d}",
        model_name=model,
        model_version=version,
        created_at=T0 + timedelta(minutes=i),
        inputs={"x": float(i), "city": f"c{i % 2}"},
        output={"prediction": i % 2, "probabilities": {"0": 0.4, "1": 0.6}},
        latency_ms=1.5 * i,
    )


def test_append_read_count(store: Store) -> None:
    store.predictions.append([row(i) for i in range(3)] + [row(9, model="other")])
    df = store.predictions.read("churn")
    assert df.columns == ["x", "city", "prediction_id", "created_at", "model_version", "latency_ms", "prediction"]
    assert df["prediction_id"].to_list() == ["p000", "p001", "p002"]
    assert df["x"].to_list() == [0.0, 1.0, 2.0]
    assert df["prediction"].to_list() == [0, 1, 0]
    assert df["latency_ms"].to_list() == [0.0, 1.5, 3.0]
    assert df.schema["created_at"] == pl.Datetime("us", "UTC")
    assert df["created_at"][1] == T0 + timedelta(minutes=1)
    assert store.predictions.count("churn") == 3
    assert store.predictions.count("other") == 1
    assert store.predictions.count("none") == 0


def test_read_filters_by_time_and_version(store: Store) -> None:
    store.predictions.append([row(i, version=1 + i // 3) for i in range(6)])
    assert store.predictions.read("churn", since=T0 + timedelta(minutes=4)).height == 2
    assert store.predictions.read("churn", version=2)["prediction_id"].to_list() == ["p003", "p004", "p005"]
    assert store.predictions.read("churn", since=T0 + timedelta(minutes=1), version=1).height == 2


def test_read_without_predictions_gives_an_empty_frame(store: Store) -> None:
    store.predictions.append([])
    df = store.predictions.read("churn")
    assert df.height == 0
    assert {"prediction_id", "created_at", "model_version", "latency_ms", "prediction"} <= set(df.columns)


def test_append_new_ignores_ids_already_logged(store: Store) -> None:
    store.predictions.append([row(0), row(1)])
    store.predictions.append_new([row(1), row(2), row(2), row(3)])
    store.predictions.append_new([row(3)])
    store.predictions.append_new([])
    df = store.predictions.read("churn")
    assert df["prediction_id"].to_list() == ["p000", "p001", "p002", "p003"]
