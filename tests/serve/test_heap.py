"""What a serving process's start-up loaded is frozen out of the garbage collector's full collections."""

from __future__ import annotations

import gc

import pytest
from fastapi.testclient import TestClient

from loopline.serve import ServeSettings, create_app
from loopline.serve._heap import freeze_after_startup
from loopline.store import Store

from .conftest import make_frame, register


@pytest.fixture(autouse=True)
def _nothing_frozen() -> None:
    """Another test may have run the CLI's server in this process (which freezes it): start from nothing frozen."""
    gc.unfreeze()


def test_the_loaded_model_is_frozen_once_the_lifespan_has_started_and_requests_are_answered(store: Store) -> None:
    register(store)
    app = create_app(store, ServeSettings())
    freeze_after_startup(app)
    assert gc.get_freeze_count() == 0
    try:
        with TestClient(app) as client:  # runs the lifespan: the model is loaded, then the heap frozen
            assert gc.get_freeze_count() > 0
            bundle = app.state.cache.get("toy", None).bundle
            tracked = {id(obj) for obj in gc.get_objects()}  # the collector's generations, not the frozen ones
            assert id(bundle) not in tracked and id(bundle.__dict__) not in tracked
            record = make_frame(1, seed=5).drop("label").to_dicts()
            answer = client.post("/predict/toy", json=record)
            assert answer.status_code == 200 and answer.json()["version"] == 1
    finally:
        gc.unfreeze()  # the test process is not the server's own


def test_an_app_without_it_freezes_nothing(store: Store) -> None:
    register(store)
    with TestClient(create_app(store, ServeSettings())) as client:  # e.g. BackgroundServer, an embedding app
        assert client.get("/ping").status_code == 200
        assert gc.get_freeze_count() == 0
