from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from loopline.core.errors import DataError
from loopline.store import FeedbackReceipt, Label, LabelCoverage, PredictionRow, Store

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def row(i: int, *, model: str = "churn", minute: int | None = None) -> PredictionRow:
    p = (i % 10) / 10
    return PredictionRow(
        prediction_id=f"p{i:04d}",
        model_name=model,
        model_version=1,
        created_at=T0 + timedelta(minutes=i if minute is None else minute),
        inputs={"x": float(i), "city": f"c{i % 2}"},
        output={"prediction": p >= 0.5, "probabilities": {"False": 1 - p, "True": p}},
        latency_ms=1.0,
    )


def everything(store: Store, model: str = "churn", **kwargs: int) -> pl.DataFrame:
    frames = list(store.feedback.labelled(model, T0, T0 + timedelta(days=1), **kwargs))
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def test_a_label_before_its_prediction_is_stored_and_joined_once_the_prediction_is_logged(store: Store) -> None:
    assert store.feedback.put("churn", [Label("p0001", True)], source="http") == FeedbackReceipt(1, 1, 0, 0)
    assert store.feedback.unmatched("churn") == 1
    assert everything(store).height == 0  # no prediction yet: nothing to join
    store.predictions.append([row(0), row(1), row(2)])
    assert store.feedback.unmatched("churn") == 0
    frame = everything(store)
    assert frame["prediction_id"].to_list() == ["p0000", "p0001", "p0002"]
    assert frame["label"].to_list() == [None, True, None]
    assert frame["probability:True"].to_list() == [0.0, 0.1, 0.2]
    assert frame["x"].to_list() == [0.0, 1.0, 2.0]
    assert frame.schema["label_received_at"] == pl.Datetime("us", "UTC")
    assert frame["label_received_at"].null_count() == 2


def test_resending_is_idempotent_and_a_different_label_updates_and_records_when(store: Store) -> None:
    labels = [Label("p0000", False), Label("p0001", True)]
    assert store.feedback.put("churn", labels, source="http") == FeedbackReceipt(2, 2, 0, 0)
    assert store.feedback.put("churn", labels, source="http") == FeedbackReceipt(2, 0, 0, 2)
    time.sleep(0.01)
    receipt = store.feedback.put("churn", [Label("p0001", False), Label("p0002", True)], source="file.csv")
    assert receipt == FeedbackReceipt(2, 1, 1, 0)
    assert store.feedback.count("churn") == 3
    assert store.feedback.get("churn", ["p0001", "nope"]) == {"p0001": Label("p0001", False)}
    store.predictions.append([row(0), row(1), row(2)])
    frame = everything(store)
    assert frame["label"].to_list() == [False, False, True]


def test_same_value_different_json_type_is_a_change(store: Store) -> None:
    store.feedback.put("reg", [Label("a", 1), Label("b", 1)], source="http")
    assert store.feedback.put("reg", [Label("a", 1.0), Label("b", True)], source="http") == FeedbackReceipt(2, 0, 1, 1)
    assert store.feedback.get("reg", ["b"])["b"].label is True


def test_a_repeated_id_in_one_call_counts_once_and_its_last_label_wins(store: Store) -> None:
    receipt = store.feedback.put("churn", [Label("p0000", True), Label("p0000", False)], source="http")
    assert receipt == FeedbackReceipt(1, 1, 0, 0)
    assert store.feedback.get("churn", ["p0000"])["p0000"].label is False


def test_labels_are_kept_per_model(store: Store) -> None:
    store.predictions.append([row(0), row(1, model="other")])
    store.feedback.put("other", [Label("p0000", True), Label("p0001", False)], source="http")
    assert everything(store)["label"].to_list() == [None]  # a label is joined under its own model only
    assert everything(store, "other")["label"].to_list() == [False]
    assert store.feedback.unmatched("other") == 1


def test_chunks_are_bounded_ordered_and_cover_the_range_once_with_ties_on_time(store: Store) -> None:
    rows = [row(i, minute=i // 3) for i in range(25)]  # three predictions share each minute
    store.predictions.append(rows)
    store.feedback.put("churn", [Label(r.prediction_id, True) for r in rows[::2]], source="http")
    frames = list(store.feedback.labelled("churn", T0, T0 + timedelta(days=1), chunk_rows=4))
    assert [f.height for f in frames] == [4, 4, 4, 4, 4, 4, 1]
    ids = pl.concat(frames, how="diagonal_relaxed")["prediction_id"].to_list()
    assert ids == [r.prediction_id for r in rows]
    window = everything(store).filter(pl.col("created_at") < T0 + timedelta(minutes=2))
    assert window.height == 6
    ranged = list(store.feedback.labelled("churn", T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)))
    assert [f["prediction_id"].to_list() for f in ranged] == [["p0003", "p0004", "p0005"]]


def test_coverage_counts_labelled_predictions_in_the_range(store: Store) -> None:
    store.predictions.append([row(i) for i in range(10)])
    store.feedback.put("churn", [Label(f"p{i:04d}", True) for i in (1, 2, 8, 99)], source="http")
    assert store.feedback.coverage("churn", T0, T0 + timedelta(minutes=5)) == LabelCoverage(5, 2)
    assert store.feedback.coverage("churn", T0, T0 + timedelta(minutes=5)).ratio == 0.4
    assert store.feedback.coverage("none", T0, T0 + timedelta(minutes=5)).ratio is None


def test_event_time_is_kept_in_utc(store: Store) -> None:
    store.predictions.append([row(0)])
    naive = datetime(2025, 3, 2, 8, 30)
    store.feedback.put("churn", [Label("p0000", True, naive)], source="dataset:outcomes")
    assert store.feedback.get("churn", ["p0000"])["p0000"].event_time == naive.replace(tzinfo=UTC)
    assert everything(store)["label_event_time"].to_list() == [naive.replace(tzinfo=UTC)]


def test_many_labels_in_one_call(store: Store) -> None:
    labels = [Label(f"id{i}", i % 3) for i in range(1_200)]  # more than one IN (...) list
    assert store.feedback.put("m", labels, source="http") == FeedbackReceipt(1_200, 1_200, 0, 0)
    assert store.feedback.put("m", labels, source="http").unchanged == 1_200


@pytest.mark.parametrize(
    ("label", "match"),
    [
        (Label("ok", [1]), r"label 1 \(ok\): \[1\] is not a label"),
        (Label("ok", float("nan")), r"label 1 \(ok\): nan is not a label"),
        (Label("", 1), r"label 1: the prediction id '' must be a string of 1 to 64"),
        (Label("x" * 65, 1), "must be a string of 1 to 64"),
    ],
)
def test_bad_labels_are_refused_and_nothing_is_stored(store: Store, label: Label, match: str) -> None:
    with pytest.raises(DataError, match=match):
        store.feedback.put("m", [Label("first", 1), label], source="http")
    assert store.feedback.count("m") == 0


def test_chunk_rows_must_be_positive(store: Store) -> None:
    with pytest.raises(DataError, match="chunk_rows is 0"):
        next(store.feedback.labelled("m", T0, T0, chunk_rows=0))
