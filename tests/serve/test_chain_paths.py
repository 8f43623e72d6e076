"""One function in three paths: a model with a transform chain scores a table, records and HTTP requests alike.

Property-based: Hypothesis draws rows with nulls, NaN-free extremes, unseen categories and odd timestamps;
the table path (polars), the record path (dicts, no DataFrame) and the prediction service (JSON over HTTP)
must return the same probabilities, bit for bit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests._candidates import register_bundle
from threadpoolctl import threadpool_limits

from loopline.serve import ServeSettings, create_app
from loopline.store import Store
from loopline.train import ModelBundle, TrainSpec, train_candidate

TRANSFORMS = [
    {"type": "impute", "columns": ["amount", "qty"], "strategy": "median", "add_indicator": True},
    {"type": "derive", "columns": {"per_item": "amount / (qty + 1)", "hour": "hour(at)", "late": "hour(at) >= 18"}},
    {"type": "onehot", "columns": ["city"], "min_frequency": 5},
    {"type": "scale", "columns": ["amount", "per_item"], "method": "robust"},
    {"type": "drop", "columns": ["at"]},
]
START = datetime(2024, 1, 1, tzinfo=UTC)


def make_frame(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 30.0, rows)
    qty = rng.integers(0, 6, rows).astype(float)
    amount[rng.random(rows) < 0.1] = np.nan
    city = rng.choice(["lyon", "paris", "nice", "brest"], rows, p=[0.5, 0.3, 0.18, 0.02])
    at = [START + timedelta(minutes=int(m)) for m in rng.integers(0, 60 * 24 * 30, rows)]
    label = (np.nan_to_num(amount, nan=50) / (qty + 1) + (city == "paris") * 20 + rng.normal(0, 10, rows)) > 30
    return pl.DataFrame(
        {"amount": amount, "qty": qty, "city": city, "at": at, "label": label},
        schema_overrides={"at": pl.Datetime("us", "UTC")},
    ).with_columns(pl.col("amount").fill_nan(None), pl.col("qty").cast(pl.Int64))


@pytest.fixture(scope="module")
def bundle() -> ModelBundle:
    result = train_candidate(
        make_frame(600, 1),
        make_frame(200, 2),
        TrainSpec(
            target="label",
            numeric=["amount", "qty"],
            categorical=["city", "at"],
            estimator="logistic_regression",
            transforms=TRANSFORMS,
        ),
    )
    return ModelBundle.from_bytes(result.bundle.to_bytes())  # what the store keeps: JSON + skops, no pickle


@pytest.fixture(scope="module")
def client(bundle: ModelBundle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    home: Path = tmp_path_factory.mktemp("store")
    store = Store.open(f"sqlite:///{home / 'loopline.db'}", home / "artifacts")
    register_bundle(store, "shop", bundle, reference=make_frame(100, 3).drop("label"), promote=True)
    with TestClient(create_app(store, ServeSettings(token="t", max_records=1000))) as test_client:
        yield test_client
    store.close()


def as_json(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows as a client sends them: timestamps as ISO-8601 text."""
    return json.loads(frame.write_json())


def test_the_bundle_knows_its_inputs_and_lineage(bundle: ModelBundle) -> None:
    assert {f["name"]: f["dtype"] for f in bundle.input_schema} == {
        "amount": "number",
        "qty": "number",
        "city": "string",
        "at": "datetime",
    }
    lineage = bundle.metadata["lineage"]
    assert lineage["per_item"] == ["amount", "qty"] and lineage["city=paris"] == ["city"]
    assert lineage["hour"] == ["at"] and "at" not in lineage


rows = st.fixed_dictionaries(
    {
        "amount": st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)),
        "qty": st.one_of(st.none(), st.integers(-3, 1000)),
        "city": st.one_of(st.none(), st.sampled_from(["lyon", "paris", "nice", "brest", "rome", ""])),
        "at": st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),
    }
)


@given(batch=st.lists(rows, min_size=1, max_size=25))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_table_records_and_service_agree_bit_for_bit(
    bundle: ModelBundle, client: TestClient, batch: list[dict[str, Any]]
) -> None:
    frame = pl.DataFrame(
        batch, schema={"amount": pl.Float64, "qty": pl.Int64, "city": pl.String, "at": pl.Datetime("us", "UTC")}
    )
    assert bundle.chain is not None
    features_table = bundle.preprocessor.transform(bundle.chain.transform(frame))
    features_records = bundle.features_records(as_json(frame))  # what the service receives, ISO text and all
    assert np.array_equal(features_table, features_records, equal_nan=True)
    with threadpool_limits(1):  # as the service predicts: BLAS sums depend on its thread count
        table = bundle.predict_table(frame)["probability"][:, 1].tolist()
        records = [r["probabilities"]["True"] for r in bundle.predict_records(frame.to_dicts())]
    response = client.post("/predict/shop", json=as_json(frame))
    assert response.status_code == 200, response.text
    served = [p["probabilities"]["True"] for p in response.json()["predictions"]]
    assert table == records == served


def test_one_row_and_a_big_table_get_the_same_features(bundle: ModelBundle) -> None:
    assert bundle.chain is not None
    frame = make_frame(300, 7).drop("label")
    big = bundle.preprocessor.transform(bundle.chain.transform(frame))
    for i in range(0, 300, 37):  # polars computes some things differently for one-row frames; the chain does not
        one = bundle.preprocessor.transform(bundle.chain.transform(frame.slice(i, 1)))
        assert np.array_equal(one[0], big[i], equal_nan=True)


def test_unseen_categories_are_counted_at_serving(bundle: ModelBundle) -> None:
    assert bundle.chain is not None
    before = bundle.chain.counts().get("onehot: city: other category", 0)
    bundle.predict_records([{"amount": 1.0, "qty": 1, "city": "oslo", "at": "2024-05-01T10:00:00Z"}])
    assert bundle.chain.counts()["onehot: city: other category"] == before + 1


def test_derived_columns_keep_their_order_through_the_bundle() -> None:
    train = make_frame(300, 4)
    result = train_candidate(
        train,
        make_frame(100, 5),
        TrainSpec(
            target="label",
            numeric=["amount", "qty"],
            categorical=["city"],
            estimator="logistic_regression",
            transforms=[
                {"type": "impute", "columns": ["amount"]},
                {"type": "derive", "columns": {"z_first": "amount * 2", "a_second": "z_first + 1"}},  # a_ uses z_
            ],
        ),
    )
    loaded = ModelBundle.from_bytes(result.bundle.to_bytes())
    frame = make_frame(20, 6).drop("label", "at")
    assert np.array_equal(loaded.predict_table(frame)["probability"], result.bundle.predict_table(frame)["probability"])


def test_serving_time_preprocessing_events_reach_the_metrics(client: TestClient) -> None:
    record = {"amount": 3.0, "qty": 1, "city": "reykjavik", "at": "2024-05-01T10:00:00Z"}
    assert client.post("/predict/shop", json=[record, record]).status_code == 200
    text = client.get("/metrics").text
    line = next(x for x in text.splitlines() if x.startswith("loopline_prep_events{") and "city: other category" in x)
    assert 'model="shop"' in line and float(line.rsplit(" ", 1)[1]) >= 2
