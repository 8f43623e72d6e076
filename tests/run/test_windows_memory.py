"""A check over a large prediction log holds one window in memory, not the log (SQLite, and PostgreSQL where the
rows come through a server-side cursor; measured in a fresh process, whose peak RSS is its own)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from tests.run._windows_data import T0, production, rows

from loopline.store import Store

LOGGED = 200_000
MAX_GROWTH_MIB = 120  # one 10k-row window, a chunk, a drift report (PredictionLog.read of 100k rows peaked at 877 MB)

CHECK = """
import json, resource, sys
from loopline.core.config import MonitorConfig
from loopline.run import check_windows
from loopline.store import Store
import scipy.stats  # imported before the baseline: the drift tests need it anyway

with Store.open(sys.argv[1], sys.argv[2]) as store:
    store.predictions.first_at("churn")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    check = check_windows(store, MonitorConfig(model="churn"), "10000")
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"before": before, "after": after, "closed": len(check.closed), "read": check.rows_read}))
"""


@pytest.mark.slow
def test_a_check_over_a_large_log_keeps_memory_bounded(store_url: str, tmp_path: Path) -> None:
    url, artifacts = store_url, tmp_path / "artifacts"
    with Store.open(url, artifacts) as store:
        production(store)
        for first in range(0, LOGGED, 20_000):
            step = timedelta(milliseconds=10)
            store.predictions.append(rows(T0 + first * step, 20_000, every=step, offset=first))
    done = subprocess.run([sys.executable, "-c", CHECK, url, str(artifacts)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert (figures["closed"], figures["read"]) == (LOGGED // 10_000, LOGGED)
    growth = figures["after"] - figures["before"]
    print(f"peak RSS grew {growth:.0f} MiB ({figures['before']:.0f} -> {figures['after']:.0f}) over {LOGGED} rows")
    assert growth < MAX_GROWTH_MIB
