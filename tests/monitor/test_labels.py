from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from loopline.core.config import LabelSourceConfig
from loopline.core.errors import DataError
from loopline.monitor import conform_label, match_label_source

SOURCE = LabelSourceConfig(dataset="outcomes", key="customer", label="churned", time="observed")


def test_conform_label_accepts_classes_and_their_text_and_finite_numbers() -> None:
    assert conform_label(True, "binary", [False, True]) is True
    assert conform_label("True", "binary", [False, True]) is True
    assert conform_label("false", "binary", [False, True]) is False
    assert conform_label(2, "multiclass", [1, 2, 3]) == 2
    assert conform_label("2", "multiclass", [1, 2, 3]) == 2
    assert conform_label(3, "regression", None) == 3.0
    with pytest.raises(DataError, match=r"1 is not a class of this model") as info:
        conform_label(1, "binary", [False, True])  # 1 is not True: a JSON number is not a boolean
    assert info.value.hint == "Send one of its classes: False, True."
    with pytest.raises(DataError, match="'maybe' is not a class"):
        conform_label("maybe", "binary", [False, True])
    for bad in (True, "3", float("inf"), None):
        with pytest.raises(DataError, match="is not a finite number"):
            conform_label(bad, "regression", None)


def predictions() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "prediction_id": ["p1", "p2", "p3", "p4"],
            "created_at": [datetime(2025, 1, d, tzinfo=UTC) for d in (1, 5, 10, 10)],
            "customer": [7, 7, 8, None],
        }
    )


def test_each_prediction_gets_the_first_outcome_of_its_key_at_or_after_it() -> None:
    source = pl.DataFrame(
        {
            "customer": ["7", "7", "8", "8", None],
            "churned": [False, True, True, None, True],
            "observed": [datetime(2025, 1, d) for d in (3, 20, 2, 30, 4)],  # naive: taken as UTC
        }
    )
    match = match_label_source(predictions(), source, SOURCE)
    got = dict(zip(match.labels["prediction_id"], match.labels["label"], strict=True))
    assert got == {"p1": False, "p2": True}  # p3: 8's only usable outcome is before it; p4: no key
    assert (match.predictions, match.matched, match.skipped_rows) == (4, 2, 2)
    times = dict(zip(match.labels["prediction_id"], match.labels["event_time"], strict=True))
    assert times["p2"] == datetime(2025, 1, 20, tzinfo=UTC)


def test_a_date_column_is_an_event_time_at_midnight_utc() -> None:
    source = pl.DataFrame({"customer": [8], "churned": [True], "observed": [date(2025, 1, 10)]})
    assert match_label_source(predictions(), source, SOURCE).labels["prediction_id"].to_list() == ["p3"]


def test_missing_columns_and_text_times_are_refused_with_the_fix() -> None:
    with pytest.raises(DataError, match="column 'churned' is not in dataset 'outcomes'") as info:
        match_label_source(predictions(), pl.DataFrame({"customer": [1], "churn": [1], "observed": [1]}), SOURCE)
    assert info.value.hint == "Did you mean 'churn'?"
    source = pl.DataFrame({"customer": [1], "churned": [1], "observed": ["2025-01-01"]})
    with pytest.raises(DataError, match="the event-time column 'observed' is String, not a date or timestamp"):
        match_label_source(predictions(), source, SOURCE)
    with pytest.raises(DataError, match=r"column 'customer' is not in the logged inputs"):
        match_label_source(predictions().drop("customer"), source, SOURCE)
