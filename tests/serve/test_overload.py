"""Overload: past the concurrency limit the service answers 503 at once instead of queueing; recovery is immediate.

Bounded: 200 concurrent and 20 sequential requests against 127.0.0.1, a limit of 8, a model held behind a gate
(20 s at most): over in a few seconds.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import threading
import time
from typing import Any

import httpx
import pytest

from loopline.serve import BackgroundServer, ServeSettings
from loopline.store import Store
from loopline.train import ModelBundle

RECORD = {"x": 0.3, "n": 4, "group": "a"}
FLOOD = 200
LIMIT = 8
PROBES = 20
RATIO = 4
"""How many times a readiness probe's median time a refusal's median may take."""


class Gate:
    """Holds every model call until opened (``SAFETY`` seconds at most, then it records that it gave up)."""

    SAFETY = 20.0

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.held = 0  # model calls waiting at the gate now
        self.gave_up = False

    def hold(self) -> None:
        self.held += 1
        if not self.opened.wait(self.SAFETY):
            self.gave_up = True
        self.held -= 1


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    """Predictions wait at the gate until it opens, then the real model answers."""
    holding = Gate()
    real = ModelBundle.predict_records

    def held(self: ModelBundle, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        holding.hold()
        return real(self, records)

    monkeypatch.setattr(ModelBundle, "predict_records", held)
    return holding


async def timed(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await client.request(method, path, **kwargs)
    return response, time.perf_counter() - started


Probes = list[tuple[httpx.Response, float]]


async def flood(url: str, gate: Gate) -> tuple[list[httpx.Response], Probes, Probes, bool]:
    """FLOOD concurrent predictions; once all but LIMIT are answered, PROBES timed ones, each followed by a timed
    readiness probe (the baseline: it touches neither the model nor the limit); then the gate opens. Also
    whether the model was still held, and had never given up waiting, when the last probe returned."""
    limits = httpx.Limits(max_connections=FLOOD + 10, max_keepalive_connections=FLOOD + 10)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        tasks = [asyncio.create_task(client.post("/predict/toy", json=RECORD)) for _ in range(FLOOD)]
        deadline = time.monotonic() + 10
        while sum(t.done() for t in tasks) < FLOOD - LIMIT and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        probes, baseline = [], []
        for _ in range(PROBES):
            probes.append(await timed(client, "POST", "/predict/toy", json=RECORD))
            baseline.append(await timed(client, "GET", "/v2/health/ready"))
        still_held = gate.held > 0 and not gate.gave_up
        gate.opened.set()
        return list(await asyncio.gather(*tasks)), probes, baseline, still_held


def test_a_flood_gets_quick_503s_and_the_service_recovers_at_once(store: Store, gate: Gate) -> None:
    settings = ServeSettings(max_concurrency=LIMIT, refresh_interval=60)
    with BackgroundServer(store, settings) as server:
        answers, refusals, health, still_held = asyncio.run(flood(server.url, gate))
        statuses = [r.status_code for r in answers]
        assert sorted(set(statuses)) == [200, 503], statuses  # never a 500, never a timeout
        assert statuses.count(200) == LIMIT  # the held slots finish once the model answers again
        # while every slot is taken, a request is refused, and readiness answers, without waiting for the model:
        # all of them came back while it was still held
        assert [r.status_code for r, _ in refusals] == [503] * PROBES
        assert [r.status_code for r, _ in health] == [200] * PROBES and still_held
        # ...and at once: a refusal takes about as long as a readiness probe timed alongside it, not a wait
        refused, ready = statistics.median(s for _, s in refusals), statistics.median(s for _, s in health)
        assert refused < RATIO * ready, (sorted(s for _, s in refusals), sorted(s for _, s in health))
        first = refusals[0][0]
        assert first.headers["retry-after"] == "1"
        assert first.json()["error"] == f"the service is at its limit of {LIMIT} requests in flight."
        assert "--max-concurrency" in first.json()["hint"]

        after = httpx.post(f"{server.url}/predict/toy", json=RECORD)  # right after the flood
        assert after.status_code == 200
        text = httpx.get(f"{server.url}/metrics").text
    refused = FLOOD - LIMIT + PROBES
    assert f'loopline_errors_total{{cause="overload",model="toy"}} {float(refused)}' in text
    assert re.search(r"^loopline_requests_in_flight 0\.0$", text, re.MULTILINE)
    assert f'loopline_requests_total{{endpoint="json",model="toy",version="1"}} {float(LIMIT + 1)}' in text
    assert store.predictions.count("toy") == LIMIT + 1  # refused requests are not logged
