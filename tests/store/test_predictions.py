from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from loopline.store import ErrorCount, PredictionRow, Store

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


def test_read_chunks_streams_the_needed_columns_in_order(store: Store) -> None:
    logged = [row(i) for i in range(7)] + [row(50, model="other")]
    logged[3] = PredictionRow(**{**logged[3].__dict__, "inputs": {"city": "c9"}})  # no x
    store.predictions.append(list(reversed(logged)))
    chunks = list(store.predictions.read_chunks("churn", ["x", "city", "absent"], chunk_rows=3))
    assert [c.height for c in chunks] == [3, 3, 1]
    df = pl.concat(chunks, how="vertical_relaxed")
    assert df.columns == [
        "prediction_id",
        "created_at",
        "model_version",
        "latency_ms",
        "prediction",
        "x",
        "city",
        "absent",
    ]
    assert df["prediction_id"].to_list() == [f"p{i:03d}" for i in range(7)]
    assert df["x"].to_list() == [0.0, 1.0, 2.0, None, 4.0, 5.0, 6.0]
    assert df["city"].to_list() == ["c0", "c1", "c0", "c9", "c0", "c1", "c0"]
    assert df["absent"].null_count() == 7 and df["prediction"].to_list() == [0, 1, 0, 1, 0, 1, 0]
    assert df.schema["created_at"] == pl.Datetime("us", "UTC")


def test_read_chunks_between_times_and_after_a_row(store: Store) -> None:
    tied = [PredictionRow(**{**row(i).__dict__, "created_at": T0}) for i in range(4)]
    store.predictions.append(tied + [row(i) for i in range(4, 8)])
    between = store.predictions.read_chunks("churn", [], start=T0 + timedelta(minutes=5), end=T0 + timedelta(minutes=7))
    assert [r for c in between for r in c["prediction_id"]] == ["p005", "p006"]
    after = store.predictions.read_chunks("churn", [], after=(T0, "p001"), chunk_rows=2)
    assert [r for c in after for r in c["prediction_id"]] == ["p002", "p003", "p004", "p005", "p006", "p007"]
    assert store.predictions.first_at("churn") == T0
    assert store.predictions.first_at("churn", since=T0 + timedelta(seconds=1)) == T0 + timedelta(minutes=4)
    assert store.predictions.first_at("none") is None


def tally(i: int, *, kind: str = "model", version: int = 1, count: int = 3, minutes: int = 0) -> ErrorCount:
    return ErrorCount(f"e{i}", "churn", version, kind, "ValueError", T0 + timedelta(minutes=minutes), count)


def test_error_counts_sum_the_tallies_by_kind_in_a_time_range_once_per_id(store: Store) -> None:
    store.predictions.append_new([row(0)], [tally(0), tally(1, kind="input", count=2, minutes=5)])
    store.predictions.append_new([], [tally(0), tally(2, version=2, count=4, minutes=10)])  # e0 again: stored once
    assert store.predictions.error_counts("churn") == {"model": 7, "input": 2}
    assert store.predictions.error_counts("churn", T0, T0 + timedelta(minutes=10)) == {"model": 3, "input": 2}
    assert store.predictions.error_counts("churn", version=2) == {"model": 4}
    assert store.predictions.error_counts("churn", T0 + timedelta(minutes=11)) == {}
    assert store.predictions.error_counts("other") == {}
    assert store.predictions.prediction_count("churn", T0, T0 + timedelta(minutes=1)) == 1
    assert store.predictions.prediction_count("churn", T0, T0 + timedelta(minutes=1), version=2) == 0


def test_read_chunks_gives_the_served_probabilities_as_columns_null_where_not_logged(store: Store) -> None:
    old = PredictionRow("p900", "churn", 1, T0, {"x": 1.0}, {"prediction": 1}, 1.0)  # logged before probabilities
    store.predictions.append([row(0), row(1), old])
    [frame] = store.predictions.read_chunks("churn", ["x"], probabilities=["1", "absent"])
    assert frame.columns[:6] == [
        "prediction_id",
        "created_at",
        "model_version",
        "latency_ms",
        "prediction",
        "probability:1",
    ]
    assert frame.schema["probability:1"] == pl.Float64 and frame.schema["probability:absent"] == pl.Float64
    by_id = dict(zip(frame["prediction_id"], frame["probability:1"], strict=True))
    assert by_id == {"p000": 0.6, "p001": 0.6, "p900": None}
    assert frame["probability:absent"].null_count() == 3
    [plain] = store.predictions.read_chunks("churn", ["x"])  # not asked: not decoded
    assert not [c for c in plain.columns if c.startswith("probability:")]
