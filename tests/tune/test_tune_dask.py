"""A tune step run by the Dask executor: its trial workers are tasks of the same cluster."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import yaml

from loopline.core.yamlfile import load_pipeline
from loopline.run import DaskExecutor, Runner
from loopline.store import Store
from loopline.tune import load_study


def test_trial_workers_run_as_tasks_of_the_dask_cluster(tmp_path: Path, make_labelled: Any) -> None:
    make_labelled(900, 5).write_parquet(tmp_path / "data.parquet")
    steps = {
        "data": {"type": "file", "path": str(tmp_path / "data.parquet")},
        "split": {"type": "split", "inputs": ["data"], "target": "y", "method": "random", "test_fraction": 0.1},
        "search": {
            "type": "tune",
            "inputs": ["split.train", "split.valid"],
            "target": "y",
            "numeric": ["x0", "x1", "x2"],
            "estimator": "lightgbm",
            "params": {"n_estimators": 20},
            "space": {"model.num_leaves": {"int": [4, 32]}},
            "n_trials": 4,
            "n_jobs": 2,
        },
    }
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump({"name": "dasked", "steps": steps}))
    url = f"sqlite:///{tmp_path / 'loopline.db'}"

    def register() -> None:  # the tune step type on each worker, before the entry point is installed
        from loopline.core import STEP_TYPES

        if "tune" not in STEP_TYPES:
            from loopline.run.steps._tune import Tune

            STEP_TYPES.register("tune", Tune())

    with Store.open(url, tmp_path / "artifacts") as store, DaskExecutor(n_workers=2) as executor:
        executor.client.run(register)
        pids = {f"{socket.gethostname()}:{pid}" for pid in executor.client.run(os.getpid).values()}
        result = Runner(store, executor).run(load_pipeline(tmp_path / "pipeline.yaml"))
        assert result.status == "succeeded", result.error
    record = load_study(url, "search")
    assert record.counts() == {"complete": 4}
    workers = {trial.worker for trial in record.trials}
    assert workers <= pids and f"{socket.gethostname()}:{os.getpid()}" not in workers
