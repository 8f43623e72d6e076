"""Failed requests counted by a real `loopline serve` process and flushed with its prediction log: 4xx input
errors and 5xx model errors per version, in the store (SQLite and PostgreSQL), a 500 that names the failure."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx

from loopline.store import Store

from .conftest import register
from .test_process import free_port, wait_ready

FAILING_SERVER = """
import sys
from loopline.serve import ServeSettings, serve
from loopline.store import Store
from loopline.train import ModelBundle

real = ModelBundle.predict_records


def failing(self, records):  # a record with n == 7 makes the model raise, as a bug on part of the traffic would
    if any(r.get("n") == 7 for r in records):
        raise ValueError("n == 7 breaks this model")
    return real(self, records)


ModelBundle.predict_records = failing
store = Store.open(sys.argv[1], sys.argv[2])
serve(store, port=int(sys.argv[3]), settings=ServeSettings(log_flush_interval=0.1))
store.close()
"""


def test_the_service_counts_input_and_model_errors_per_version_in_the_store(store_url: str, tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    with Store.open(store_url, artifacts) as store:
        store.models.promote("toy", register(store).version)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "stderr.txt").open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", FAILING_SERVER, store_url, str(artifacts), str(port)], stdout=stderr, stderr=stderr
        )
    try:
        wait_ready(url, process)
        good = [httpx.post(f"{url}/predict/toy", json={"x": 1.0, "n": 2, "group": "b"}) for _ in range(12)]
        broken = [httpx.post(f"{url}/predict/toy", json={"x": 1.0, "n": 7, "group": "b"}) for _ in range(3)]
        invalid = [httpx.post(f"{url}/predict/toy", json={"x": "one", "n": 2, "group": "b"}) for _ in range(2)]
        malformed = httpx.post(f"{url}/predict/toy", content=b"{", headers={"content-type": "application/json"})
        unknown = httpx.post(f"{url}/predict/nobody", json={"x": 1.0, "n": 2, "group": "b"})
        metrics = httpx.get(f"{url}/metrics").text
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, (tmp_path / "stderr.txt").read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert [r.status_code for r in good] == [200] * 12
    assert {r.status_code for r in broken} == {500}
    assert broken[0].json()["error"] == "model 'toy' v1 failed on this request (ValueError)."
    assert "n == 7" not in broken[0].text  # the message, which may quote the inputs, stays in the service's log
    assert [r.status_code for r in invalid] == [422, 422] and malformed.status_code == 400
    assert unknown.status_code == 404  # no version to blame: not counted in the store
    assert 'loopline_errors_total{cause="model_error",model="toy"} 3.0' in metrics
    assert "ValueError: n == 7 breaks this model" in (tmp_path / "stderr.txt").read_text()  # the traceback
    with Store.open(store_url, artifacts) as store:
        assert store.predictions.count("toy") == 12
        assert store.predictions.error_counts("toy") == {"model": 3, "input": 3}
        assert store.predictions.error_counts("toy", version=1) == {"model": 3, "input": 3}
        assert store.predictions.error_counts("nobody") == {}
        [chunk] = store.predictions.read_chunks("toy", ["x"], probabilities=["False", "True"])
    # the classifier's probabilities are logged with each prediction, for the output drift of the windows
    assert chunk["probability:True"].null_count() == 0
    assert (chunk["probability:True"] + chunk["probability:False"] - 1).abs().max() < 1e-9  # type: ignore[operator]
