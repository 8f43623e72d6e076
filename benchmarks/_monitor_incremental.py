"""The cost of a windowed monitoring check against the one-shot check over the whole prediction log.

``fill_log`` logs N predictions fast (``PredictionLog.append`` in batches); ``mark_closed`` stores the count
window that ends at a given row, as if earlier checks had closed everything before it (the steady state of a
service checked every few minutes); ``measure`` times one check and reads its peak RSS in a fresh process.

    python benchmarks/_monitor_incremental.py --rows 1000000 --window 10000 [--db PATH]

prints one JSON line: the seconds and peak RSS (MiB) of closing one window of ``--window`` new rows
(``incremental``) and of ``loopline monitor``'s one-shot check over the whole log (``whole``), each in its own
subprocess, and the process's RSS after imports (``baseline``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from loopline.core.config import MonitorConfig
from loopline.store import PredictionRow, Store, WindowRow

MODEL = "bench"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
NUMERIC = [f"x{i}" for i in range(6)]
CATEGORICAL = ["city", "plan"]


def open_store(db: Path) -> Store:
    return Store.open(f"sqlite:///{db}", db.parent / "artifacts")


def fill_log(store: Store, rows: int, *, batch: int = 20_000, seed: int = 0) -> None:
    """A production model with a reference, and ``rows`` logged predictions, 10 ms apart, ids ``p0000000``…"""
    rng = np.random.default_rng(seed)
    reference = pl.DataFrame(
        {**{name: rng.normal(0, 1, 5000) for name in NUMERIC}, "city": rng.choice(list("abcd"), 5000), "plan": "x"}
    )
    version = store.models.register(
        name=MODEL,
        algorithm="logistic_regression",
        bundle_digest=store.artifacts.put_bytes(b"bundle"),
        reference_digest=store.artifacts.put_table(reference),
        metrics={},
        params={},
        config={"features": {"numeric": NUMERIC, "categorical": CATEGORICAL}},
        input_schema=[],
        data_fingerprint="f" * 64,
        run_id=None,
        timings={},
    )
    store.models.promote(MODEL, version.version)
    step = timedelta(milliseconds=10)
    for first in range(0, rows, batch):
        count = min(batch, rows - first)
        numbers = rng.normal(0, 1, (count, len(NUMERIC))).round(4)
        cities = rng.choice(list("abcde"), count)
        store.predictions.append(
            [
                PredictionRow(
                    prediction_id=f"p{first + i:07d}",
                    model_name=MODEL,
                    model_version=version.version,
                    created_at=T0 + (first + i) * step,
                    inputs={
                        **dict(zip(NUMERIC, map(float, numbers[i]), strict=True)),
                        "city": str(cities[i]),
                        "plan": "x",
                    },
                    output={"prediction": int(i % 2), "probabilities": {"0": 0.5, "1": 0.5}},
                    latency_ms=1.0 + (i % 7),
                )
                for i in range(count)
            ]
        )


def mark_closed(store: Store, spec: str, upto_row: int, window: int) -> None:
    """Store the count window ending at row ``upto_row - 1`` (its figures are not computed: a bookmark)."""
    last = upto_row - 1
    store.windows.close(
        WindowRow(
            model_name=MODEL,
            spec=spec,
            seq=upto_row // window,
            start_at=T0 + timedelta(milliseconds=10 * (upto_row - window)),
            end_at=T0 + timedelta(milliseconds=10 * last),
            last_id=f"p{last:07d}",
            rows=window,
            drifted=None,
            result={},
        ),
        [],
    )


def run_check(db: Path, kind: str, window: int) -> dict[str, Any]:
    """One check in this process: ``incremental`` (``check_windows``) or ``whole`` (``monitor_model``)."""
    from loopline.monitor import DRIFT_TESTS
    from loopline.run import check_windows, monitor_model

    DRIFT_TESTS.get("ks"), DRIFT_TESTS.get("chi2")  # scipy.stats' import (~1.5 s) is not the check's cost
    config = MonitorConfig(model=MODEL)
    with open_store(db) as store:
        _reopen(store, str(window))
        baseline = _rss_mib()
        started = time.perf_counter()
        if kind == "incremental":
            check = check_windows(store, config, str(window))
            detail = {"closed": len(check.closed), "rows_read": check.rows_read}
        else:
            result = monitor_model(store, config)
            detail = {"rows_read": result.current.height}
        seconds = time.perf_counter() - started
    return {"kind": kind, "seconds": round(seconds, 3), "peak_rss_mib": _rss_mib(), "baseline_mib": baseline, **detail}


def _reopen(store: Store, spec: str) -> None:
    """Forget the windows an earlier measurement closed after the bookmark (so each run closes the same one)."""
    from sqlalchemy import delete

    from loopline.store._tables import monitor_windows

    with store.engine.begin() as conn:
        conn.execute(
            delete(monitor_windows).where(monitor_windows.c.spec == spec, monitor_windows.c.drifted.is_not(None))
        )


def run_subprocess(db: Path, kind: str, window: int) -> dict[str, Any]:
    """:func:`run_check` in a fresh interpreter (its peak RSS is its own); the JSON it prints."""
    command = [sys.executable, __file__, "--db", str(db), "--window", str(window), "--check", kind]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(db: Path, window: int, repeats: int = 3) -> dict[str, Any]:
    """Each check in its own subprocess (so each peak RSS is its own): the incremental one ``repeats`` times (the
    median run is kept, all seconds listed), the whole-log one once."""
    out: dict[str, Any] = {}
    for kind, runs in (("incremental", repeats), ("whole", 1)):
        results = []
        for _ in range(runs):
            results.append(run_subprocess(db, kind, window))
        results.sort(key=lambda r: r["seconds"])
        out[kind] = {**results[len(results) // 2], "all_seconds": [r["seconds"] for r in results]}
    return out


def _rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--window", type=int, default=10_000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--check", choices=("incremental", "whole"), default=None)
    args = parser.parse_args()
    if args.check:
        print(json.dumps(run_check(args.db, args.check, args.window)))
        return
    db = args.db or Path(tempfile.mkdtemp(prefix="loopline-monitor-")) / "loopline.db"
    started = time.perf_counter()
    with open_store(db) as store:
        if store.predictions.count(MODEL) == 0:
            fill_log(store, args.rows)
        if store.windows.last(MODEL, str(args.window)) is None:
            mark_closed(store, str(args.window), args.rows - args.window, args.window)
    filled = time.perf_counter() - started
    print(
        json.dumps(
            {
                "rows": args.rows,
                "window": args.window,
                "fill_s": round(filled, 1),
                **measure(db, args.window, args.repeats),
            }
        )
    )


if __name__ == "__main__":
    main()
