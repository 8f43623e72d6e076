"""The alias endpoints: read, set (with compare-and-set) and remove a model's aliases over HTTP with the admin
token; every change is in the audit trail as by the token's name, a refused request changes nothing, and a
challenger that follows the alias is reloaded before the answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loopline.serve import ServeSettings, create_app
from loopline.store import Store

from .conftest import register

ADMIN = {"authorization": "Bearer admin-s3cret"}
READER = {"authorization": "Bearer read-only"}
RECORD = {"x": 0.3, "n": 4, "group": "a"}


@pytest.fixture
def three(store: Store) -> Store:
    """``toy`` version 1 in production; versions 2 and 3 (other fits) candidates."""
    register(store, seed=7)
    register(store, seed=8)
    return store


@pytest.fixture
def client(three: Store) -> Iterator[TestClient]:
    settings = ServeSettings(
        token="admin-s3cret", token_name="deployer", predict_token="read-only", refresh_interval=60
    )
    with TestClient(create_app(three, settings)) as test_client:
        yield test_client


def state(store: Store) -> tuple[Any, ...]:
    return (store.models.aliases("toy"), len(store.models.history("toy")))


def test_an_alias_is_set_moved_read_and_removed_with_the_token_names_audit(client: TestClient, three: Store) -> None:
    set_ = client.put("/admin/models/toy/aliases/staging", json={"version": 2, "reason": "try it"}, headers=ADMIN)
    assert set_.status_code == 200, set_.text
    assert set_.json() == {"name": "toy", "alias": "staging", "version": 2}
    moved = client.put("/admin/models/toy/aliases/staging", json={"version": 3, "expect": 2}, headers=ADMIN)
    assert moved.status_code == 200 and moved.json()["version"] == 3
    read = client.get("/admin/models/toy/aliases", headers=ADMIN)
    assert read.status_code == 200
    assert read.json() == {"name": "toy", "aliases": {"production": 1, "staging": 3}}
    removed = client.request(
        "DELETE", "/admin/models/toy/aliases/staging", json={"expect": 3, "reason": "done"}, headers=ADMIN
    )
    assert removed.status_code == 200 and removed.json() == {"name": "toy", "alias": "staging", "removed_from": 3}
    assert three.models.aliases("toy") == {"production": 1}
    events = [(e.action, e.alias, e.from_version, e.to_version, e.actor, e.reason) for e in three.models.history("toy")]
    assert events[-3:] == [
        ("alias", "staging", None, 2, "token:deployer", "try it"),
        ("alias", "staging", 2, 3, "token:deployer", ""),
        ("unalias", "staging", 3, None, "token:deployer", "done"),
    ]
    set_again = client.put("/admin/models/toy/aliases/staging", json={"version": 2}, headers=ADMIN)
    assert set_again.status_code == 200
    assert client.delete("/admin/models/toy/aliases/staging", headers=ADMIN).status_code == 200  # no body is fine


def test_moving_production_swaps_the_served_version(client: TestClient, three: Store) -> None:
    moved = client.put("/admin/models/toy/aliases/production", json={"version": 3, "expect": 1}, headers=ADMIN)
    assert moved.status_code == 200, moved.text
    assert moved.json() == {"name": "toy", "production": 3, "serving": {"toy": 3}}
    assert client.post("/predict/toy", json=RECORD, headers=READER).json()["version"] == 3
    assert three.models.history("toy")[-1].actor == "token:deployer"
    refused = client.delete("/admin/models/toy/aliases/production", headers=ADMIN)
    assert refused.status_code == 409 and "cannot be removed" in refused.json()["error"]
    assert "promote" in refused.json()["hint"]


def test_a_failed_compare_and_set_says_where_the_alias_points_now(client: TestClient, three: Store) -> None:
    three.models.set_alias("toy", "shadow", 2)
    before = state(three)
    stale = client.put("/admin/models/toy/aliases/shadow", json={"version": 3, "expect": 3}, headers=ADMIN)
    assert stale.status_code == 409
    assert stale.json()["error"] == (
        "alias 'shadow' of model 'toy' points at version 2, not version 3: another change came first."
    )
    assert "loopline models history toy" in stale.json()["hint"]
    unset = client.put("/admin/models/toy/aliases/canary", json={"version": 3, "expect": 2}, headers=ADMIN)
    assert unset.status_code == 409 and "points at no version, not version 2" in unset.json()["error"]
    stale_delete = client.request("DELETE", "/admin/models/toy/aliases/shadow", json={"expect": 0}, headers=ADMIN)
    assert stale_delete.status_code == 409 and "points at version 2, not no version" in stale_delete.json()["error"]
    assert state(three) == before
    first_time = client.put("/admin/models/toy/aliases/canary", json={"version": 3, "expect": 0}, headers=ADMIN)
    assert first_time.status_code == 200  # expect 0: only if it points at nothing now


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 401, "missing bearer token"),
        ({"authorization": "Bearer wrong"}, 403, "may not call admin endpoints"),
        (READER, 403, "may not call admin endpoints"),  # the predict token is not the admin token
    ],
)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_alias_requests_without_the_admin_token_are_refused_and_change_nothing(
    client: TestClient, three: Store, headers: dict[str, str], status: int, message: str, method: str
) -> None:
    three.models.set_alias("toy", "shadow", 2)
    before = state(three)
    path = "/admin/models/toy/aliases" if method == "GET" else "/admin/models/toy/aliases/shadow"
    response = client.request(method, path, json={"version": 3} if method == "PUT" else None, headers=headers)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert "s3cret" not in response.text and "aliases" not in response.json()
    assert state(three) == before


def test_alias_endpoints_are_closed_without_a_configured_token(three: Store) -> None:
    with TestClient(create_app(three, ServeSettings(refresh_interval=60))) as client:
        response = client.put("/admin/models/toy/aliases/shadow", json={"version": 2}, headers=ADMIN)
        assert response.status_code == 403 and "no token is configured" in response.json()["error"]
    assert three.models.aliases("toy") == {"production": 1}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"version": "2"}, 422, '"version" must be a positive integer'),
        ({"version": True}, 422, '"version" must be a positive integer'),
        ({"version": 0}, 422, '"version" must be a positive integer'),
        ({}, 422, '"version" must be a positive integer'),
        ({"version": 2, "expect": -1}, 422, '"expect" must be null or the version the alias points at now'),
        ({"version": 2, "expect": "1"}, 422, '"expect" must be null'),
        ({"version": 2, "reason": 7}, 422, '"reason" must be a string'),
        ({"version": 2, "expected": 1}, 422, 'unknown field \'expected\'; send {"version": N, "expect": M or null'),
        ([2], 422, "send a JSON object {"),
        (b'{"version": 2', 400, "malformed JSON"),
        (b"x" * 5000, 413, "limit"),
    ],
)
def test_bad_alias_bodies_name_the_field_and_change_nothing(
    client: TestClient, three: Store, body: object, status: int, message: str
) -> None:
    before = state(three)
    if isinstance(body, bytes):
        headers = {**ADMIN, "content-type": "application/json"}
        response = client.put("/admin/models/toy/aliases/shadow", content=body, headers=headers)
    else:
        response = client.put("/admin/models/toy/aliases/shadow", json=body, headers=ADMIN)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert state(three) == before


def test_unknown_versions_models_and_aliases_are_named(client: TestClient, three: Store) -> None:
    before = state(three)
    unknown_version = client.put("/admin/models/toy/aliases/shadow", json={"version": 9}, headers=ADMIN)
    assert unknown_version.status_code == 404 and "has no version 9" in unknown_version.json()["error"]
    unknown_model = client.get("/admin/models/tyo/aliases", headers=ADMIN)
    assert unknown_model.status_code == 404 and "toy" in unknown_model.json()["hint"]
    not_set = client.delete("/admin/models/toy/aliases/shadow", headers=ADMIN)
    assert not_set.status_code == 404
    assert not_set.json()["error"] == "model 'toy' has no alias 'shadow'; its aliases are: production."
    bad_name = client.put("/admin/models/toy/aliases/Shadow", json={"version": 2}, headers=ADMIN)
    assert bad_name.status_code == 400 and "'Shadow' is not an alias name" in bad_name.json()["error"]
    assert "lowercase" in bad_name.json()["hint"]
    assert state(three) == before


def test_a_version_that_cannot_be_served_gets_no_alias(client: TestClient, three: Store) -> None:
    before = state(three)
    three.artifacts.path(three.models.get("toy", 2).bundle_digest).write_bytes(b"not a bundle")
    response = client.put("/admin/models/toy/aliases/shadow", json={"version": 2}, headers=ADMIN)
    assert response.status_code == 409
    assert response.json()["error"].startswith("model 'toy' version 2 cannot be served: ")
    assert state(three) == before


def test_the_challenger_that_follows_the_alias_is_reloaded_before_the_answer(three: Store) -> None:
    """The poll is a minute away: the shadow moves (and stops) because the alias moved over HTTP."""
    three.models.set_alias("toy", "shadow", 2)
    settings = ServeSettings(token="admin-s3cret", shadow=["toy@shadow"], refresh_interval=60)
    with TestClient(create_app(three, settings)) as client:
        assert client.get("/health").json()["challengers"]["toy"]["version"] == 2
        moved = client.put("/admin/models/toy/aliases/shadow", json={"version": 3, "expect": 2}, headers=ADMIN)
        assert moved.status_code == 200, moved.text
        challenger = moved.json()["challenger"]
        assert (challenger["version"], challenger["alias"], challenger["loaded"]) == (3, "shadow", True)
        assert client.get("/health").json()["challengers"]["toy"]["version"] == 3
        other = client.put("/admin/models/toy/aliases/staging", json={"version": 2}, headers=ADMIN)
        assert "challenger" not in other.json()  # no challenger follows staging
        removed = client.delete("/admin/models/toy/aliases/shadow", headers=ADMIN)
        assert removed.status_code == 200 and removed.json()["challenger"]["loaded"] is False
        three.models.set_alias("toy", "shadow", 2)  # moved behind the service's back: the reload picks it up
        reloaded = client.post("/v2/repository/models/toy/load", headers=ADMIN)
        assert reloaded.json()["challengers"]["toy"]["version"] == 2
        assert reloaded.json()["challengers"]["toy"]["loaded"] is True
