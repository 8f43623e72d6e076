"""Shadow and canary challengers on a real served app: logged, never returned, never slowing the champion."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from loopline.core.errors import ConfigError
from loopline.serve import BackgroundServer, ServeSettings, create_app
from loopline.serve._challenger import (
    Challengers,
    Designation,
    canary_takes,
    parse_designations,
)
from loopline.store import Store
from loopline.store._tables import predictions
from loopline.store.feedback import SHADOW_ID_SUFFIX
from loopline.train import ModelBundle

from .conftest import make_frame, register, register_bytes
from .test_process import free_port, wait_ready

RECORD = {"x": 0.3, "n": 4, "group": "a"}
OIP = {
    "inputs": [
        {"name": k, "shape": [1], "datatype": "BYTES" if k == "group" else "FP64", "data": [v]}
        for k, v in RECORD.items()
    ]
}


@pytest.fixture
def two(store: Store) -> Store:
    """``toy`` version 1 in production, version 2 (another fit) a candidate."""
    register(store, seed=7)
    return store


def logged(store: Store) -> list[dict[str, Any]]:
    with store.predictions.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(predictions)).mappings()]


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in the exposition ``text`` (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(wanted)}\}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def shadow_of(app: Any) -> ModelBundle:
    challenger = app.state.challengers.get("toy", 1)
    assert challenger is not None
    bundle: ModelBundle = challenger.model.bundle
    return bundle


def test_shadow_answers_are_logged_with_the_marker_and_never_returned(two: Store) -> None:
    records = make_frame(20, seed=3).drop("label").to_dicts()
    app = create_app(two, ServeSettings(shadow=["toy=2"], refresh_interval=60))
    with TestClient(app) as client:
        answers = [client.post("/predict/toy", json=r).json() for r in records]
        assert client.get("/health").json()["challengers"]["toy"]["role"] == "shadow"
    for answer in answers:  # the champion's answer only, its version, one prediction, no marker
        assert answer["version"] == 1 and len(answer["predictions"]) == 1
        assert "role" not in answer["predictions"][0] and "shadow" not in str(answer)
    rows = {r["prediction_id"]: r for r in logged(two)}
    ids = [a["predictions"][0]["prediction_id"] for a in answers]
    assert len(rows) == 40
    bundle = ModelBundle.from_bytes(two.artifacts.get_bytes(two.models.get("toy", 2).bundle_digest))
    expected = bundle.predict_records(records)
    for pid, want in zip(ids, expected, strict=True):
        champion, shadow = rows[pid], rows[pid + SHADOW_ID_SUFFIX]
        assert champion["model_version"] == 1 and "role" not in champion["output"]
        assert shadow["model_version"] == 2 and shadow["output"]["role"] == "shadow"
        assert shadow["output"]["prediction"] == want["prediction"]
        assert shadow["created_at"] == champion["created_at"] and shadow["inputs"] == champion["inputs"]


def test_a_failing_shadow_fails_no_request_and_is_counted(two: Store) -> None:
    app = create_app(two, ServeSettings(shadow=["toy=2"], refresh_interval=60))
    with TestClient(app) as client:

        def boom(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
            raise RuntimeError("the shadow is broken")

        shadow_of(app).predict_records = boom  # type: ignore[method-assign]
        statuses = [client.post("/predict/toy", json=RECORD).status_code for _ in range(10)]
        deadline = time.monotonic() + 10
        while app.state.shadow.depth() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        text = client.get("/metrics").text
    assert statuses == [200] * 10
    assert metric(text, "loopline_shadow_errors_total", model="toy") == 10
    assert {r["model_version"] for r in logged(two)} == {1}


def test_a_shadow_that_falls_behind_drops_its_work_and_counts_it(two: Store) -> None:
    app = create_app(two, ServeSettings(shadow=["toy=2"], shadow_queue=1, refresh_interval=60))
    with TestClient(app) as client:
        bundle = shadow_of(app)
        real = bundle.predict_records

        def slow(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
            time.sleep(0.2)
            return real(records)

        bundle.predict_records = slow  # type: ignore[method-assign]
        started = time.perf_counter()
        statuses = [client.post("/predict/toy", json=RECORD).status_code for _ in range(20)]
        elapsed = time.perf_counter() - started
        text = client.get("/metrics").text
    dropped = metric(text, "loopline_shadow_dropped_total", model="toy")
    assert statuses == [200] * 20 and elapsed < 2.0  # 20 shadow calls of 0.2 s were never waited for
    assert dropped >= 10
    shadows = [r for r in logged(two) if r["prediction_id"].endswith(SHADOW_ID_SUFFIX)]
    assert len(shadows) + dropped == 20  # every request was either scored (close waits) or counted as dropped


async def _latencies(url: str, total: int, concurrency: int) -> list[float]:
    out: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def worker(n: int) -> None:
            for _ in range(n):
                started = time.perf_counter()
                response = await client.post("/predict/toy", json=RECORD)
                out.append(time.perf_counter() - started)
                assert response.status_code == 200

        await asyncio.gather(*(worker(total // concurrency) for _ in range(concurrency)))
    return out


def test_a_slow_shadow_does_not_slow_the_champion(two: Store) -> None:
    """Blocks of requests with and without the shadow, interleaved on one server (the machine's load drifts)."""
    with BackgroundServer(two, ServeSettings(shadow=["toy=2"], refresh_interval=60)) as server:
        bundle = shadow_of(server.app)
        real = bundle.predict_records

        def slow(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
            time.sleep(0.05)
            return real(records)

        bundle.predict_records = slow  # type: ignore[method-assign]
        service, challengers = server.app.state.service, server.app.state.challengers
        asyncio.run(_latencies(server.url, 40, 8))  # warm up
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(4):
            for shadowed in (False, True):
                service.challengers = challengers if shadowed else None
                times[shadowed] += asyncio.run(_latencies(server.url, 96, 8))
        text = httpx.get(server.url + "/metrics").text
    assert metric(text, "loopline_shadow_predictions_total", model="toy", version="2") > 0
    base, shadow = (np.percentile(times[s], [50, 99]) for s in (False, True))
    # on the request path the shadow would add its 50 ms to every answer; off it, the figures stay close
    assert shadow[0] < base[0] + 0.025, (base, shadow)
    assert shadow[1] < base[1] * 1.5 + 0.05, (base, shadow)


def test_a_canary_takes_its_share_deterministically_by_request_key(two: Store) -> None:
    app = create_app(two, ServeSettings(canary=["toy=2:0.2"], refresh_interval=60))
    with TestClient(app) as client:

        def version(key: str) -> int:
            answer = client.post("/predict/toy", json=RECORD, headers={"X-Request-Key": key})
            assert answer.status_code == 200
            return int(answer.json()["version"])

        versions = [version(f"request-{i}") for i in range(2000)]
        again = [version(f"request-{i}") for i in range(100)]
        unkeyed = {client.post("/predict/toy", json={**RECORD, "n": 7}).json()["version"] for _ in range(10)}
        oip = client.post(
            "/v2/models/toy/infer",
            json=OIP,
            headers={"X-Request-Key": next(f"request-{i}" for i, v in enumerate(versions) if v == 2)},
        ).json()
    canary = versions.count(2)
    # binomial(2000, 0.2): mean 400, sd ~17.9; 5 sd either side
    assert 310 <= canary <= 490, canary
    assert set(versions) == {1, 2} and again == versions[:100]
    assert len(unkeyed) == 1  # the same body without a key lands on the same side every time
    assert oip["model_version"] == "2"  # the OIP answer names the canary version too
    rows = logged(two)
    canaries = [r for r in rows if r["model_version"] == 2]
    assert len(canaries) == canary + (10 if unkeyed == {2} else 0) + again.count(2) + 1
    assert all(r["output"]["role"] == "canary" for r in canaries)
    assert not any(r["prediction_id"].endswith(SHADOW_ID_SUFFIX) for r in rows)


def test_canary_share_of_the_hash_is_uniform() -> None:
    keys = [f"k{i}".encode() for i in range(20_000)]
    for share in (0.05, 0.1, 0.5):
        taken = sum(canary_takes(k, share) for k in keys)
        sd = (20_000 * share * (1 - share)) ** 0.5
        assert abs(taken - 20_000 * share) < 5 * sd


def test_a_request_naming_the_version_is_never_split(two: Store) -> None:
    app = create_app(two, ServeSettings(canary=["toy=2:0.5"], shadow=[], refresh_interval=60))
    with TestClient(app) as client:
        versions = {
            client.post("/v2/models/toy/versions/1/infer", json=OIP, headers={"X-Request-Key": f"k{i}"}).json()[
                "model_version"
            ]
            for i in range(40)
        }
    assert versions == {"1"}


@pytest.mark.parametrize(
    ("shadow", "canary", "error"),
    [
        (["toy"], [], r"--shadow 'toy' is not NAME=VERSION"),
        (["toy=x"], [], r"is not NAME=VERSION"),
        ([], ["toy=2"], r"--canary 'toy=2' is not NAME=VERSION:SHARE"),
        ([], ["toy=2:0.7"], r"the share 0.7 must be above 0 and at most 0.5"),
        ([], ["toy=2:0"], r"must be above 0"),
        ([], ["toy=2:-0.1"], r"must be above 0"),
        ([], ["toy=2:nan"], r"is not NAME=VERSION:SHARE"),
        ([], ["toy=2:1.2.3"], r"the share 1.2.3 must be"),
        (["toy=2"], ["toy=2:0.1"], r"more than one challenger"),
        (["toy=0"], [], r"at least 1"),
    ],
)
def test_bad_designations_are_refused_with_the_form_that_works(
    shadow: list[str], canary: list[str], error: str
) -> None:
    with pytest.raises(ConfigError, match=error) as caught:
        parse_designations(shadow, canary)
    assert caught.value.hint


def test_designations_the_store_cannot_honour_are_refused_at_start(two: Store) -> None:
    cases = {
        "nope=1": r"--shadow nope=1: .*nope",
        "toy=9": r"--shadow toy=9: .*version 9",
        "toy=1": r"version 1 is the production version of 'toy'",
    }
    for value, error in cases.items():
        with pytest.raises(ConfigError, match=error):
            create_app(two, ServeSettings(shadow=[value]))
    broken = register_bytes(two, b"not a bundle")
    with pytest.raises(ConfigError, match=rf"--canary toy={broken.version}: .*cannot be served|not a"):
        create_app(two, ServeSettings(canary=[f"toy={broken.version}:0.1"]))


def test_loopline_serve_with_a_shadow_from_the_environment_in_a_real_process(tmp_path: Path) -> None:
    """`loopline serve` (2 workers, LOOPLINE_SERVE_SHADOW): answers by the champion, shadow rows in the store
    after SIGTERM."""
    home, url_db = tmp_path / "home", f"sqlite:///{tmp_path / 'loopline.db'}"
    with Store.open(url_db, home / "artifacts") as opened:
        opened.models.promote("toy", register(opened).version)
        register(opened, seed=7)
    port = free_port()
    env = {
        **os.environ,
        "LOOPLINE_HOME": str(home),
        "LOOPLINE_STORE_URL": url_db,
        "LOOPLINE_SERVE_SHADOW": "toy=2",
    }
    command = [sys.executable, "-m", "loopline.cli", "serve", "--port", str(port), "--workers", "2"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process)
        answers = [httpx.post(f"{url}/predict/toy", json=RECORD).json() for _ in range(10)]
        assert httpx.get(f"{url}/health").json()["challengers"]["toy"]["version"] == 2
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert {a["version"] for a in answers} == {1}
    with Store.open(url_db, home / "artifacts") as opened:
        rows = logged(opened)
    ids = {a["predictions"][0]["prediction_id"] for a in answers}
    assert {r["prediction_id"] for r in rows} == ids | {i + SHADOW_ID_SUFFIX for i in ids}


@pytest.mark.parametrize(
    ("args", "env", "error"),
    [
        (["--shadow", "toy"], {}, "--shadow 'toy' is not NAME=VERSION"),
        (["--shadow", "toy=9"], {}, "--shadow toy=9: .*version 9"),
        (["--canary", "toy=2:0.9"], {}, "the share 0.9 must be above 0 and at most 0.5"),
        ([], {"LOOPLINE_SERVE_CANARY": "nope=2:0.1"}, "--canary nope=2: .*nope"),
        (["--shadow", "toy=1"], {}, "is the production version"),
    ],
)
def test_bad_challenger_flags_stop_loopline_serve_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str], error: str
) -> None:
    from typer.testing import CliRunner

    from loopline.cli import app

    home, url_db = tmp_path / "home", f"sqlite:///{tmp_path / 'loopline.db'}"
    with Store.open(url_db, home / "artifacts") as opened:
        opened.models.promote("toy", register(opened).version)
        register(opened, seed=7)
    monkeypatch.setenv("LOOPLINE_HOME", str(home))
    monkeypatch.setenv("LOOPLINE_STORE_URL", url_db)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(app, ["serve", "--port", str(free_port()), *args])
    assert result.exit_code != 0
    assert re.search(error, " ".join(result.output.split())), result.output


def test_a_promoted_challenger_stops_challenging(two: Store) -> None:
    app = create_app(two, ServeSettings(token="s3cret", shadow=["toy=2"], refresh_interval=60))
    with TestClient(app) as client:
        before = client.post("/predict/toy", json=RECORD).json()
        promoted = client.post(
            "/admin/models/toy/promote", json={"version": 2}, headers={"Authorization": "Bearer s3cret"}
        )
        assert promoted.status_code == 200, promoted.text
        after = client.post("/predict/toy", json=RECORD).json()
    assert (before["version"], after["version"]) == (1, 2)
    ids = {r["prediction_id"] for r in logged(two)}
    first, second = (a["predictions"][0]["prediction_id"] for a in (before, after))
    assert ids == {first, first + SHADOW_ID_SUFFIX, second}  # v2 answers now; nothing shadows it


def test_a_challenger_that_does_not_load_is_reported_and_tried_again(store: Store) -> None:
    challengers = Challengers(store, [Designation("toy", 2, "shadow")], retry_seconds=0)
    assert challengers.refresh() == [] and challengers.get("toy", 1) is None
    assert "version 2" in str(challengers.snapshot()["toy"]["reason"])
    register(store, seed=7)
    assert [c.model.version for c in challengers.refresh()] == [2]
    assert challengers.snapshot()["toy"] == {"version": 2, "role": "shadow", "share": 1.0, "loaded": True}
    waiting = Challengers(store, [Designation("toy", 3, "shadow")], retry_seconds=3600)
    waiting.refresh()
    register(store, seed=8)
    assert waiting.refresh() == []  # not before retry_seconds
