"""A whole pipeline with ``LOOPLINE_ARTIFACTS_URL=s3://bucket/prefix``, end to end on the S3 test server (moto):
ingest, derive, split, train, select, the cache, `store check`, batch scoring of a dataset, export, and a
prediction service loading the model from the bucket. The metadata stays in SQLite under LOOPLINE_HOME."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from loopline.cli import app
from loopline.serve import ServeSettings, create_app
from loopline.serve._factory import _worker_environment, app_from_env
from loopline.store import FsspecArtifactStore, Store
from loopline.train import ModelBundle

pytestmark = pytest.mark.s3
runner = CliRunner()

PIPELINE = """
name: toy-s3
steps:
  raw: {type: ingest, source: {type: file, path: "in/*.csv"}}
  data: {type: derive, inputs: [raw], parse_dates: [t]}
  split:
    type: split
    inputs: [data]
    target: label
    time_column: t
    valid_from: "2024-03-01"
    test_from: "2024-03-15"
  linear:
    type: train
    inputs: [split.train, split.valid, split.test]
    target: label
    numeric: [x]
    categorical: [group]
    estimator: logistic_regression
  forest:
    type: train
    inputs: [split.train, split.valid, split.test]
    target: label
    numeric: [x]
    categorical: [group]
    estimator: random_forest
    params: {n_estimators: 10}
  best: {type: select, inputs: [linear, forest, split.test], model: toy, metric: roc_auc}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_url: str) -> Path:
    rng = np.random.default_rng(0)
    rows = 2000
    t = pl.datetime_range(pl.datetime(2024, 1, 1), pl.datetime(2024, 6, 30), interval="1h", eager=True)[:rows]
    x = rng.normal(size=rows)
    group = rng.choice(["a", "b"], size=rows)
    label = (x + (group == "a") + rng.normal(scale=0.5, size=rows)) > 0.5
    (tmp_path / "in").mkdir()
    frame = pl.DataFrame({"t": t.dt.strftime("%Y-%m-%dT%H:%M:%SZ"), "x": x, "group": group, "label": label})
    frame.write_csv(tmp_path / "in" / "part.csv")
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOOPLINE_ARTIFACTS_URL", s3_url)
    monkeypatch.delenv("LOOPLINE_STORE_URL", raising=False)
    return tmp_path


@pytest.fixture
def ran(project: Path) -> dict[str, object]:
    out: dict[str, object] = json.loads(invoke("run", "pipeline.yaml", "--json"))
    return out


@pytest.fixture
def store(project: Path) -> Iterator[Store]:
    with Store.open() as opened:  # the environment's store: SQLite in LOOPLINE_HOME, artifacts on S3
        yield opened


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def bucket_objects(url: str) -> list[str]:
    fs, root = fsspec.core.url_to_fs(url, use_listings_cache=False)
    return [name.removeprefix(root + "/") for name in fs.find(root)]


def test_the_pipeline_keeps_every_artifact_in_the_bucket(ran: dict[str, object], project: Path, s3_url: str) -> None:
    assert ran["status"] == "succeeded"
    assert not (project / "home" / "artifacts").exists()  # nothing landed in the local folder
    objects = bucket_objects(s3_url)
    with Store.open() as store:
        assert isinstance(store.artifacts, FsspecArtifactStore) and store.artifacts.location == s3_url
        production = store.models.production("toy")
        assert production is not None
        for digest in (production.bundle_digest, production.reference_digest):
            assert f"{digest[:2]}/{digest}" in objects
        ModelBundle.from_bytes(store.artifacts.get_bytes(production.bundle_digest))  # verified on the way
        (version,) = store.datasets.versions("raw")
        for part in store.datasets.parts("raw", version.upto_seq):
            assert f"{part['digest'][:2]}/{part['digest']}" in objects

    again = json.loads(invoke("run", "pipeline.yaml", "--json"))
    assert {name: again["steps"][name]["status"] for name in ("data", "split", "linear", "forest")} == dict.fromkeys(
        ("data", "split", "linear", "forest"), "cached"
    )

    report = json.loads(invoke("store", "check", "--json"))
    everything = bucket_objects(s3_url)
    assert report["clean"] and report["artifacts"] == report["referenced"] == len(everything) >= len(objects)


def test_store_check_finds_and_fixes_orphans_and_temp_objects_in_the_bucket(
    ran: dict[str, object], s3_url: str
) -> None:
    fs, root = fsspec.core.url_to_fs(s3_url, use_listings_cache=False)
    orphan = "ab" + "0" * 62
    fs.pipe_file(f"{root}/ab/{orphan}", b"nobody refers to me")
    fs.pipe_file(f"{root}/.tmp-killed.part", b"half")
    found = runner.invoke(app, ["store", "check", "--json", "--grace-minutes", "0"])
    assert found.exit_code == 1, found.output
    report = json.loads(found.output)
    assert [f["path"] for f in report["orphans"]] == [f"ab/{orphan}"]
    assert [f["path"] for f in report["temp_files"]] == [".tmp-killed.part"]
    fixed = json.loads(invoke("store", "check", "--fix", "--grace-minutes", "0", "--json"))
    assert [f["removed"] for f in fixed["orphans"] + fixed["temp_files"]] == [True, True] and fixed["clean"]
    assert not fs.exists(f"{root}/ab/{orphan}") and not fs.exists(f"{root}/.tmp-killed.part")


def test_batch_scoring_and_export_read_the_model_and_dataset_from_the_bucket(
    ran: dict[str, object], project: Path
) -> None:
    scores = project / "scores.parquet"
    invoke("predict", "toy", "-i", "dataset:raw", "-o", str(scores))
    assert pl.read_parquet(scores).height == 2000
    with Store.open() as store:
        production = store.models.production("toy")
        assert production is not None
        version = str(production.version)
        exported = json.loads(invoke("models", "export", "toy", "--version", version, "--out", "model.zip", "--json"))
        assert exported["digest"] == production.bundle_digest
        assert (project / "model.zip").read_bytes() == store.artifacts.get_bytes(production.bundle_digest)


def test_a_tampered_bundle_in_the_bucket_is_refused(ran: dict[str, object], store: Store, s3_url: str) -> None:
    production = store.models.production("toy")
    assert production is not None
    fs, root = fsspec.core.url_to_fs(s3_url, use_listings_cache=False)
    digest = production.bundle_digest
    fs.pipe_file(f"{root}/{digest[:2]}/{digest}", b"not the bundle")
    code = runner.invoke(app, ["models", "export", "toy", "--version", str(production.version), "--out", "model.zip"])
    assert code.exit_code == 1 and f"artifact {digest} is corrupted" in code.output
    assert not Path("model.zip").exists()


def test_the_prediction_service_loads_the_model_from_the_bucket(
    ran: dict[str, object], store: Store, project: Path
) -> None:
    records = [{"x": 0.3, "group": "a"}, {"x": -1.0, "group": "b"}]
    production = store.models.production("toy")
    assert production is not None
    offline = ModelBundle.from_bytes(store.artifacts.get_bytes(production.bundle_digest))
    expected = offline.predict_table(pl.DataFrame(records))["prediction"].tolist()
    settings = ServeSettings(refresh_interval=60)
    with TestClient(create_app(store, settings)) as client:
        body = client.post("/predict/toy", json=records).json()
    assert [p["prediction"] for p in body["predictions"]] == expected
    assert (project / "home" / "predlog").is_dir()  # the log spool is local state, next to the database
    with (
        _worker_environment(store, "127.0.0.1", settings),
        TestClient(app_from_env(), base_url="http://127.0.0.1") as worker,
    ):
        answer = worker.post("/predict/toy", json=records)
        assert answer.status_code == 200, answer.text
        assert answer.json()["version"] == production.version
