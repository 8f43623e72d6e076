"""Studies in the store's database: beside loopline's tables, resumed after SIGKILL, trials in two processes."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from sqlalchemy import create_engine, inspect, text

from loopline.core.errors import ConfigError
from loopline.store import Store
from loopline.tune import TuneSpec, load_study, tune
from loopline.tune._studies import storage_at

SPEC: dict[str, Any] = {
    "target": "y",
    "numeric": ["x0", "x1", "x2"],
    "categorical": ["g"],
    "estimator": "lightgbm",
    "params": {"n_estimators": 20},
    "space": {"model.num_leaves": {"int": [4, 32]}, "model.learning_rate": {"float": [0.02, 0.3], "log": True}},
    "importance": False,
}


def test_a_study_lives_beside_the_store_and_resumes_for_the_missing_trials(
    frames: Any, store_url: str, tmp_path: Path
) -> None:
    train, valid = frames
    Store.open(store_url, tmp_path / "artifacts").close()  # loopline's schema first, migrated
    first = tune(train, valid, TuneSpec.parse({**SPEC, "n_trials": 3}), storage=store_url, study="churn")
    assert first.ran == 3
    again = tune(train, valid, TuneSpec.parse({**SPEC, "n_trials": 5}), storage=store_url, study="churn")
    assert again.ran == 2 and len(again.study.trials) == 5
    assert again.study.trials[:3] == first.study.trials  # the finished ones kept as they were
    done = tune(train, valid, TuneSpec.parse({**SPEC, "n_trials": 5}), storage=store_url, study="churn")
    assert done.ran == 0 and done.best == again.best
    with Store.open(store_url, tmp_path / "artifacts") as store:  # the store still opens, at its own head
        report = store.check()
        assert not report.missing and not report.corrupted
    engine = create_engine(store_url)
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        assert {"models", "runs", "loopline_alembic_version", "studies", "trials", "alembic_version"} <= tables
        loopline_head = conn.execute(text("SELECT version_num FROM loopline_alembic_version")).scalar_one()
        optuna_head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    engine.dispose()
    assert loopline_head.isdigit() and not optuna_head.isdigit()  # "0008"-style ids vs Optuna's "v3.2.0.a"


def test_a_study_resumes_only_with_its_own_space(frames: Any, tmp_path: Path) -> None:
    train, valid = frames
    url = f"sqlite:///{tmp_path / 'loopline.db'}"
    tune(train, valid, TuneSpec.parse({**SPEC, "n_trials": 1}), storage=url, study="s")
    other = {**SPEC, "n_trials": 2, "space": {"model.num_leaves": {"int": [4, 8]}}}
    with pytest.raises(ConfigError, match="another search space") as caught:
        tune(train, valid, TuneSpec.parse(other), storage=url, study="s")
    assert "loopline studies delete" in str(caught.value)
    other_base = {**SPEC, "n_trials": 2, "params": {"n_estimators": 40}}  # same space, another starting point
    with pytest.raises(ConfigError, match="another search space or objective"):
        tune(train, valid, TuneSpec.parse(other_base), storage=url, study="s")
    assert tune(train, valid, TuneSpec.parse({**SPEC, "n_trials": 2}), storage=url, study="s").ran == 1
    with pytest.raises(ConfigError, match="no study 'z'. Studies: s"):
        load_study(url, "z")


KILLED = """
import sys
sys.path.insert(0, {tests!r})
from conftest import labelled
from loopline.tune import TuneSpec, tune
spec = TuneSpec.parse({spec!r})
data = labelled(1200, 1)
tune(data[:800], data[800:], spec, storage={url!r}, study="killed")
"""


def _finished(url: str) -> list[optuna.trial.FrozenTrial]:
    with storage_at(url) as storage:
        try:
            study = optuna.load_study(study_name="killed", storage=storage)
        except KeyError:
            return []
        return [t for t in study.trials if t.state.is_finished()]


def test_a_tuning_killed_mid_study_resumes_without_repeating_finished_trials(frames: Any, tmp_path: Path) -> None:
    train, valid = frames
    url = f"sqlite:///{tmp_path / 'loopline.db'}"
    spec = {**SPEC, "params": {"n_estimators": 300}, "n_trials": 8}
    code = textwrap.dedent(KILLED).format(tests=str(Path(__file__).parent), spec=spec, url=url)
    process = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(_finished(url)) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    before = {t.number: (t.params, t.values) for t in _finished(url)}
    assert 3 <= len(before) < 8
    result = tune(train, valid, TuneSpec.parse(spec), storage=url, study="killed")
    assert result.ran == 8 - len(before)  # only the missing trials ran
    finished = [t for t in result.study.trials if t.state in ("complete", "pruned")]
    assert len(finished) == 8
    for trial in result.study.trials:
        if trial.number in before:  # kept as it was, not run again
            params, values = before[trial.number]
            assert trial.values == tuple(values) and trial.params == params
    left_running = [t for t in result.study.trials if t.state == "fail"]
    assert len(left_running) <= 1 and not [t for t in result.study.trials if t.state == "running"]
    points = [tuple(sorted(t.params.items())) for t in finished]
    assert len(set(points)) == len(points)  # the resumed sampler does not propose the finished points again


def test_trials_run_in_two_processes_at_once(frames: Any, store_url: str) -> None:
    train, valid = frames
    url = store_url  # a SQLite file, or a PostgreSQL schema both worker processes reach
    # trials long enough (~0.5 s) that the workers' start-up skew (0.2-0.6 s) cannot hide their overlap
    spec = TuneSpec.parse({**SPEC, "params": {"n_estimators": 600}, "n_trials": 6, "n_jobs": 2})
    result = tune(train, valid, spec, storage=url, study="parallel")
    assert result.study.counts() == {"complete": 6}
    assert len({trial.worker for trial in result.study.trials}) == 2  # each worker process ran trials
    with storage_at(url) as storage:
        trials = optuna.load_study(study_name="parallel", storage=storage).trials
    spans = sorted((t.datetime_start, t.datetime_complete) for t in trials if t.datetime_start and t.datetime_complete)
    assert len(spans) == 6
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))  # overlapping


def test_parallel_trials_without_a_storage_use_a_temporary_one(frames: Any) -> None:
    train, valid = frames
    spec = TuneSpec.parse({**SPEC, "n_trials": 2, "n_jobs": 2})
    result = tune(train, valid, spec)
    assert result.study.counts() == {"complete": 2} and result.best_spec.params["n_estimators"] == 20
