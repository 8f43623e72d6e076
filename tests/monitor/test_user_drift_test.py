"""A user's own drift test, registered in code, drives `loopline monitor` through the pipeline's config."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import polars as pl
import pytest
from scipy import stats
from typer.testing import CliRunner

from loopline.cli import app
from loopline.monitor import DRIFT_TESTS, DriftTest, DriftTestResult, require_rows, skipped_result
from loopline.monitor._drift_tests import Kind
from loopline.testing import check_drift_test

PIPELINE = """
name: toy
params: {start: "2024-01-01", valid_from: "2024-03-01", test_from: "2024-03-15", end: "2024-04-01"}
steps:
  data: {type: file, path: data.csv, parse_dates: [t]}
  window:
    type: derive
    inputs: [data]
    window: {column: t, start: "${params.start}", end: "${params.end}"}
  split:
    type: split
    inputs: [window]
    target: label
    time_column: t
    valid_from: "${params.valid_from}"
    test_from: "${params.test_from}"
  linear:
    type: train
    inputs: [split.train, split.valid, split.test]
    target: label
    numeric: [x, z]
    categorical: [group]
    estimator: logistic_regression
  best: {type: select, inputs: [linear, split.test], model: toy, metric: roc_auc}
monitor:
  model: toy
  drift: DRIFT
"""


class Energy(DriftTest):
    """The energy distance between the non-null values; drift above ``threshold``."""

    name = "energy"
    kinds: ClassVar[tuple[Kind, ...]] = ("numeric",)

    def __init__(self, threshold: float = 0.2) -> None:
        self.threshold = threshold

    def compare(self, reference: pl.Series, current: pl.Series) -> DriftTestResult:
        require_rows(self.name, reference, current)
        ref, cur = reference.drop_nulls().to_numpy(), current.drop_nulls().to_numpy()
        if ref.size == 0 or cur.size == 0:
            return skipped_result("energy skipped: a side has no non-null values", p_value=False)
        return DriftTestResult(statistic=float(stats.energy_distance(ref, cur)), threshold=self.threshold)


@pytest.fixture
def energy(monkeypatch: pytest.MonkeyPatch) -> Iterator[Energy]:
    """``energy`` registered for one test (monkeypatch restores the registry's table)."""
    DRIFT_TESTS.names()
    test = Energy()
    monkeypatch.setitem(DRIFT_TESTS._items, test.name, test)
    yield test


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A trained, promoted model ``toy`` whose served traffic drifted in ``x`` (upwards) and not in ``z``."""
    rng = np.random.default_rng(0)
    rows = 3000
    t = pl.datetime_range(pl.datetime(2024, 1, 1), pl.datetime(2024, 6, 30), interval="1h", eager=True)[:rows]
    x = rng.normal(size=rows) + np.linspace(0, 3, rows)
    z = rng.normal(size=rows)
    group = rng.choice(["a", "b"], size=rows)
    label = (x - np.linspace(0, 3, rows) + (group == "a") + rng.normal(scale=0.5, size=rows)) > 0.5
    frame = pl.DataFrame({"t": t.dt.strftime("%Y-%m-%dT%H:%M:%SZ"), "x": x, "z": z, "group": group, "label": label})
    frame.write_csv(tmp_path / "data.csv")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / ".loopline"))
    monkeypatch.delenv("LOOPLINE_STORE_URL", raising=False)
    (tmp_path / "pipeline.yaml").write_text(PIPELINE.replace("DRIFT", "{}"))
    _invoke("run", "pipeline.yaml", "--json")
    _serve(frame.tail(600).select(["x", "z", "group"]).to_dicts())
    return tmp_path


def _serve(records: list[dict[str, object]]) -> None:
    from fastapi.testclient import TestClient

    from loopline.serve import ServeSettings, create_app
    from loopline.store import Store

    store = Store.open()
    with TestClient(create_app(store, ServeSettings(refresh_interval=60))) as client:
        assert client.post("/predict/toy", json=records).status_code == 200
    store.close()


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_user_drift_test_passes_the_conformance_checks(energy: Energy) -> None:
    check_drift_test(energy)


def test_the_pipeline_config_picks_the_user_test_and_the_report_names_it(project: Path, energy: Energy) -> None:
    result = CliRunner().invoke(app, ["monitor", "pipeline.yaml", "--json"])
    assert result.exit_code == 0, result.output
    default = {f["feature"]: f for f in json.loads(result.output)["drift"]["features"]}
    (project / "pipeline.yaml").write_text(PIPELINE.replace("DRIFT", "{numeric_test: energy, tests: {z: ks}}"))
    out = json.loads(_invoke("monitor", "pipeline.yaml", "--json"))["drift"]
    features = {f["feature"]: f for f in out["features"]}
    assert default["group"]["test"] == "ztest"  # auto: a binary column against 600 served rows
    assert {name: f["test"] for name, f in features.items()} == {"x": "energy", "z": "ks", "group": "ztest"}
    assert out["config"]["numeric_test"] == "energy"
    x = features["x"]
    assert x["p_value"] is None and x["statistic"] > energy.threshold and x["drifted"]
    assert x["psi"] == default["x"]["psi"]
    # the same tests on z and group; only the Holm correction (over a smaller family) may differ
    same = ("test", "statistic", "p_value", "status")
    for name in ("z", "group"):
        assert {key: features[name][key] for key in same} == {key: default[name][key] for key in same}


def test_an_unknown_test_in_the_pipeline_is_one_clear_error(project: Path, energy: Energy) -> None:
    (project / "pipeline.yaml").write_text(PIPELINE.replace("DRIFT", "{numeric_test: enrgy}"))
    result = CliRunner().invoke(app, ["monitor", "pipeline.yaml", "--json"])
    assert result.exit_code != 0
    assert "monitor.drift.numeric_test: unknown drift test 'enrgy'. Did you mean 'energy'?" in result.output


def test_the_production_version_carries_its_reference_profile(project: Path) -> None:
    from loopline.monitor import ReferenceProfile
    from loopline.store import Store

    store = Store.open()
    try:
        production = store.models.production("toy")
        assert production is not None and production.profile_digest is not None
        profile = ReferenceProfile.from_json(store.artifacts.get_bytes(production.profile_digest).decode())
    finally:
        store.close()
    assert set(profile.columns) == {"x", "z", "group"}
    x = profile.columns["x"]
    assert profile.n_rows > 100 and x.summary.count == profile.n_rows  # the whole training split, no nulls
    assert profile.outputs is not None and "prediction" in profile.outputs.columns  # the model's outputs too
    assert profile.labels is not None and profile.labels.n_rows == profile.n_rows


def test_loopline_monitor_runs_the_domain_classifier_when_enabled(project: Path) -> None:
    (project / "pipeline.yaml").write_text(PIPELINE.replace("DRIFT", "{multivariate: {enabled: true, rows: 400}}"))
    out = json.loads(_invoke("monitor", "pipeline.yaml", "--json"))["drift"]
    joint = out["multivariate"]
    assert (joint["n_reference"], joint["n_current"]) == (400, 400)  # the stored sample, bounded by rows
    assert joint["status"] == "drift" and "x" in joint["top_features"]  # the served x drifted upwards
