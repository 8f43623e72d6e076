"""Batch scoring: ``loopline.run.score_batch`` file -> file vs the floor (the bundle's predictor on the whole table).

Data: 1M rows x 20 mixed-type columns (12 float with 5% missing, 3 integer, 3 categorical, 1 boolean, 1 UTC
timestamp) as Parquet under .bench/serve_batch (made once); a HistGradientBoosting classifier trained through
loopline (``train_candidate``) on 20,000 labelled rows with a mixed-type transform chain (impute with
indicators, derived columns from numbers and the timestamp, one-hot, robust scaling), registered and promoted
in a temporary store.

Contenders, each in its own subprocess (peak RSS is its own, VmHWM), each warmed up in that process on a
2,000-row file before the clock (imports, first calls), and each loading the model inside the clock:
- ``loopline``: ``score_batch(store, MODEL, input.parquet, out.parquet)`` with its default 100,000-row
  chunks: model lookup, bundle load (digest verified), chunked read, typing, prediction, incremental
  Parquet write, rename.
- ``floor``: ``ModelBundle.from_bytes`` of the bundle file, ``pl.read_parquet(input)`` of the whole table,
  ``bundle.predict_table(df)`` (the compiled predictor: chain -> preprocessor -> estimator) once on every
  row, the same output columns written with ``write_parquet``.
Alternating (floor, loopline, ...), one warm-up each, 5 repeats, median quoted. ``batch_vs_floor`` =
floor seconds / loopline seconds (1.0 = as fast as the floor; the goal: >= 1/1.3 = 0.77). Both share the
machine's cores. ``--quick``: 50,000 rows, 1 repeat.

Used by ``bench_serve.py`` (``measure_batch``) and runnable alone: ``python benchmarks/_serve_batch.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import final_line, goal, machine, paired_ratios, summary

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".bench" / "serve_batch"
MODEL = "batch"
FULL_ROWS, QUICK_ROWS = 1_000_000, 50_000
TRAIN_ROWS = 20_000
GOAL = 1 / 1.3
TRANSFORMS = [
    {"type": "impute", "columns": ["f0", "f1", "f2", "f3"], "strategy": "median", "add_indicator": True},
    {"type": "derive", "columns": {"ratio": "f0 / (n0 + 1)", "hour": "hour(at)", "late": "hour(at) >= 18"}},
    {"type": "onehot", "columns": ["city"], "min_frequency": 20},
    {"type": "scale", "columns": ["f0", "ratio"], "method": "robust"},
    {"type": "drop", "columns": ["at"]},
]

PRELUDE = """
import json, sys, time
import polars as pl
args = json.loads(sys.argv[1])
def vmhwm_mb():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
"""

CONTENDERS = {
    "floor": PRELUDE
    + """
from loopline.bundle import ModelBundle
def floor(source, target):
    bundle = ModelBundle.from_bytes(open(args["bundle"], "rb").read())
    df = pl.read_parquet(source)
    out = bundle.predict_table(df)
    columns = {"prediction": out["prediction"]}
    columns.update({f"proba_{c}": out["probability"][:, i] for i, c in enumerate(bundle.classes)})
    pl.DataFrame(columns).write_parquet(target, compression="zstd")
    return df.height
floor(args["warm_up"], args["output"])  # imports and first calls, off the clock
started = time.perf_counter()
rows = floor(args["input"], args["output"])
elapsed = time.perf_counter() - started
print(json.dumps({"s": elapsed, "rss_mb": vmhwm_mb(), "rows": rows}))
""",
    "loopline": PRELUDE
    + """
from loopline.run import score_batch
from loopline.store import Store
store = Store.open(args["store_url"], args["artifacts"])
score_batch(store, args["model"], args["warm_up"], args["output"], force=True)  # imports and first calls
started = time.perf_counter()
done = score_batch(store, args["model"], args["input"], args["output"], force=True)
elapsed = time.perf_counter() - started
print(json.dumps({"s": elapsed, "rss_mb": vmhwm_mb(), "rows": done.rows, "chunks": done.chunks}))
""",
}


def make_frame(rows: int, seed: int) -> Any:
    """20 mixed-type columns and a boolean ``label`` that depends on several of them."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for i in range(12):
        values = rng.normal(i, 1 + i / 4, rows)
        values[rng.random(rows) < 0.05] = np.nan
        columns[f"f{i}"] = values
    for i in range(3):
        columns[f"n{i}"] = rng.integers(0, 10 * (i + 1), rows)
    columns["city"] = rng.choice(["lyon", "paris", "nice", "brest", "lille", "metz"], rows)
    columns["channel"] = rng.choice(["web", "app", "shop"], rows)
    columns["tier"] = rng.choice(["a", "b", "c", "d"], rows, p=[0.4, 0.3, 0.2, 0.1])
    columns["member"] = rng.random(rows) < 0.3
    start = datetime(2024, 1, 1, tzinfo=UTC)
    minutes = rng.integers(0, 60 * 24 * 90, rows)
    frame = pl.DataFrame(columns).with_columns(
        at=pl.lit(start) + pl.duration(minutes=pl.Series(minutes)),
    )
    score = np.nan_to_num(columns["f0"]) + columns["n0"] / 5 + (columns["city"] == "paris") + columns["member"]
    frame = frame.with_columns([pl.col(f"f{i}").fill_nan(None) for i in range(12)])
    return frame.with_columns(label=pl.Series(score + rng.normal(0, 1, rows) > 1.5))


def make_data(rows: int) -> dict[str, str]:
    """The scoring input (no label) and the labelled training rows, as Parquet, made once."""
    DATA.mkdir(parents=True, exist_ok=True)
    paths = {"input": DATA / f"score-{rows}.parquet", "train": DATA / "train.parquet", "warm_up": DATA / "warm.parquet"}
    if not paths["input"].exists():
        make_frame(rows, 7).drop("label").write_parquet(paths["input"])
    if not paths["warm_up"].exists():
        make_frame(2_000, 3).drop("label").write_parquet(paths["warm_up"])
    if not paths["train"].exists():
        make_frame(TRAIN_ROWS + 5_000, 1).write_parquet(paths["train"])
    return {k: str(v) for k, v in paths.items()}


def train_model(train_path: str, home: Path) -> dict[str, str]:
    """Train, register and promote the model in a fresh store; its bundle file for the floor."""
    import polars as pl

    from loopline.store import Store
    from loopline.train import TrainSpec, train_candidate

    frame = pl.read_parquet(train_path)
    numeric = [f"f{i}" for i in range(12)] + [f"n{i}" for i in range(3)] + ["member"]
    spec = TrainSpec(
        target="label",
        numeric=numeric,
        categorical=["city", "channel", "tier", "at"],
        estimator="hist_gradient_boosting",
        transforms=TRANSFORMS,
    )
    result = train_candidate(frame.head(TRAIN_ROWS), frame.tail(5_000), spec)
    store_url, artifacts = f"sqlite:///{home / 'loopline.db'}", home / "artifacts"
    data = result.bundle.to_bytes()
    with Store.open(store_url, artifacts) as store:
        version = store.models.register_candidate(MODEL, result.candidate(spec, data_fingerprint="bench"))
        store.models.promote(MODEL, version.version)
    (home / "bundle.zip").write_bytes(data)
    return {"store_url": store_url, "artifacts": str(artifacts), "bundle": str(home / "bundle.zip"), "model": MODEL}


def run(name: str, args: dict[str, Any]) -> dict[str, Any]:
    code = CONTENDERS[name]
    out = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure_batch(quick: bool) -> dict[str, Any]:
    """Time loopline's batch scoring against the floor; ``{"sizes", "median", "summary", "peak_rss_mb", "ratios"}``."""
    import polars as pl
    import sklearn

    rows, repeats = (QUICK_ROWS, 1) if quick else (FULL_ROWS, 5)
    paths = make_data(rows)
    home = Path(tempfile.mkdtemp(prefix="store-", dir=DATA))
    try:
        args = {**train_model(paths["train"], home), "input": paths["input"], "warm_up": paths["warm_up"]}
        runs: dict[str, list[dict[str, Any]]] = {"floor": [], "loopline": []}
        for name in runs:  # warm-up: page cache, imports
            run(name, {**args, "output": str(home / f"{name}.parquet")})
        for _ in range(repeats):
            for name in runs:
                runs[name].append(run(name, {**args, "output": str(home / f"{name}.parquet")}))
        same = pl.read_parquet(home / "floor.parquet").equals(pl.read_parquet(home / "loopline.parquet"))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    stats = {name: summary([r["s"] for r in samples]) for name, samples in runs.items()}
    # floor seconds / loopline seconds, per alternated repeat (bigger is better for loopline)
    ratios = paired_ratios([r["s"] for r in runs["floor"]], [r["s"] for r in runs["loopline"]])
    return {
        "sizes": {"rows": rows, "columns": 20, "input_bytes": os.path.getsize(paths["input"]), "chunk_rows": 100_000},
        "versions": {"polars": pl.__version__, "scikit-learn": sklearn.__version__, **machine()},
        "repeats": repeats,
        "summary": stats,
        "median": {"loopline_s": stats["loopline"]["median"], "floor_s": stats["floor"]["median"]},
        "peak_rss_mb": {name: max(r["rss_mb"] for r in samples) for name, samples in runs.items()},
        "outputs_equal": same,
        "labels": {
            "loopline_s": "score_batch file -> file in a fresh subprocess: model lookup, bundle load, chunked read,"
            " prediction, Parquet write",
            "floor_s": "in a fresh subprocess: bundle load, read the whole Parquet, predict_table once, write",
        },
        "ratios": {"batch_vs_floor": round(stats["floor"]["median"] / stats["loopline"]["median"], 3)},
        "ratio_samples": {"batch_vs_floor": ratios},
        "goals": {"batch_vs_floor": goal(ratios, round(GOAL, 3))},
    }


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    result = measure_batch(quick)
    sizes = result["sizes"]
    print(f"batch scoring, {sizes['rows']:,} rows x {sizes['columns']} columns ({sizes['input_bytes'] / 1e6:.0f} MB)")
    print(f"{result['repeats']} alternating repeats after a warm-up; each contender in its own subprocess")
    print(f"{'contender':<12}{'median s':>10}{'min s':>9}{'max s':>9}{'peak RSS MB':>13}")
    for name, stats in result["summary"].items():
        rss = result["peak_rss_mb"][name]
        print(f"{name:<12}{stats['median']:>10.3f}{stats['min']:>9.3f}{stats['max']:>9.3f}{rss:>13.0f}")
    ratio = result["ratios"]["batch_vs_floor"]
    worst = result["goals"]["batch_vs_floor"]["worst"]
    print(
        f"batch_vs_floor = {ratio:.3f} (ratio of medians; worst repeat {worst:.3f}, goal >= {GOAL:.2f} on the worst);"
        f" outputs equal: {result['outputs_equal']}"
    )
    final_line("serve_batch", **result)


if __name__ == "__main__":
    main()
