"""Micro-batching: concurrent requests merged into one model call answer exactly what scoring alone answers.

Also the HTTP stack: uvicorn runs on uvloop and httptools when installed, and malformed requests still get 4xx.
Bounded: the HTTP tests send 8 threads x 15 single-record requests to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path
from typing import Any, cast

import httpx
import polars as pl
import pytest
import uvicorn
from tests._candidates import register_bundle
from threadpoolctl import threadpool_limits

from loopline.core.errors import ConfigError, SchemaValidationError
from loopline.serve import BackgroundServer, ServeSettings, create_app
from loopline.serve._models import LoadedModel, ModelRunner, Prediction
from loopline.store import Store
from loopline.train import ModelBundle, TrainSpec, train_candidate

from . import test_chain_paths as chain
from .conftest import make_frame

THREADS, PER_THREAD = 8, 15


def toy_bundle(estimator: str, seed: int = 0) -> ModelBundle:
    result = train_candidate(
        make_frame(400, seed),
        make_frame(200, seed + 1),
        TrainSpec(target="label", numeric=["x", "n"], categorical=["group"], estimator=estimator, seed=seed),
    )
    return ModelBundle.from_bytes(result.bundle.to_bytes())


def chain_classifier() -> ModelBundle:
    """Gradient boosting behind the transform chain of test_chain_paths (imputation, derived, one-hot, scaling)."""
    result = train_candidate(
        chain.make_frame(600, 1),
        chain.make_frame(200, 2),
        TrainSpec(
            target="label",
            numeric=["amount", "qty"],
            categorical=["city", "at"],
            estimator="hist_gradient_boosting",
            transforms=cast(list[dict[str, Any]], chain.TRANSFORMS),
        ),
    )
    return ModelBundle.from_bytes(result.bundle.to_bytes())


def regressor() -> ModelBundle:
    def frame(rows: int, seed: int) -> pl.DataFrame:
        toy = make_frame(rows, seed)
        return toy.with_columns(y=toy["x"] * 2 + toy["n"]).drop("label", "x")

    result = train_candidate(
        frame(400, 0), frame(200, 1), TrainSpec(target="y", numeric=["n"], categorical=["group"], estimator="ridge")
    )
    return ModelBundle.from_bytes(result.bundle.to_bytes())


def open_store(home: Path, bundle: ModelBundle, reference: pl.DataFrame) -> Store:
    store = Store.open(f"sqlite:///{home / 'loopline.db'}", home / "artifacts")
    register_bundle(store, "m", bundle, reference=reference, promote=True)
    return store


def send_all(url: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """POST each record alone from THREADS threads at once; the answers in record order."""
    answers: list[dict[str, Any]] = [{} for _ in records]

    def client(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            for i in range(offset, len(records), THREADS):
                response = http.post("/predict/m", json=records[i])
                assert response.status_code == 200, response.text
                answers[i] = response.json()["predictions"][0]

    threads = [threading.Thread(target=client, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def metric(text: str, name: str) -> float:
    line = next(x for x in text.splitlines() if x.startswith(name + "{"))
    return float(line.rsplit(" ", 1)[1])


@pytest.mark.parametrize("kind", ["classifier with a transform chain", "regressor"])
@pytest.mark.parametrize("delay", [0.0, 0.002])
def test_concurrent_requests_in_merged_batches_equal_scoring_alone_and_offline(
    tmp_path: Path, kind: str, delay: float
) -> None:
    if kind == "regressor":
        bundle, frame = regressor(), make_frame(THREADS * PER_THREAD, 5).drop("label", "x")
        records = frame.to_dicts()
    else:
        bundle, frame = chain_classifier(), chain.make_frame(THREADS * PER_THREAD, 5).drop("label")
        records = chain.as_json(frame)  # as a client sends them: timestamps as ISO-8601 text
    store = open_store(tmp_path, bundle, frame)
    try:
        with BackgroundServer(store, ServeSettings(max_batch_delay=delay, refresh_interval=60)) as server:
            answers = send_all(server.url, records)
            text = httpx.get(f"{server.url}/metrics").text
    finally:
        store.close()
    with threadpool_limits(1):  # as the service predicts
        alone = [bundle.predict_records([r])[0] for r in records]
        offline = bundle.predict_table(frame)
    served = [{k: v for k, v in a.items() if k != "prediction_id"} for a in answers]
    assert served == alone  # bit for bit: JSON floats round-trip
    assert [a["prediction"] for a in answers] == offline["prediction"].tolist()
    if kind != "regressor":
        assert [a["probabilities"]["True"] for a in answers] == offline["probability"][:, 1].tolist()
    calls = metric(text, "loopline_model_batch_requests_count")
    assert metric(text, "loopline_model_batch_requests_sum") == len(records)
    assert metric(text, "loopline_model_batch_rows_sum") == len(records)
    if delay > 0:  # merged: fewer model calls than requests (with no delay, only when the worker was busy)
        assert calls < len(records)


def run_together(runner: ModelRunner, jobs: list[tuple[LoadedModel, list[dict[str, Any]]]]) -> list[Any]:
    """Start the runner, submit every job in one event-loop turn, close; results or exceptions in job order."""

    async def main() -> list[Any]:
        runner.start()
        try:
            return await asyncio.gather(*(runner.predict(m, r) for m, r in jobs), return_exceptions=True)
        finally:
            await asyncio.to_thread(runner.close)

    return asyncio.run(main())


def alone(model: LoadedModel, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with threadpool_limits(1):
        return [model.bundle.predict_records([r])[0] for r in records]


def test_a_batch_closes_at_max_batch_rows_and_merges_within_the_delay() -> None:
    model = LoadedModel("toy", 1, toy_bundle("random_forest"), 0.0)
    records = make_frame(40, 3).drop("label").to_dicts()
    calls: list[tuple[int, int]] = []
    runner = ModelRunner(max_batch_rows=8, max_batch_delay=0.05, on_batch=lambda m, n, rows: calls.append((n, rows)))
    results = run_together(runner, [(model, [r]) for r in records])
    assert all(isinstance(r, Prediction) for r in results)
    assert [r.outputs[0] for r in results] == alone(model, records)
    assert max(rows for _, rows in calls) == 8 and all(rows <= 8 for _, rows in calls)
    assert len(calls) < 40 and sum(n for n, _ in calls) == 40
    big = run_together(ModelRunner(max_batch_rows=8, max_batch_delay=0.05), [(model, records[:20])])[0]
    assert big.batch_rows == 20 and len(big.outputs) == 20  # a bigger request goes alone, never split


def test_versions_are_never_mixed_in_one_call() -> None:
    old = LoadedModel("toy", 1, toy_bundle("hist_gradient_boosting"), 0.0)
    new = LoadedModel("toy", 2, toy_bundle("random_forest", seed=3), 0.0)
    records = make_frame(30, 4).drop("label").to_dicts()
    calls: list[tuple[int, int, int]] = []
    runner = ModelRunner(max_batch_delay=0.05, on_batch=lambda m, n, rows: calls.append((m.version, n, rows)))
    jobs = [(old if i % 3 else new, [r]) for i, r in enumerate(records)]
    results = run_together(runner, jobs)
    for (model, job_records), result in zip(jobs, results, strict=True):
        assert result.outputs == alone(model, job_records)
    assert {v for v, _, _ in calls} == {1, 2}
    assert sum(n for v, n, _ in calls if v == 1) == 20 and sum(n for v, n, _ in calls if v == 2) == 10
    assert len(calls) < 30


def test_a_failing_request_fails_alone_and_its_neighbours_are_answered() -> None:
    model = LoadedModel("toy", 1, toy_bundle("random_forest"), 0.0)
    records = make_frame(6, 5).drop("label").to_dicts()
    bad = {"x": "not a number", "n": 1, "group": "a"}  # the service validates first; the runner must cope anyway
    merged = run_together(ModelRunner(max_batch_delay=0.05), [(model, [r]) for r in records])
    assert max(r.batch_requests for r in merged) > 1  # these requests do merge when all are good
    jobs = [(model, [r]) for r in records[:3]] + [(model, [bad])] + [(model, [r]) for r in records[3:]]
    results = run_together(ModelRunner(max_batch_delay=0.05), jobs)
    assert isinstance(results[3], SchemaValidationError) and "field 'x'" in str(results[3])
    good = results[:3] + results[4:]
    assert [r.outputs[0] for r in good] == alone(model, records)
    assert all(r.batch_requests == 1 for r in good)  # retried one by one after the merged call failed


@pytest.mark.parametrize("estimator", ["logistic_regression", "ridge"])
def test_linear_models_merged_equal_scoring_alone_and_offline(estimator: str) -> None:
    """Linear models go through the bundle's compiled form at every batch size (no BLAS, whose summation
    order depends on the row count), so a merged record's answer is the lone record's and the offline
    table's, bit for bit, as for trees and boosting."""
    bundle = toy_bundle("logistic_regression") if estimator == "logistic_regression" else regressor()
    model = LoadedModel("toy", 1, bundle, 0.0)
    frame = make_frame(40, 3).drop("label")
    if estimator == "ridge":
        frame = frame.drop("x")
    records = frame.to_dicts()
    results = run_together(ModelRunner(max_batch_delay=0.05), [(model, [r]) for r in records])
    assert max(r.batch_requests for r in results) > 1
    assert [r.outputs[0] for r in results] == alone(model, records)
    offline = bundle.predict_table(frame)
    if estimator == "logistic_regression":
        served = [list(r.outputs[0]["probabilities"].values()) for r in results]
        assert served == offline["probability"].tolist()
    else:
        assert [r.outputs[0]["prediction"] for r in results] == offline["prediction"].tolist()


def test_predict_before_start_is_refused() -> None:
    model = LoadedModel("toy", 1, toy_bundle("logistic_regression"), 0.0)
    with pytest.raises(RuntimeError, match="before start"):
        asyncio.run(ModelRunner().predict(model, [{"x": 1.0, "n": 1, "group": "a"}]))


@pytest.mark.parametrize(
    ("options", "message"),
    [({"max_batch_rows": 0}, "max_batch_rows is 0"), ({"max_batch_delay": -0.001}, "between 0 and 0.1 s")],
)
def test_batch_settings_are_checked(store: Store, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_app(store, ServeSettings(**options))


def test_uvicorn_runs_on_uvloop_and_httptools(store: Store) -> None:
    import uvloop
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    config = uvicorn.Config(create_app(store), host="127.0.0.1", port=0)  # as _server builds it: auto loop, auto HTTP
    config.load()
    assert config.http_protocol_class is HttpToolsProtocol
    loop_factory = config.get_loop_factory()
    assert loop_factory is not None
    loop = loop_factory()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def post(body: bytes, content_type: str = "application/json", length: int | str | None = None) -> bytes:
    head = f"POST /predict/toy HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
    return f"{head}Content-Length: {len(body) if length is None else length}\r\n\r\n".encode() + body


MALFORMED = [
    (b"GARBAGE\r\n\r\n", 400),
    (post(b"{}", length="abc"), 400),
    (b"POST /predict/toy HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (post(b"{bad}"), 400),
    (post(b"\xff\xfe{"), 400),
    (post(b""), 400),
    (post(b"{}", "application/octet-stream"), 415),
    (post(b'{"x": NaN, "n": 1, "group": "a"}'), 422),
    (post(b'{"x": Infinity, "n": 1, "group": "a"}'), 422),
    (post(b"{", length=99_999_999), 413),
]


def raw_status(host: str, port: int, request: bytes) -> int:
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request)
        head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 "), head
    return int(head.split(b" ", 2)[1])


def test_malformed_requests_get_4xx_never_500_with_httptools(store: Store) -> None:
    with BackgroundServer(store, ServeSettings(refresh_interval=60)) as server:
        got = [raw_status(server.host, server.port, request) for request, _ in MALFORMED]
        assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200  # still ready afterwards
        record = {"x": 0.3, "n": 4, "group": "a"}
        assert httpx.post(f"{server.url}/predict/toy", json=record).status_code == 200
    assert got == [status for _, status in MALFORMED]
