"""Dashboard test fixtures: a store with a servable model, and the dashboard app over it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

from loopline.store import ModelVersion, Store
from loopline.train import TrainSpec, train_candidate
from loopline.ui import create_ui_app

ADMIN_TOKEN = "ui-test-admin-token"
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def toy_frame(rows: int, seed: int) -> pl.DataFrame:
    """Two numeric features and a category; the label depends on all three."""
    rng = np.random.default_rng(seed)
    x, n = rng.normal(size=rows), rng.integers(0, 10, rows)
    group = rng.choice(["a", "b", "c"], size=rows)
    return pl.DataFrame({"x": x, "n": n, "group": group, "label": (x + (group == "a") + n / 10) > 0.8})


def add_version(
    store: Store, name: str = "toy", *, seed: int = 0, estimator: str = "logistic_regression"
) -> ModelVersion:
    """Train a small classifier on generated rows and register it as the next version of ``name``."""
    train, valid = toy_frame(300, seed), toy_frame(150, seed + 100)
    spec = TrainSpec(target="label", numeric=["x", "n"], categorical=["group"], estimator=estimator, seed=seed)
    result = train_candidate(train, valid, spec)
    return store.models.register(
        name=name,
        algorithm=estimator,
        bundle_digest=store.artifacts.put_bytes(result.bundle.to_bytes()),
        reference_digest=store.artifacts.put_table(train.drop("label")),
        metrics=result.metrics,
        params=result.params,
        config={"features": {"numeric": ["x", "n"], "categorical": ["group"]}, "target": "label"},
        input_schema=result.bundle.input_schema,
        data_fingerprint=f"toy-{seed}",
        run_id=None,
        timings=result.timings,
    )


@pytest.fixture
def ui_store(store: Store) -> Store:
    """The shared ``store`` fixture (SQLite and PostgreSQL) with ``toy`` versions 1 (production) and 2."""
    first = add_version(store, seed=0)
    store.models.promote("toy", first.version)
    add_version(store, seed=1, estimator="hist_gradient_boosting")
    return store


@pytest.fixture
def client(ui_store: Store) -> Iterator[TestClient]:
    """The dashboard over ``ui_store``, with the admin token :data:`ADMIN_TOKEN`."""
    with TestClient(create_ui_app(ui_store, token=ADMIN_TOKEN, hosts=["testserver"])) as test_client:
        yield test_client


def sign_in(client: TestClient) -> str:
    """Sign ``client`` in with the admin token; returns the CSRF token its forms carry."""
    answer = client.post("/ui/login", data={"token": ADMIN_TOKEN}, follow_redirects=True)
    assert answer.status_code == 200, answer.text
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', answer.text)
    assert found, "a signed-in page carries the CSRF token in its forms"
    return found.group(1)


def get_json(client: TestClient, path: str, status: int = 200) -> Any:
    """``GET /api{path}``, asserting its status; the JSON answer."""
    answer = client.get(f"/api{path}")
    assert answer.status_code == status, answer.text
    return answer.json()


def get_html(client: TestClient, path: str, status: int = 200) -> str:
    """``GET /ui{path}``, asserting its status; the page."""
    answer = client.get(f"/ui{path}")
    assert answer.status_code == status, answer.text
    return answer.text


def crawl(client: TestClient, start: list[str], follow: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """Follow every dashboard link from the pages ``start`` whose address begins with one of ``follow``, asserting
    each answers 200; returns the pages seen and the other dashboard links found (another area's pages)."""
    seen: set[str] = set()
    others: set[str] = set()
    todo = list(start)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[:300])
        for found in re.findall(r'href="(/ui/[^"]*)"', answer.text):
            href = found.replace("&amp;", "&").split("#")[0]
            if "/static/" in href:
                continue
            if href.startswith(follow):
                todo.append(href)
            else:
                others.add(href)
    return seen, others
