"""A service loads and serves stored bundles, a built-in's and a user estimator's, without importing the trainer.

Each case runs in a fresh process that imports ``loopline.serve`` only: the user's spec is registered there by
its package's ``loopline.estimators`` entry point or by code, never by the artifact, and its absence refuses the
user's bundle as before. In every case ``loopline.train`` stays out of ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from _served_estimator import SPEC

from loopline.bundle import ESTIMATORS, ModelBundle
from loopline.store import Store
from loopline.train import TrainSpec, train_candidate

HERE = Path(__file__).parent
MODELS = {"builtin": "hist_gradient_boosting", "linear": "logistic_regression", "user": SPEC.name}

_SERVICE = """
import json, sys
import loopline.serve
from fastapi.testclient import TestClient
from loopline.serve import ServeSettings, create_app
from loopline.store import Store

url, artifacts, how, records = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
if how == "code":
    from _served_estimator import SPEC
    from loopline.bundle import ESTIMATORS
    ESTIMATORS.register(SPEC.name, SPEC)
store = Store.open(url, artifacts)
out = {}
try:
    with TestClient(create_app(store, ServeSettings(refresh_interval=3600))) as client:
        for name in json.loads(sys.argv[5]):
            response = client.post(f"/predict/{name}", json=records)
            if response.status_code == 503:  # not ready: its bundle did not load
                out["refused"] = response.json()["error"]
                continue
            assert response.status_code == 200, response.text
            out[name] = [{k: v for k, v in p.items() if k != "prediction_id"} for p in response.json()["predictions"]]
finally:
    store.close()
out["trainer_modules"] = sorted(m for m in sys.modules if m == "loopline.train" or m.startswith("loopline.train."))
print(json.dumps(out))
"""


def _frame(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x, z = rng.normal(size=rows), rng.normal(size=rows)
    group = rng.choice(["a", "b"], size=rows)
    label = np.where(x + (group == "a") < -0.4, "low", np.where(x - 0.5 * z > 0.6, "high", "mid"))
    return pl.DataFrame({"x": x, "z": z, "group": group, "label": label})


@pytest.fixture
def stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path, dict[str, ModelBundle]]]:
    """A SQLite store with one production model per entry of MODELS, and the bundles as loaded back here."""
    ESTIMATORS.names()  # built-ins and entry points first, so the restore leaves them in place
    monkeypatch.setitem(ESTIMATORS._items, SPEC.name, SPEC)  # trained here: the service process registers its own
    url, artifacts = f"sqlite:///{tmp_path / 'loopline.db'}", tmp_path / "artifacts"
    store = Store.open(url, artifacts)
    bundles = {}
    try:
        for name, estimator in MODELS.items():
            spec = TrainSpec(target="label", numeric=["x", "z"], categorical=["group"], estimator=estimator)
            result = train_candidate(_frame(400, 1), _frame(150, 2), spec)
            version = store.models.register_candidate(name, result.candidate(spec, data_fingerprint="fp"))
            store.models.promote(name, version.version)
            bundles[name] = ModelBundle.from_bytes(store.artifacts.get_bytes(version.bundle_digest))
    finally:
        store.close()
    yield url, artifacts, bundles


def _serve(stored: tuple[str, Path, dict[str, ModelBundle]], how: str, site: Path | None) -> dict[str, Any]:
    """What a fresh service process answers for 40 records from every stored model."""
    url, artifacts, bundles = stored
    records = _frame(40, 3).drop("label").to_dicts()
    paths = [p for p in (site, HERE) if p is not None]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths))}
    done = subprocess.run(
        [sys.executable, "-c", _SERVICE, url, str(artifacts), how, json.dumps(records), json.dumps(sorted(bundles))],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def _plugin_site(root: Path) -> Path:
    """A site folder holding the plugin's installed metadata: its entry point names SPEC."""
    dist_info = root / "served_estimator_plugin-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: served-estimator-plugin\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(f"[loopline.estimators]\n{SPEC.name} = _served_estimator:SPEC\n")
    return root


@pytest.mark.parametrize("how", ["entry_point", "code"])
def test_a_service_serves_a_builtin_and_a_user_bundle_without_importing_the_trainer(
    stored: tuple[str, Path, dict[str, ModelBundle]], tmp_path: Path, how: str
) -> None:
    site = _plugin_site(tmp_path / "site") if how == "entry_point" else None
    served = _serve(stored, how, site)
    assert served.pop("trainer_modules") == []
    assert "refused" not in served, served.get("refused")
    records = _frame(40, 3).drop("label").to_dicts()
    expected = {name: bundle.predict_records(records) for name, bundle in stored[2].items()}
    assert served == expected  # bit for bit: JSON floats round-trip exactly
    assert {p["prediction"] for p in served["user"]} == {"low", "mid", "high"}


def test_without_the_plugin_s_registration_the_service_refuses_its_bundle(
    stored: tuple[str, Path, dict[str, ModelBundle]],
) -> None:
    """The class imports in the service (its folder is on the path); only a registered spec may vouch for it.
    The service still starts and serves the other models."""
    served = _serve(stored, "none", None)
    assert served["trainer_modules"] == []
    assert served["refused"].startswith("model 'user' is not ready: version 1 could not be loaded: ")
    assert "the model bundle holds a '_served_estimator.Nearest', which is not an" in served["refused"]
    assert {"builtin", "linear"} <= set(served)  # the service started with the models it could load
