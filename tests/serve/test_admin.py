"""Admin endpoints: promote and rollback swap the served version; a refused request changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests._candidates import refused_type_bundle

from loopline.bundle import ModelBundle
from loopline.serve import ServeSettings, create_app
from loopline.store import ModelVersion, Store

from .conftest import register, register_bytes

RECORD = {"x": 0.3, "n": 4, "group": "a"}
ADMIN = {"authorization": "Bearer admin-s3cret"}
READER = {"authorization": "Bearer read-only"}


@pytest.fixture
def challenger(store: Store) -> ModelVersion:
    return register(store, estimator="random_forest", seed=3)


@pytest.fixture
def client(store: Store, challenger: ModelVersion) -> Iterator[TestClient]:
    settings = ServeSettings(token="admin-s3cret", predict_token="read-only", refresh_interval=60)
    with TestClient(create_app(store, settings)) as test_client:
        yield test_client


def served_version(client: TestClient) -> int:
    version = client.post("/predict/toy", json=RECORD, headers=READER).json()["version"]
    assert isinstance(version, int)
    return version


def state(store: Store) -> tuple[Any, ...]:
    production = store.models.production("toy")
    return (production.version if production else None, len(store.models.events("toy")))


def test_promote_then_rollback_swap_the_served_version(
    client: TestClient, store: Store, challenger: ModelVersion
) -> None:
    promoted = client.post("/admin/models/toy/promote", json={"version": challenger.version}, headers=ADMIN)
    assert promoted.status_code == 200
    assert promoted.json() == {"name": "toy", "production": challenger.version, "serving": {"toy": challenger.version}}
    assert served_version(client) == challenger.version  # swapped by the time the response came back
    assert store.models.production("toy").version == challenger.version  # type: ignore[union-attr]

    rolled = client.post("/admin/models/toy/rollback", json={"reason": "worse on Mondays"}, headers=ADMIN)
    assert rolled.status_code == 200 and rolled.json()["serving"] == {"toy": 1}
    assert served_version(client) == 1
    assert store.models.events("toy")[-1]["reason"] == "worse on Mondays"
    text = client.get("/metrics").text
    assert 'loopline_model_swaps_total{model="toy"} 3.0' in text  # the first load, to the challenger and back
    assert 'loopline_served_version{model="toy"} 1.0' in text
    client.post("/admin/models/toy/promote", json={"version": challenger.version}, headers=ADMIN)
    assert client.post("/admin/models/toy/rollback", headers=ADMIN).status_code == 200  # no body is fine too
    assert served_version(client) == 1


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 401, "missing bearer token"),
        ({"authorization": "Bearer wrong"}, 403, "may not call admin endpoints"),
        ({"authorization": "Basic admin-s3cret"}, 401, "missing bearer token"),
        (READER, 403, "may not call admin endpoints"),  # the predict token is not the admin token
    ],
)
@pytest.mark.parametrize("action", ["promote", "rollback", "load"])
def test_refused_admin_requests_change_nothing(
    client: TestClient, store: Store, headers: dict[str, str], status: int, message: str, action: str
) -> None:
    before = state(store)
    path = "/v2/repository/models/toy/load" if action == "load" else f"/admin/models/toy/{action}"
    response = client.post(path, json={"version": 2}, headers=headers)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert "s3cret" not in response.text and "read-only" not in response.text
    assert state(store) == before
    assert served_version(client) == 1


def test_admin_endpoints_are_closed_without_a_configured_token(store: Store, challenger: ModelVersion) -> None:
    with TestClient(create_app(store, ServeSettings(refresh_interval=60))) as client:
        response = client.post("/admin/models/toy/promote", json={"version": 2}, headers={"authorization": "Bearer x"})
        assert response.status_code == 403
        assert response.json()["hint"].startswith("Start the service with LOOPLINE_TOKEN set")
        assert state(store) == (1, 1)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"version": "2"}, 422, "positive integer"),
        ({"version": True}, 422, "positive integer"),
        ({"version": 0}, 422, "positive integer"),
        ({}, 422, "positive integer"),
        ({"version": 2, "stage": "production"}, 422, 'send {"version": N}'),
        ({"version": 2, "reason": 7}, 422, '"reason" must be a string'),
        ([2], 422, 'send {"version": N}'),
        (b'{"version": 2', 400, "malformed JSON"),
        (b"x" * 5000, 413, "limit"),
    ],
)
def test_bad_promotion_bodies_change_nothing(
    client: TestClient, store: Store, body: object, status: int, message: str
) -> None:
    if isinstance(body, bytes):
        response = client.post(
            "/admin/models/toy/promote", content=body, headers={**ADMIN, "content-type": "application/json"}
        )
    else:
        response = client.post("/admin/models/toy/promote", json=body, headers=ADMIN)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert state(store) == (1, 1)


def test_store_refusals_keep_their_status_and_hint(client: TestClient, store: Store) -> None:
    unknown_version = client.post("/admin/models/toy/promote", json={"version": 9}, headers=ADMIN)
    assert unknown_version.status_code == 404 and "has no version 9" in unknown_version.json()["error"]
    unknown_model = client.post("/admin/models/tyo/promote", json={"version": 1}, headers=ADMIN)
    assert unknown_model.status_code == 404 and "toy" in unknown_model.json()["hint"]
    nothing_before = client.post("/admin/models/toy/rollback", headers=ADMIN)
    assert nothing_before.status_code == 409 and "no earlier production version" in nothing_before.json()["error"]
    assert state(store) == (1, 1)
    assert served_version(client) == 1


def test_a_version_that_cannot_be_served_is_refused_before_the_store_changes(
    client: TestClient, store: Store, challenger: ModelVersion
) -> None:
    store.artifacts.path(challenger.bundle_digest).write_bytes(b"not a bundle")
    response = client.post("/admin/models/toy/promote", json={"version": challenger.version}, headers=ADMIN)
    assert response.status_code == 409
    assert response.json()["error"].startswith("model 'toy' version 2 cannot be served: ")
    assert "corrupt" in response.json()["error"]
    assert "Nothing was changed" in response.json()["hint"]
    assert state(store) == (1, 1)  # still production, no audit row
    assert served_version(client) == 1


def test_a_production_version_that_does_not_load_leaves_the_old_one_served(
    client: TestClient, store: Store, challenger: ModelVersion
) -> None:
    """Made production around the check (an older loopline, or a store opened without it): the service keeps
    what it serves, says why in one line, and does not stop refreshing the other models."""
    bundle = ModelBundle.from_bytes(store.artifacts.get_bytes(challenger.bundle_digest))
    refused = register_bytes(store, refused_type_bundle(bundle))
    store.models.promote("toy", refused.version)
    reloaded = client.post("/v2/repository/models/toy/load", headers=ADMIN)
    assert reloaded.status_code == 200
    failed = reloaded.json()["failed"]["toy"]
    assert failed["version"] == refused.version
    assert "'sklearn.pipeline.Pipeline', which is not an estimator loopline trusts" in failed["reason"]
    assert reloaded.json()["serving"] == {"toy": 1}
    assert served_version(client) == 1
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["models"] == {"toy": 1}
