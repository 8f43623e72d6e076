"""Preprocessing: a representative chain through loopline vs pandas + scikit-learn, batch and one record.

The chain, on 2M rows x 8 columns plus a 1,000-row dimension table joined on a key:
impute (median) + 3 derived columns + one-hot (3 columns) + standard scaling (5 columns) + the join.
- loopline: the join as loopline's ``join`` step runs it (polars), then ``Chain.fit_transform`` on the
  rows, then the feature matrix (``to_numpy``), as a model would receive it.
- peer: ``pandas.merge``, the derived columns with pandas, then scikit-learn's ``ColumnTransformer``
  (SimpleImputer + StandardScaler on numbers, OneHotEncoder(handle_unknown="ignore", dense) on categories),
  ``fit_transform`` to a dense matrix — the usual way.
Each contender runs in its own subprocess (so its peak RSS is its own), alternated, 5 repeats after a
warm-up; libraries are imported before the clock starts. One record: the fitted chain's
``transform_record`` on a dict (joined row; derived columns, imputation, encoding and scaling all inside)
vs the fitted ``ColumnTransformer.transform`` on a one-row DataFrame whose derived columns were computed
beforehand (so the peer is timed on transform() alone), per-call medians over 5 rounds after a warm-up.

    python benchmarks/bench_prep.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import final_line, goal, machine, paired_ratios, spread_table, summary

DATA = Path(".bench/prep")

CHAIN = [
    {"type": "impute", "columns": ["amount", "qty", "score"], "strategy": "median"},
    {
        "type": "derive",
        "columns": {
            "per_item": "amount / (qty + 1)",
            "log_amount": "log1p(abs(amount))",
            "weekend_big": "weekday >= 6 and amount > 100",
        },
    },
    {"type": "onehot", "columns": ["city", "channel", "region"]},
    {"type": "scale", "columns": ["amount", "qty", "score", "per_item", "log_amount"]},
]

PRELUDE = """
import json, sys, time
import numpy as np, pandas as pd, polars as pl
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from loopline.prep import Chain
ARGS = json.loads(sys.argv[1])
CHAIN = ARGS["chain"]
NUMERIC = ["amount", "qty", "score", "per_item", "log_amount", "store_size"]
CATEGORIES = ["city", "channel", "region"]

def loopline_fit():
    rows, stores = pl.read_parquet(ARGS["rows"]), pl.read_parquet(ARGS["stores"])
    joined = rows.join(stores, on="store_id", how="left")
    chain = Chain.from_config(CHAIN)
    out = chain.fit_transform(joined)
    return chain, out.drop("store_id").to_numpy()

def derive_pandas(df):
    df = df.copy()
    df["per_item"] = df["amount"] / (df["qty"] + 1)
    df["log_amount"] = np.log1p(df["amount"].abs())
    df["weekend_big"] = ((df["weekday"] >= 6) & (df["amount"] > 100)).astype(float)
    return df

def sklearn_pipeline():
    numbers = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categories = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    flags = ["weekday", "weekend_big"]
    return ColumnTransformer(
        [("num", numbers, NUMERIC), ("cat", categories, CATEGORIES), ("flags", "passthrough", flags)]
    )

def sklearn_fit():
    rows, stores = pd.read_parquet(ARGS["rows"]), pd.read_parquet(ARGS["stores"])
    joined = derive_pandas(rows.merge(stores, on="store_id", how="left"))
    pipeline = sklearn_pipeline()
    return pipeline, pipeline.fit_transform(joined), stores

def vmhwm_mb():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
started = time.perf_counter()
"""

BATCH = {
    "loopline": "loopline_fit()",
    "sklearn": "sklearn_fit()",
}

EPILOGUE = """
elapsed = time.perf_counter() - started
print(json.dumps({"s": elapsed, "rss_mb": vmhwm_mb()}))
"""

ONE_RECORD = """
chain, _ = loopline_fit()
pipeline, _, stores = sklearn_fit()
row = pl.read_parquet(ARGS["rows"]).join(pl.read_parquet(ARGS["stores"]), on="store_id", how="left").row(7, named=True)
record = dict(row)
frame = derive_pandas(pd.DataFrame([record]))  # derived beforehand: the peer's time is transform() alone

def loopline_one():
    chain.transform_record(record)

def sklearn_one():
    pipeline.transform(frame)

def per_call(fn, n):
    times = []
    for _ in range(n):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]

n = ARGS["calls"]
for fn in (loopline_one, sklearn_one):
    per_call(fn, 200)  # warm-up
result = {"loopline_us": [], "sklearn_us": []}
for _ in range(5):
    result["loopline_us"].append(per_call(loopline_one, n) * 1e6)
    result["sklearn_us"].append(per_call(sklearn_one, n // 10) * 1e6)
print(json.dumps(result))
"""


def make_data(rows: int) -> dict[str, str]:
    """2M order rows and a 1,000-row store table, as Parquet (made once, kept under .bench/)."""
    import numpy as np
    import polars as pl

    folder = DATA / str(rows)
    paths = {"rows": folder / "rows.parquet", "stores": folder / "stores.parquet"}
    if not all(p.exists() for p in paths.values()):
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        amount = rng.gamma(2.0, 40.0, rows)
        amount[rng.random(rows) < 0.05] = np.nan
        qty = rng.integers(0, 12, rows).astype(float)
        qty[rng.random(rows) < 0.03] = np.nan
        cities = [f"city-{i:02d}" for i in range(50)]
        pl.DataFrame(
            {
                "amount": amount,
                "qty": qty,
                "score": rng.normal(0, 1, rows),
                "weekday": rng.integers(1, 8, rows),
                "city": rng.choice(cities, rows),
                "channel": rng.choice(["web", "app", "store"], rows),
                "store_id": rng.integers(0, 1000, rows),
            }
        ).with_columns(pl.col("amount").fill_nan(None), pl.col("qty").fill_nan(None)).write_parquet(paths["rows"])
        pl.DataFrame(
            {
                "store_id": np.arange(1000),
                "region": rng.choice(["north", "south", "east", "west"], 1000),
                "store_size": rng.integers(50, 2000, 1000).astype(float),
            }
        ).write_parquet(paths["stores"])
    return {k: str(v) for k, v in paths.items()}


def run(code: str, args: dict[str, object]) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", code, json.dumps(args)], check=True, capture_output=True, text=True)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    cli = parser.parse_args()
    rows, repeats, calls = (50_000, 1, 200) if cli.quick else (2_000_000, 5, 2000)
    chain = [*CHAIN[:3], {**CHAIN[3], "columns": [*CHAIN[3]["columns"], "store_size"]}]  # type: ignore[dict-item]
    args = {**make_data(rows), "chain": chain, "calls": calls}
    for name in BATCH:  # warm-up: page cache, imports
        run(PRELUDE + BATCH[name] + EPILOGUE, args)
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in BATCH}
    for _ in range(repeats):
        for name, code in BATCH.items():
            samples[name].append(run(PRELUDE + code + EPILOGUE, args))  # type: ignore[arg-type]
    one = run(PRELUDE + ONE_RECORD, args)
    medians = {name: summary([s["s"] for s in runs])["median"] for name, runs in samples.items()}
    rss = {name: max(s["rss_mb"] for s in runs) for name, runs in samples.items()}
    one_medians = {k: summary(v)["median"] for k, v in one.items()}  # type: ignore[arg-type]
    print(f"{rows:,} rows: join + impute + 3 derived + one-hot (3) + scale (6) to a dense matrix; {repeats} repeats")
    print(f"{'contender':<12}{'median s':>10}{'min s':>9}{'max s':>9}{'peak RSS MB':>13}")
    for name, runs in samples.items():
        stats = summary([s["s"] for s in runs])
        print(f"{name:<12}{stats['median']:>10.3f}{stats['min']:>9.3f}{stats['max']:>9.3f}{rss[name]:>13.0f}")
    print(f"one record: loopline {one_medians['loopline_us']:.1f} us, scikit-learn {one_medians['sklearn_us']:.1f} us")
    batch = paired_ratios([s["s"] for s in samples["sklearn"]], [s["s"] for s in samples["loopline"]])
    one_record = paired_ratios(one["sklearn_us"], one["loopline_us"])  # type: ignore[arg-type]
    print(spread_table({"batch: sklearn / loopline": batch, "one record: sklearn / loopline": one_record}, "ratio"))
    ratios = {
        "batch_vs_sklearn": medians["sklearn"] / medians["loopline"],
        "one_record_vs_sklearn": one_medians["sklearn_us"] / one_medians["loopline_us"],
        "rss_vs_sklearn": rss["sklearn"] / rss["loopline"],
    }
    goals = {"batch_vs_sklearn": goal(batch, 3.0), "one_record_vs_sklearn": goal(one_record, 10.0)}
    for key, value in ratios.items():
        verdict = "" if key not in goals else f"  (goal >= {goals[key]['goal']:g}, worst {goals[key]['worst']:.2f})"
        print(f"{key}: {value:.2f}{verdict}")
    import pandas
    import polars
    import sklearn

    final_line(
        "prep",
        sizes={"rows": rows, "columns": 8, "dimension_rows": 1000, "repeats": repeats, "one_record_calls": calls},
        machine=machine(),
        versions={
            "loopline": version("loopline"),
            "polars": polars.__version__,
            "pandas": pandas.__version__,
            "scikit-learn": sklearn.__version__,
        },
        median={**{f"{k}_s": v for k, v in medians.items()}, **one_medians},
        peak_rss_mb=rss,
        labels={
            "batch_vs_sklearn": "2M rows joined with a 1,000-row table, then impute + 3 derived + one-hot + scale,"
            " fitted and applied to a dense float matrix, each contender in its own process (read included)",
            "one_record_vs_sklearn": "one dict through the fitted chain (loopline transform_record) vs"
            " ColumnTransformer.transform on a one-row DataFrame with the derived columns precomputed",
        },
        spread={"batch_vs_sklearn": summary(batch), "one_record_vs_sklearn": summary(one_record)},
        ratios=ratios,
        goals=goals,
    )


if __name__ == "__main__":
    main()
