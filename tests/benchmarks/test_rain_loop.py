"""The rainfall half of bench_loop_efficacy runs loopline's own triggers: on a synthetic stream whose concept
flips at row 12,000, the default loop with labels retrains once, after the flip, and recovers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import polars as pl
import sklearn.ensemble  # noqa: F401  (loads scikit-learn's OpenMP runtime, so that the limit below applies)
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).parents[2]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_loop_efficacy", ROOT / "benchmarks" / "bench_loop_efficacy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_loop_efficacy"] = module
    spec.loader.exec_module(module)
    return module


bench = _bench()


def flipped(rows: int = 15_825) -> pl.DataFrame:
    """Stationary inputs; it rains when temperature + dew point is high, and from row 12,000 when it is low."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, len(bench.RAIN_FEATURES)))
    score = x[:, 0] + x[:, 1] + rng.normal(scale=0.7, size=rows)
    rain = np.where(np.arange(rows) < bench.DRIFT_ROW, score > 0.5, score < -0.5)
    return pl.DataFrame({name: x[:, i] for i, name in enumerate(bench.RAIN_FEATURES)}).with_columns(
        rain=pl.Series(rain.astype(int))
    )


def test_the_default_loop_with_labels_retrains_once_after_the_flip_and_recovers() -> None:
    with threadpool_limits(1):
        run, said = bench.rain_default_loop(flipped(), 2_000, labelled=True)
    summary = run.summary(2_000)
    assert list(run.retrains) == [11_825], said
    assert summary["auc_drift_window"] < 0.6 and summary["auc_next_window_after_retrain"] > 0.8
    assert any("fired ['metric']" in line for line in said)
