"""Hot swap under load: a promotion mid-stream fails no request, and every answer comes from exactly one version.

Bounded: three client threads against 127.0.0.1, each for 10 answers before the promotion and 10 after it reached
that client (a few seconds; a 60 s deadline if the new version never arrives).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from loopline.serve import BackgroundServer, ServeSettings
from loopline.store import Store
from loopline.train import ModelBundle

from .conftest import make_frame, register

THREADS = 3
ANSWERS = 10
"""Answers each client gets before the promotion, and after the new version first reached it."""
RECORDS = make_frame(5, seed=21).drop("label").to_dicts()


@dataclass(frozen=True)
class Answer:
    sent: float
    received: float
    status: int
    body: dict[str, Any]


def stream(url: str, stop: threading.Event, answers: list[Answer]) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set():
            sent = time.monotonic()
            response = client.post("/predict/toy", json=RECORDS)
            answers.append(Answer(sent, time.monotonic(), response.status_code, response.json()))


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def served_version(answer: Answer) -> Any:
    return answer.body.get("version") if answer.status == 200 else None


def offline(store: Store, version: int) -> list[dict[str, Any]]:
    bundle = ModelBundle.from_bytes(store.artifacts.get_bytes(store.models.get("toy", version).bundle_digest))
    return bundle.predict_records(RECORDS)


@pytest.mark.parametrize("how", ["admin endpoint", "store and poll"])
def test_a_promotion_under_load_fails_nothing_and_never_mixes_versions(store: Store, how: str) -> None:
    new = register(store, estimator="random_forest", seed=3).version
    expected = {1: offline(store, 1), new: offline(store, new)}
    assert expected[1] != expected[new]  # the versions tell themselves apart
    settings = ServeSettings(token="admin", refresh_interval=0.2 if how == "store and poll" else 60)
    per_thread: list[list[Answer]] = [[] for _ in range(THREADS)]
    stop = threading.Event()
    with BackgroundServer(store, settings) as server:
        threads = [threading.Thread(target=stream, args=(server.url, stop, a)) for a in per_thread]
        for thread in threads:
            thread.start()
        wait_until(lambda: all(len(a) >= ANSWERS for a in per_thread), "the clients did not get going")
        swap_sent = time.monotonic()
        if how == "admin endpoint":
            promoted = httpx.post(
                f"{server.url}/admin/models/toy/promote",
                json={"version": new},
                headers={"authorization": "Bearer admin"},
                timeout=30,
            )
            assert promoted.status_code == 200 and promoted.json()["serving"] == {"toy": new}
        else:
            store.models.promote("toy", new)
        swap_done = time.monotonic()

        def switched(answers: list[Answer]) -> bool:  # ANSWERS answers since the new version first reached it
            first = next((i for i, a in enumerate(answers) if served_version(a) == new), None)
            return first is not None and len(answers) - first >= ANSWERS

        try:
            wait_until(lambda: all(switched(a) for a in per_thread), f"version {new} did not reach every client")
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
    answers = [a for thread_answers in per_thread for a in thread_answers]
    assert [a for a in answers if a.status != 200] == []  # zero failed requests
    for answer in answers:
        version = answer.body["version"]
        assert version in expected
        predictions = [{k: v for k, v in p.items() if k != "prediction_id"} for p in answer.body["predictions"]]
        assert predictions == expected[version]  # every row from that one version (JSON floats round-trip)
    for thread_answers in per_thread:  # each client sees old ... old, new ... new: never back
        versions = [a.body["version"] for a in thread_answers]
        assert versions == sorted(versions, key=lambda v: v == new)
        assert versions[0] == 1 and versions[-1] == new
    assert all(a.body["version"] == 1 for a in answers if a.received < swap_sent)
    if how == "admin endpoint":  # when the endpoint answers, the new version is the one served
        assert all(a.body["version"] == new for a in answers if a.sent > swap_done)
