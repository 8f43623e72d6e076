"""Metrics per data slice equal compute_metrics on the slice's rows; small and one-class slices stay quiet."""

from __future__ import annotations

import polars as pl
import pytest

from loopline.core.errors import DataError
from loopline.train import ModelBundle, TrainSpec, compute_metrics, slice_metrics, train_candidate
from loopline.train._slices import OTHER, slice_labels

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]


@pytest.fixture(scope="module")
def bundle(halves: tuple[pl.DataFrame, pl.DataFrame]) -> ModelBundle:
    train, valid = halves
    return train_candidate(
        train, valid, TrainSpec(target="is_male", numeric=NUMERIC, categorical=[], estimator="logistic_regression")
    ).bundle


def _expected(bundle: ModelBundle, rows: pl.DataFrame) -> dict[str, float]:
    truth = rows["is_male"].to_numpy()
    out = bundle.predict_table(rows)
    return compute_metrics(bundle.task, truth, out["prediction"], out.get("probability"), classes=bundle.classes)


def test_each_slice_equals_compute_metrics_on_its_rows(
    bundle: ModelBundle, halves: tuple[pl.DataFrame, pl.DataFrame]
) -> None:
    valid = halves[1]
    result = slice_metrics(bundle, valid, ["island", "species"], min_rows=1)
    for column in ("island", "species"):
        assert sum(s["rows"] for s in result[column].values()) == valid.height
        for value, metrics in result[column].items():
            rows = valid.filter(pl.col(column) == value)
            assert metrics == {"rows": rows.height, **_expected(bundle, rows)}


def test_values_beyond_the_top_n_form_other(bundle: ModelBundle, halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    valid = halves[1]
    result = slice_metrics(bundle, valid, ["island"], top=1, min_rows=1)["island"]
    biggest = valid["island"].value_counts(sort=True)["island"][0]
    assert list(result) == sorted(result, key=lambda k: -result[k]["rows"]) and set(result) == {biggest, OTHER}
    rest = valid.filter(pl.col("island") != biggest)
    assert result[OTHER] == {"rows": rest.height, **_expected(bundle, rest)}


def test_small_and_one_class_slices_get_counts_without_auc(bundle: ModelBundle) -> None:
    rows = 40
    frame = pl.DataFrame(
        {
            "bill_length_mm": [40.0 + i % 7 for i in range(rows)],
            "bill_depth_mm": [18.0 - i % 3 for i in range(rows)],
            "flipper_length_mm": [190.0 + i % 11 for i in range(rows)],
            "is_male": [i % 2 == 0 if i < 35 else True for i in range(rows)],
            "part": ["big" if i < 5 else ("tiny" if i >= 38 else "mid") for i in range(rows)],
        }
    ).with_columns(pl.when(pl.col("part") == "mid").then(True).otherwise(pl.col("is_male")).alias("is_male"))
    result = slice_metrics(bundle, frame, ["part"], min_rows=5)["part"]  # "mid": 33 rows, all True
    assert result["tiny"] == {"rows": 2}
    assert result["mid"]["rows"] == 33 and "roc_auc" not in result["mid"] and "accuracy" in result["mid"]
    assert "roc_auc" in result["big"]


def test_nulls_are_their_own_slice_and_unknown_columns_are_refused(
    bundle: ModelBundle, halves: tuple[pl.DataFrame, pl.DataFrame]
) -> None:
    valid = halves[1].with_columns(
        pl.when(pl.col("island") == "Biscoe").then(None).otherwise(pl.col("island")).alias("island")
    )
    assert "null" in slice_labels(valid["island"], 10).tolist()
    assert (
        slice_metrics(bundle, valid, ["island"], min_rows=1)["island"]["null"]["rows"] == valid["island"].null_count()
    )
    with pytest.raises(DataError, match="slice columns \\['islnd'\\]"):
        slice_metrics(bundle, valid, ["islnd"])
