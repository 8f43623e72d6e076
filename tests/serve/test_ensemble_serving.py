"""An ensemble version served by the real service: the answer is the mean of its members' probabilities."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from loopline.bundle import ModelBundle, ensemble_of
from loopline.serve import ServeSettings, create_app
from loopline.store import Store

from .conftest import make_frame, register, register_bytes


def bundle_of(store: Store, version: int) -> ModelBundle:
    return ModelBundle.from_bytes(store.artifacts.get_bytes(store.models.get("toy", version).bundle_digest))


@pytest.fixture
def ensemble_store(store: Store) -> Store:
    """``toy`` v1 (logistic regression), v2 (gradient boosting), v3 their ensemble, in production."""
    register(store, estimator="hist_gradient_boosting", seed=5)
    ensemble = ensemble_of([bundle_of(store, 1), bundle_of(store, 2)], metadata={"ensemble": {"members": [1, 2]}})
    version = register_bytes(store, ensemble.to_bytes())
    store.models.promote("toy", version.version)
    return store


@pytest.fixture
def client(ensemble_store: Store) -> Iterator[TestClient]:
    app = create_app(ensemble_store, ServeSettings(token="s3cret", max_records=100, refresh_interval=60))
    with TestClient(app) as test_client:
        yield test_client


def test_the_service_answers_the_mean_of_the_members(client: TestClient, ensemble_store: Store) -> None:
    frame = make_frame(40, seed=9).drop("label")
    body = client.post("/predict/toy", json=frame.to_dicts()).json()
    assert body["version"] == 3
    served = np.array([p["probabilities"]["True"] for p in body["predictions"]])
    first, second = (bundle_of(ensemble_store, v).predict_table(frame)["probability"][:, 1] for v in (1, 2))
    np.testing.assert_array_equal(served, (first + second) / 2)
    assert [p["prediction"] for p in body["predictions"]] == ((first + second) / 2 > 0.5).tolist()
    one = client.post("/predict/toy", json=frame.to_dicts()[0]).json()  # alone: the same bits as in the batch
    assert one["predictions"][0]["probabilities"]["True"] == served[0]
    assert client.get("/metrics").status_code == 200
    assert client.get("/v2/models/toy").json()["versions"] == ["3"]
