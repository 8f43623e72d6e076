"""Challengers designated by a store-side alias (``toy@shadow``, ``toy@canary:SHARE``) follow the alias while the
service runs; admin changes over HTTP are recorded as by the token's name."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loopline.core.errors import ConfigError
from loopline.serve import ServeSettings, create_app
from loopline.serve._challenger import Designation, parse_designations
from loopline.store import Store
from loopline.store.feedback import SHADOW_ID_SUFFIX

from .conftest import register
from .test_challengers import RECORD, logged


@pytest.fixture
def three(store: Store) -> Store:
    """``toy`` version 1 in production; versions 2 and 3 (other fits) candidates."""
    register(store, seed=7)
    register(store, seed=8)
    return store


def test_alias_designations_parse() -> None:
    assert parse_designations(["toy@shadow"], ["other@canary:0.2"]) == [
        Designation("toy", 0, "shadow", alias="shadow"),
        Designation("other", 0, "canary", 0.2, alias="canary"),
    ]


@pytest.mark.parametrize(
    ("shadow", "canary", "error"),
    [
        (["toy@Shadow"], [], r"'Shadow' is not an alias a challenger can follow"),
        (["toy@production"], [], r"'production' is not an alias a challenger can follow"),
        ([], ["toy@canary"], r"is not NAME=VERSION:SHARE or NAME@ALIAS:SHARE"),
        ([], ["toy@canary:0.9"], r"the share 0.9 must be above 0 and at most 0.5"),
    ],
)
def test_bad_alias_designations_are_refused(shadow: list[str], canary: list[str], error: str) -> None:
    with pytest.raises(ConfigError, match=error) as caught:
        parse_designations(shadow, canary)
    assert caught.value.hint


def test_an_alias_that_points_nowhere_or_an_unknown_model_is_refused_at_start(three: Store) -> None:
    with pytest.raises(ConfigError, match=r"--shadow toy@shadow: alias 'shadow' of model 'toy' points at no version"):
        create_app(three, ServeSettings(shadow=["toy@shadow"]))
    with pytest.raises(ConfigError, match=r"--canary nope@canary: model 'nope' does not exist"):
        create_app(three, ServeSettings(canary=["nope@canary:0.1"]))


def _wait(predicate: Any, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "the service did not follow the alias"
        time.sleep(0.05)


def test_a_running_service_follows_the_shadow_alias_as_it_moves(three: Store) -> None:
    three.models.set_alias("toy", "shadow", 2)
    app = create_app(three, ServeSettings(shadow=["toy@shadow"], refresh_interval=0.1))
    challengers = app.state.challengers
    phases: list[list[str]] = []
    with TestClient(app) as client:
        health = client.get("/health").json()["challengers"]["toy"]
        assert (health["version"], health["alias"], health["loaded"]) == (2, "shadow", True)
        phases.append([client.post("/predict/toy", json=RECORD).json()["predictions"][0]["prediction_id"]])
        three.models.set_alias("toy", "shadow", 3, reason="next try")
        _wait(lambda: challengers.snapshot()["toy"]["version"] == 3)
        phases.append([client.post("/predict/toy", json=RECORD).json()["predictions"][0]["prediction_id"]])
        three.models.remove_alias("toy", "shadow")
        _wait(lambda: not challengers.snapshot()["toy"]["loaded"])
        phases.append([client.post("/predict/toy", json=RECORD).json()["predictions"][0]["prediction_id"]])
    rows = {r["prediction_id"]: r for r in logged(three)}
    first, second, third = (ids[0] for ids in phases)
    assert rows[first + SHADOW_ID_SUFFIX]["model_version"] == 2
    assert rows[second + SHADOW_ID_SUFFIX]["model_version"] == 3
    assert third + SHADOW_ID_SUFFIX not in rows and rows[third]["model_version"] == 1


def test_a_running_service_follows_production_and_the_canary_alias(three: Store) -> None:
    three.models.set_alias("toy", "canary", 2)
    app = create_app(three, ServeSettings(canary=["toy@canary:0.5"], refresh_interval=0.1))
    with TestClient(app) as client:
        keys = [f"k{i}" for i in range(40)]
        versions = {
            client.post("/predict/toy", json=RECORD, headers={"X-Request-Key": k}).json()["version"] for k in keys
        }
        assert versions == {1, 2}
        three.models.promote("toy", 3, reason="gate passed")  # production moves: picked up without a restart
        _wait(lambda: client.get("/health").json()["models"]["toy"] == 3)
        versions = {
            client.post("/predict/toy", json=RECORD, headers={"X-Request-Key": k}).json()["version"] for k in keys
        }
        assert versions == {2, 3}


def test_admin_changes_are_recorded_as_by_the_token_name(three: Store) -> None:
    app = create_app(three, ServeSettings(token="s3cret", token_name="deployer", refresh_interval=60))
    auth = {"Authorization": "Bearer s3cret"}
    with TestClient(app) as client:
        promoted = client.post("/admin/models/toy/promote", json={"version": 2, "reason": "canary good"}, headers=auth)
        assert promoted.status_code == 200, promoted.text
        assert client.post("/admin/models/toy/rollback", headers=auth).status_code == 200
    last_two = three.models.history("toy")[-2:]
    assert [(e.action, e.actor, e.reason) for e in last_two] == [
        ("promote", "token:deployer", "canary good"),
        ("rollback", "token:deployer", ""),
    ]


def test_a_bad_token_name_is_refused(three: Store) -> None:
    with pytest.raises(ConfigError, match=r"the token name 'a b' is not 1-64 letters.*LOOPLINE_TOKEN_NAME"):
        create_app(three, ServeSettings(token_name="a b"))
