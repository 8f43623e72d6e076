"""One input policy for every path: JSON, OIP, MLflow (JSON and CSV) and batch scoring take the same rows alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient
from tests._candidates import register_bundle

from loopline.core.errors import DataError
from loopline.run import score_batch
from loopline.serve import ServeSettings, create_app
from loopline.store import Store
from loopline.train import ModelBundle, TrainSpec, train_candidate

FEATURES = ["AGEP", "WKHP", "MAR", "RELP"]
ONEHOT = [{"type": "onehot", "columns": ["MAR", "RELP"]}]


def census(rows: int, seed: int) -> pl.DataFrame:
    """Census-like rows: int-coded categoricals (``MAR``, ``RELP``), an id and the label beside the features."""
    rng = np.random.default_rng(seed)
    mar = rng.integers(1, 6, rows)
    relp = rng.integers(0, 18, rows)
    agep = rng.integers(17, 90, rows)
    wkhp = rng.normal(38, 10, rows).round(1)
    label = (wkhp / 10 + (mar == 1) * 1.5 - (relp > 10) + rng.normal(0, 1, rows)) > 4.5
    return pl.DataFrame(
        {
            "SERIALNO": [f"2019HU{i:07d}" for i in range(rows)],
            "AGEP": agep,
            "WKHP": wkhp,
            "MAR": mar,
            "RELP": relp,
            "label": label,
        }
    )


def train(transforms: list[dict[str, Any]]) -> ModelBundle:
    spec = TrainSpec(
        target="label",
        numeric=["AGEP", "WKHP"],
        categorical=["MAR", "RELP"],
        estimator="logistic_regression",
        transforms=transforms,
    )
    result = train_candidate(census(600, 1).drop("SERIALNO"), census(200, 2).drop("SERIALNO"), spec)
    return ModelBundle.from_bytes(result.bundle.to_bytes())


@pytest.fixture(params=["preprocessor", "chain"], scope="module")
def bundle(request: pytest.FixtureRequest) -> ModelBundle:
    return train(ONEHOT if request.param == "chain" else [])


@pytest.fixture
def store(tmp_path: Path, bundle: ModelBundle) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'loopline.db'}", tmp_path / "artifacts")
    register_bundle(opened, "census", bundle, promote=True)
    yield opened
    opened.close()


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(store, ServeSettings(refresh_interval=60, log_flush_interval=10))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def rows() -> pl.DataFrame:
    return census(40, 7)


def predictions(response: Any) -> list[Any]:
    assert response.status_code == 200, response.text
    return [p["prediction"] for p in response.json()["predictions"]]


def test_the_schema_records_the_training_types(bundle: ModelBundle) -> None:
    types = {f["name"]: f["train_dtype"] for f in bundle.input_schema}
    assert types == {"AGEP": "Int64", "WKHP": "Float64", "MAR": "Int64", "RELP": "Int64"}


def test_int_coded_categoricals_score_alike_on_every_path(
    client: TestClient, store: Store, bundle: ModelBundle, rows: pl.DataFrame, tmp_path: Path
) -> None:
    """The same rows, as ints and as text, with the id and the label beside them: one answer everywhere."""
    offline = bundle.predict_table(rows.select(FEATURES))
    expected = offline["prediction"].tolist()
    records = rows.to_dicts()  # SERIALNO and label are not features: ignored
    as_text = [{**r, "MAR": str(r["MAR"]), "RELP": str(r["RELP"]), "AGEP": str(r["AGEP"])} for r in records]

    plain = client.post("/predict/census", json=records)
    assert predictions(plain) == expected
    probabilities = [p["probabilities"]["True"] for p in plain.json()["predictions"]]
    np.testing.assert_allclose(probabilities, offline["probability"][:, 1], rtol=1e-12)
    assert predictions(client.post("/predict/census", json=as_text)) == expected

    columns = rows.columns
    tensors = [
        {"name": c, "shape": [rows.height], "datatype": "INT64" if rows[c].dtype.is_integer() else "BYTES"}
        | {"data": rows[c].to_list()}
        for c in columns
        if c != "WKHP"
    ] + [{"name": "WKHP", "shape": [rows.height], "datatype": "FP64", "data": rows["WKHP"].to_list()}]
    oip = client.post("/v2/models/census/infer", json={"inputs": tensors}).json()
    assert oip["outputs"][0]["data"] == expected
    as_bytes = [t | {"datatype": "BYTES", "data": [str(v) for v in t["data"]]} for t in tensors]
    oip_text = client.post("/v2/models/census/infer", json={"inputs": as_bytes}).json()
    assert oip_text["outputs"][0]["data"] == expected

    split = {"columns": columns, "data": [[r[c] for c in columns] for r in records]}
    assert client.post("/invocations/census", json={"dataframe_split": split}).json()["predictions"] == expected
    csv = client.post("/invocations/census", content=rows.write_csv(), headers={"content-type": "text/csv"})
    assert csv.json()["predictions"] == expected

    for name in ("in.csv", "in.parquet"):
        source = tmp_path / name
        rows.write_csv(source) if name.endswith(".csv") else rows.write_parquet(source)
        done = score_batch(store, "census", source, tmp_path / f"{name}.out.parquet")
        assert pl.read_parquet(done.output)["prediction"].to_list() == expected
        assert done.ignored_columns == ["SERIALNO", "label"]

    metrics = client.get("/metrics").text
    # 2 ignored fields a record: 40 records in each of the 2 JSON, 2 OIP and 2 MLflow requests
    assert 'loopline_input_extra_fields_total{model="census"} 480.0' in metrics


def test_a_megabyte_of_text_is_refused_and_never_logged(store: Store) -> None:
    record = {"AGEP": 40, "WKHP": 38.0, "MAR": 1, "RELP": 0}
    huge = "7" * 1_000_000
    with TestClient(create_app(store, ServeSettings(refresh_interval=60, log_flush_interval=10))) as client:
        for field in ("MAR", "AGEP"):
            refused = client.post("/predict/census", json={**record, field: huge})
            assert refused.status_code == 422
            [error] = refused.json()["errors"]
            assert error["field"] == field and error["record"] == 0
            assert "1000000 characters; the limit is 1024 characters" in error["reason"]
            assert huge not in refused.text
        tensor = [{"name": "MAR", "shape": [1], "datatype": "BYTES", "data": [huge]}]
        others = [{"name": k, "shape": [1], "datatype": "FP64", "data": [v]} for k, v in record.items() if k != "MAR"]
        assert client.post("/v2/models/census/infer", json={"inputs": tensor + others}).status_code == 422
        ignored = client.post("/predict/census", json={**record, "notes": huge})  # not a feature: dropped
        assert ignored.status_code == 200
    logged = store.predictions.read("census")
    assert logged.height == 1  # only the request that was answered
    assert "notes" not in logged.columns
    assert all(huge not in str(v) for v in logged.row(0))


def test_the_limit_is_a_setting_and_a_schema_key(store: Store) -> None:
    settings = ServeSettings(refresh_interval=60, max_string_length=4)
    with TestClient(create_app(store, settings)) as client:
        response = client.post("/predict/census", json={"AGEP": "40", "WKHP": 38.0, "MAR": "00001", "RELP": 0})
        assert response.status_code == 422 and "the limit is 4 characters" in response.text
    spec = TrainSpec(
        target="label",
        numeric=["AGEP", "WKHP"],
        categorical=["MAR", "RELP"],
        estimator="logistic_regression",
        max_lengths={"MAR": 2},
    )
    trained = train_candidate(census(300, 1).drop("SERIALNO"), census(100, 2).drop("SERIALNO"), spec).bundle
    assert {f["name"]: f.get("max_length") for f in trained.input_schema}["MAR"] == 2
    register_bundle(store, "census", trained, promote=True)
    with TestClient(create_app(store, ServeSettings(refresh_interval=60))) as client:
        response = client.post("/predict/census", json={"AGEP": 40, "WKHP": 38.0, "MAR": "001", "RELP": 0})
        assert response.status_code == 422 and "the limit is 2 characters" in response.text


def test_missing_fields_are_null_when_the_model_imputes_them(store: Store) -> None:
    with TestClient(create_app(store, ServeSettings(refresh_interval=60))) as client:
        response = client.post("/predict/census", json=[{"AGEP": 40, "WKHP": 38.0, "MAR": 1}] * 3)
        assert response.status_code == 200
        assert 'loopline_input_missing_fields_total{field="RELP",model="census"} 3.0' in client.get("/metrics").text
        typo = client.post("/predict/census", json={"AGEP": 40, "WKHP": 38.0, "MAR": 1, "RELPP": 0})
        assert typo.status_code == 422 and "Did you mean 'RELPP'? Name it 'RELP'" in typo.text
    with TestClient(create_app(store, ServeSettings(refresh_interval=60, missing_as_null=False))) as client:
        strict = client.post("/predict/census", json={"AGEP": 40, "WKHP": 38.0, "MAR": 1})
        assert strict.status_code == 422
        assert strict.json()["errors"] == [
            {"field": "RELP", "reason": "missing field; send null for a missing value.", "record": 0}
        ]


def test_batch_scoring_applies_the_same_limits(store: Store, rows: pl.DataFrame, tmp_path: Path) -> None:
    bad = rows.with_columns(pl.col("MAR").cast(pl.String)).with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("1" * 2000)).otherwise(pl.col("MAR")).alias("MAR")
    )
    bad.write_csv(tmp_path / "long.csv")
    with pytest.raises(DataError, match=r"row 6, column 'MAR': text of 2000 characters; the limit is 1024"):
        score_batch(store, "census", tmp_path / "long.csv", tmp_path / "out.parquet")
    halves = rows.with_columns((pl.col("AGEP") + 0.5).alias("AGEP"))  # not whole: truncating would change them
    halves.write_parquet(tmp_path / "halves.parquet")
    with pytest.raises(DataError, match=r"row 1, column 'AGEP': expected a whole number .*got \d+\.5 \(40 such rows"):
        score_batch(store, "census", tmp_path / "halves.parquet", tmp_path / "out.parquet")
    rows.drop("RELP").write_parquet(tmp_path / "no_relp.parquet")
    done = score_batch(store, "census", tmp_path / "no_relp.parquet", tmp_path / "out.parquet")
    assert done.missing_columns == ["RELP"] and done.rows == rows.height
