"""Overload: past the concurrency limit the service answers 503 at once instead of queueing; recovery is immediate.

Bounded: 200 concurrent and 20 sequential requests against 127.0.0.1, a limit of 8, a model held behind a gate
(10 s at most): over in a few seconds.
"""

from __future__ import annotations

import asyncio
import re
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


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Predictions wait until the gate opens (10 s at most), then the real model answers."""
    opened = threading.Event()
    real = ModelBundle.predict_records

    def held(self: ModelBundle, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        opened.wait(timeout=10)
        return real(self, records)

    monkeypatch.setattr(ModelBundle, "predict_records", held)
    return opened


async def timed(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await client.request(method, path, **kwargs)
    return response, time.perf_counter() - started


async def flood(url: str, gate: threading.Event) -> tuple[list[httpx.Response], list[tuple[httpx.Response, float]]]:
    """FLOOD concurrent predictions; once all but LIMIT are answered, PROBES timed ones; then the gate opens."""
    limits = httpx.Limits(max_connections=FLOOD + 10, max_keepalive_connections=FLOOD + 10)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        tasks = [asyncio.create_task(client.post("/predict/toy", json=RECORD)) for _ in range(FLOOD)]
        deadline = time.monotonic() + 10
        while sum(t.done() for t in tasks) < FLOOD - LIMIT and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        probes = [await timed(client, "POST", "/predict/toy", json=RECORD) for _ in range(PROBES)]
        probes.append(await timed(client, "GET", "/v2/health/ready"))
        gate.set()
        return list(await asyncio.gather(*tasks)), probes


def test_a_flood_gets_quick_503s_and_the_service_recovers_at_once(store: Store, gate: threading.Event) -> None:
    settings = ServeSettings(max_concurrency=LIMIT, refresh_interval=60)
    with BackgroundServer(store, settings) as server:
        answers, probes = asyncio.run(flood(server.url, gate))
        statuses = [r.status_code for r in answers]
        assert sorted(set(statuses)) == [200, 503], statuses  # never a 500, never a timeout
        assert statuses.count(200) == LIMIT  # the held slots finish once the model answers again
        *refusals, (health, health_seconds) = probes
        # while every slot is taken, a request is refused at once: it does not queue behind the model
        assert [r.status_code for r, _ in refusals] == [503] * PROBES
        seconds = sorted(s for _, s in refusals)
        assert seconds[PROBES // 2] < 0.1, seconds
        first = refusals[0][0]
        assert first.headers["retry-after"] == "1"
        assert first.json()["error"] == f"the service is at its limit of {LIMIT} requests in flight."
        assert "--max-concurrency" in first.json()["hint"]
        assert health.status_code == 200 and health_seconds < 1  # probes answer while the model is busy

        after = httpx.post(f"{server.url}/predict/toy", json=RECORD)  # right after the flood
        assert after.status_code == 200
        text = httpx.get(f"{server.url}/metrics").text
    refused = FLOOD - LIMIT + PROBES
    assert f'loopline_errors_total{{cause="overload",model="toy"}} {float(refused)}' in text
    assert re.search(r"^loopline_requests_in_flight 0\.0$", text, re.MULTILINE)
    assert f'loopline_requests_total{{endpoint="json",model="toy",version="1"}} {float(LIMIT + 1)}' in text
    assert store.predictions.count("toy") == LIMIT + 1  # refused requests are not logged
