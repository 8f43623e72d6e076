"""A big store for the dashboard benchmark, written in bulk (SQLAlchemy Core on the store's own tables).

Nothing here runs a pipeline: one tiny model is trained with :func:`loopline.train.train_candidate` (as the UI
tests do) and its bundle, training reference and drift profile are stored once; every model version points at
them, so pages that load a version work. The rest is made up but shaped like the real thing: run specs from the
``quickstart`` template, window records made by :meth:`loopline.monitor.WindowResult.to_dict` with row counts
taken from the generated prediction log, alerts on the drifted windows, a loop timeline, datasets with parts,
versions, a profile and dead letters, and a few Optuna studies in the same database.

Sizes (:data:`FULL`): 10,000 runs (3 pipelines, ~6 steps each), 1,000 model versions (3 models), 1,000,000
predictions over 30 days (10% labelled), ~2,160 hourly windows, 300 alerts, 5,000 loop events, 3 datasets with
100 versions, 300 parts and 1,000 dead letters each, 3 studies of 40 trials. ``--quick`` divides them by 20.

A SQLite store is cached under ``.bench/ui/`` keyed by :data:`GENERATOR_VERSION` and the sizes (bump the version
when the generator changes); a PostgreSQL database is filled once and marked, and must otherwise be empty.
"""

from __future__ import annotations

import math
import shutil
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import Engine, Table, func, insert, select

from loopline.store import Store
from loopline.store._tables import (
    alerts,
    checkpoints,
    dataset_parts,
    dataset_schemas,
    dataset_versions,
    dead_letters,
    feedback,
    loop_events,
    model_aliases,
    model_events,
    models,
    monitor_windows,
    predictions,
    runs,
    serve_errors,
    steps,
)

GENERATOR_VERSION = 3
"""Bump when what the generator writes changes: cached stores of another version are not reused."""
ROOT = Path(".bench/ui")
MARK_DATASET, MARK_SOURCE = "bench-ui", "generator"
"""The checkpoint row that marks a generated store (its position holds the generator version and sizes)."""
MODELS = ("churn", "flights", "fraud")
DAYS = 30
CHUNK = 20_000
FEATURES = {"numeric": ["x", "n"], "categorical": ["group"]}


@dataclass(frozen=True)
class Sizes:
    """How much of everything the store holds."""

    runs: int = 10_000
    versions: int = 1_000
    predictions: int = 1_000_000
    windows: int = 2_160
    alerts: int = 300
    loop_events: int = 5_000
    datasets: int = 3
    dataset_versions: int = 100
    dead_letters: int = 1_000
    studies: int = 3
    trials: int = 40

    def divided(self, by: int) -> Sizes:
        """Every size divided by ``by`` (at least 1; datasets and studies stay)."""
        keep = {"datasets", "studies"}
        return Sizes(**{k: v if k in keep else max(1, v // by) for k, v in asdict(self).items()})

    def key(self) -> str:
        """A short name of these sizes, for the cache folder."""
        return f"r{self.runs}-v{self.versions}-p{self.predictions}-w{self.windows}"


FULL = Sizes()
QUICK = FULL.divided(20)


@dataclass
class Made:
    """What was generated, for the resolvers and the report."""

    rows: dict[str, int]
    seconds: float
    reused: bool


def open_generated(url: str | None, sizes: Sizes) -> tuple[Store, Made]:
    """The generated store at ``url`` (None: the cached SQLite store under ``.bench/ui``), made when missing."""
    if url is None:
        folder = ROOT / f"v{GENERATOR_VERSION}-{sizes.key()}"
        if not (folder / ".ready").exists():
            building = folder.with_name(folder.name + ".building")
            shutil.rmtree(building, ignore_errors=True)
            building.mkdir(parents=True)
            with Store.open(f"sqlite:///{building / 'loopline.db'}", building / "artifacts") as store:
                made = generate(store, sizes)
            (building / ".ready").touch()
            shutil.rmtree(folder, ignore_errors=True)
            building.rename(folder)
        else:
            made = None
        store = Store.open(f"sqlite:///{folder / 'loopline.db'}", folder / "artifacts")
        return store, made or Made(table_counts(store.engine), 0.0, True)
    artifacts = ROOT / f"pg-artifacts-v{GENERATOR_VERSION}-{sizes.key()}"
    store = Store.open(url, artifacts)
    mark = _mark(store.engine)
    if mark == {"version": GENERATOR_VERSION, "sizes": asdict(sizes)} and artifacts.exists():
        return store, Made(table_counts(store.engine), 0.0, True)
    if mark is not None or _count(store.engine, runs) or _count(store.engine, models):
        store.close()
        raise SystemExit(
            f"bench_ui: the database at {store.url.render_as_string()} already holds data that this generator"
            " did not write (or wrote with other sizes or version); give it an empty database"
            " (e.g. DROP SCHEMA public CASCADE; CREATE SCHEMA public;)."
        )
    return store, generate(store, sizes)


def table_counts(engine: Engine) -> dict[str, int]:
    """Rows per generated table."""
    tables = (runs, steps, models, predictions, feedback, monitor_windows, alerts, loop_events, dataset_versions)
    return {table.name: _count(engine, table) for table in (*tables, dead_letters)}


def generate(store: Store, sizes: Sizes) -> Made:
    """Fill ``store`` (empty) with ``sizes`` of everything; one transaction per table."""
    started = time.perf_counter()
    rng = np.random.default_rng(15)
    now = datetime.now(UTC).replace(microsecond=0)
    assets = _assets(store)
    run_ids = _runs(store.engine, sizes, rng, now)
    versions = _models(store.engine, sizes, rng, now, assets, run_ids)
    counts = _predictions(store.engine, sizes, rng, now, versions)
    window_ids = _windows(store.engine, sizes, rng, now, counts, versions)
    _alerts(store.engine, sizes, rng, window_ids)
    _loop_events(store.engine, sizes, rng, now, versions)
    _datasets(store, sizes, rng, now, run_ids, assets)
    _studies(store, sizes)
    _write(store.engine, checkpoints, [_mark_row(sizes, now)])
    if store.engine.dialect.name == "postgresql":  # planner statistics, as autovacuum keeps them on a live store
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    return Made(table_counts(store.engine), time.perf_counter() - started, False)


# --- one real model ------------------------------------------------------------------------------------------------


def toy_frame(rows: int, seed: int) -> pl.DataFrame:
    """Two numeric features and a category; the label depends on all three (as in tests/ui/conftest.py)."""
    rng = np.random.default_rng(seed)
    x, n = rng.normal(size=rows), rng.integers(0, 10, rows)
    group = rng.choice(["a", "b", "c"], size=rows)
    return pl.DataFrame({"x": x, "n": n, "group": group, "label": (x + (group == "a") + n / 10) > 0.8})


@dataclass(frozen=True)
class Assets:
    """The artifacts every version shares, and the trained model's own figures."""

    bundle: str
    reference: str
    profile: str
    table: str
    table_rows: int
    dataset_profile: dict[str, Any]
    metrics: dict[str, Any]
    params: dict[str, Any]
    input_schema: Any
    timings: dict[str, Any]


def _assets(store: Store) -> Assets:
    from loopline.monitor import ReferenceProfile, profile_outputs
    from loopline.prep import profile_table
    from loopline.train import TrainSpec, train_candidate

    train, valid = toy_frame(300, 0), toy_frame(150, 100)
    spec = TrainSpec(target="label", estimator="logistic_regression", seed=0, **FEATURES)  # type: ignore[arg-type]
    result = train_candidate(train, valid, spec)
    profile = ReferenceProfile.from_frame(train, seed=0, **FEATURES)  # type: ignore[arg-type]
    scores = result.bundle.predict_table(valid)
    profile = profile_outputs(profile, scores, train.get_column("label"), classes=result.bundle.classes, seed=0)
    return Assets(
        bundle=store.artifacts.put_bytes(result.bundle.to_bytes()),
        reference=store.artifacts.put_table(train.drop("label")),
        profile=store.artifacts.put_bytes(profile.to_json().encode()),
        table=store.artifacts.put_table(train),
        table_rows=train.height,
        dataset_profile=profile_table(train),
        metrics=result.metrics,
        params=result.params,
        input_schema=result.bundle.input_schema,
        timings=result.timings,
    )


# --- runs ----------------------------------------------------------------------------------------------------------


def _pipeline_specs() -> dict[str, dict[str, Any]]:
    """One spec per model's pipeline: the quickstart template's, renamed."""
    from loopline.cli._templates import template_text
    from loopline.core.yamlfile import parse_pipeline

    base = parse_pipeline(template_text("quickstart"))
    specs = {}
    for model in MODELS:
        spec = base.to_dict()
        spec["name"] = f"{model}-loop"
        specs[spec["name"]] = {"spec": spec, "hash": f"{zlib.crc32(model.encode()):012x}{base.fingerprint()[12:]}"}
    return specs


def _runs(engine: Engine, sizes: Sizes, rng: np.random.Generator, now: datetime) -> dict[str, list[str]]:
    """Runs over 90 days, newest last, with their steps; pipeline -> run ids (oldest first)."""
    specs = _pipeline_specs()
    names = list(specs)
    starts = np.sort(rng.uniform(0, 90 * 86400, sizes.runs))
    picks = rng.integers(0, len(names), sizes.runs)
    outcome = rng.random(sizes.runs)
    run_rows: list[dict[str, Any]] = []
    step_rows: list[dict[str, Any]] = []
    ids: dict[str, list[str]] = {name: [] for name in names}
    for i in range(sizes.runs):
        name = names[picks[i]]
        spec = specs[name]["spec"]
        run_id = uuid.UUID(int=int(rng.integers(0, 2**62)) << 64 | i).hex
        started = now - timedelta(days=90) + timedelta(seconds=float(starts[i]))
        status = "running" if i >= sizes.runs - 2 else "failed" if outcome[i] < 0.08 else "succeeded"
        step_list, finished = _steps(run_id, spec, started, status, rng)
        step_rows.extend(step_list)
        run_rows.append(
            {
                "run_id": run_id,
                "pipeline": name,
                "pipeline_hash": specs[name]["hash"],
                "spec": spec,
                "params": {"start": "2013-01-01", "end": f"2013-{1 + i % 12:02d}-28"},
                "status": status,
                "started_at": started,
                "finished_at": None if status == "running" else finished,
                "error": "step 'train' failed: ValueError: Input contains NaN" if status == "failed" else None,
                "pipeline_file": f"/srv/pipelines/{name}.yaml",
                "owner_host": "bench-host",
                "owner_pid": 1000 + i % 30000,
                "heartbeat_at": finished,
            }
        )
        ids[name].append(run_id)
    _write(engine, runs, run_rows)
    _write(engine, steps, step_rows)
    return ids


def _steps(
    run_id: str, spec: dict[str, Any], started: datetime, status: str, rng: np.random.Generator
) -> tuple[list[dict[str, Any]], datetime]:
    rows, at = [], started
    names = list(spec["steps"])
    stop = len(names) if status == "succeeded" else int(rng.integers(1, len(names) + 1))
    for index, step in enumerate(names[:stop]):
        config = spec["steps"][step]
        cached = status == "succeeded" and index < 2 and rng.random() < 0.5
        duration = 0.01 if cached else float(rng.gamma(2.0, 3.0))
        failed = status == "failed" and index == stop - 1
        rows.append(
            {
                "run_id": run_id,
                "step": step,
                "type": str(config.get("type", "step")),
                "status": "failed" if failed else "cached" if cached else "succeeded",
                "cache_key": f"{zlib.crc32(step.encode()):016x}{run_id[:16]}{'0' * 32}",
                "started_at": at,
                "finished_at": at + timedelta(seconds=duration),
                "duration_s": duration,
                "config": config,
                "outputs": {} if failed else {"out": {"digest": run_id + run_id, "kind": "table"}},
                "error": "ValueError: Input contains NaN" if failed else None,
                "attempt": 1,
            }
        )
        at += timedelta(seconds=duration)
    return rows, at


# --- models --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Promotion:
    """A model's production version from ``at`` on."""

    version: int
    at: datetime


def _jitter(metrics: Any, rng: np.random.Generator) -> Any:
    if isinstance(metrics, dict):
        return {k: _jitter(v, rng) for k, v in metrics.items()}
    if isinstance(metrics, float) and math.isfinite(metrics):
        return round(metrics * float(rng.uniform(0.97, 1.03)), 6)
    return metrics


def _models(
    engine: Engine, sizes: Sizes, rng: np.random.Generator, now: datetime, assets: Assets, ids: dict[str, list[str]]
) -> dict[str, list[Promotion]]:
    """Versions over 90 days; ten promotions per model in the last 30 (the prediction log follows them)."""
    rows: list[dict[str, Any]] = []
    aliases: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    promotions: dict[str, list[Promotion]] = {}
    per_model = [sizes.versions // len(MODELS) + (i < sizes.versions % len(MODELS)) for i in range(len(MODELS))]
    for model, count in zip(MODELS, per_model, strict=True):
        pipeline_runs: list[str | None] = [*ids[f"{model}-loop"]] or [None]
        created = [now - timedelta(days=90) + timedelta(days=90 * (v + 0.5) / count) for v in range(count)]
        promoted = sorted({max(1, count - 1 - 2 * k) for k in range(10)})
        history = [
            Promotion(v, max(created[v - 1], now - timedelta(days=DAYS) + timedelta(days=3 * k)))
            for k, v in enumerate(promoted)
        ]
        promotions[model] = history
        production = history[-1].version
        when = {p.version: p.at for p in history}
        for v in range(1, count + 1):
            archived = v < production and v not in when
            rows.append(
                {
                    "name": model,
                    "version": v,
                    "stage": "archived" if archived else "candidate",
                    "algorithm": "logistic_regression" if v % 2 else "hist_gradient_boosting",
                    "bundle_digest": assets.bundle,
                    "reference_digest": assets.reference,
                    "profile_digest": assets.profile,
                    "metrics": _jitter(assets.metrics, rng),
                    "params": assets.params,
                    "config": {"features": FEATURES, "target": "label"},
                    "input_schema": assets.input_schema,
                    "data_fingerprint": f"{model}-{v:06d}",
                    "run_id": pipeline_runs[(v * 7) % len(pipeline_runs)],
                    "timings": assets.timings,
                    "created_at": created[v - 1],
                    "promoted_at": when.get(v),
                    "archived_at": created[v - 1] + timedelta(days=1) if archived else None,
                }
            )
        aliases += [
            {"name": model, "alias": "production", "version": production, "set_at": history[-1].at, "set_by": "loop"},
            {"name": model, "alias": "staging", "version": count, "set_at": created[-1], "set_by": "ci"},
        ]
        previous = None
        for p in history:
            events.append(
                {
                    "name": model,
                    "action": "promote",
                    "from_version": previous,
                    "to_version": p.version,
                    "reason": f"gate passed: roc_auc beat v{previous}" if previous else "first production version",
                    "at": p.at,
                    "alias": "production",
                    "actor": "loop",
                    "details": {"expect": previous},
                }
            )
            previous = p.version
    _write(engine, models, rows)
    _write(engine, model_aliases, aliases)
    _write(engine, model_events, events)
    return promotions


# --- predictions, labels, errors ------------------------------------------------------------------------------------


def _predictions(
    engine: Engine, sizes: Sizes, rng: np.random.Generator, now: datetime, promotions: dict[str, list[Promotion]]
) -> dict[str, np.ndarray]:
    """The prediction log over the last 30 days (10% labelled) and the failed requests per hour; model -> the
    creation times in seconds since the start (sorted), for the windows.

    The two big tables are written as the service's log writes them, but with their JSON and timestamps encoded
    here in bulk (vectorised) and passed straight to the driver's executemany: per-row type processing would
    take minutes for a million rows."""
    start = now - timedelta(days=DAYS)
    span = DAYS * 86400.0
    times: dict[str, np.ndarray] = {}
    per_model = sizes.predictions // len(MODELS)
    for m, model in enumerate(MODELS):
        seconds = np.sort(rng.uniform(0, span, per_model))
        times[model] = seconds
        switch = np.array([(p.at - start).total_seconds() for p in promotions[model]])
        version_of = np.array([p.version for p in promotions[model]])
        versions = version_of[np.clip(np.searchsorted(switch, seconds, side="right") - 1, 0, len(version_of) - 1)]
        x = rng.normal(size=per_model) + seconds / span * 0.5  # a slow drift
        n = rng.integers(0, 10, per_model)
        group = rng.choice(np.array(["a", "b", "c"]), size=per_model)
        p_true = 1 / (1 + np.exp(-(x + (group == "a") + n / 10 - 0.8)))
        latency = rng.lognormal(0.3, 0.5, per_model)
        labelled = rng.random(per_model) < 0.1
        truth = rng.random(per_model) < p_true
        ids = [f"{m}{i:015d}{r:016x}" for i, r in enumerate(rng.integers(0, 2**63, per_model).tolist())]
        created = _timestamps(engine, start, seconds)
        received = _timestamps(engine, start, seconds + 3600)
        rows = [
            (pid, model, int(v), at, f'{{"x": {xi!r}, "n": {ni}, "group": "{gi}"}}', _output(pi), li)
            for pid, v, at, xi, ni, gi, pi, li in zip(
                ids, versions.tolist(), created, x.tolist(), n.tolist(), group.tolist(), p_true.tolist(),
                latency.tolist(), strict=True,
            )
        ]  # fmt: skip
        _write_raw(engine, predictions, rows)
        where = np.flatnonzero(labelled).tolist()
        labels = [
            (model, ids[i], "true" if truth[i] else "false", "labels", received[i], None, created[i]) for i in where
        ]
        _write_raw(engine, feedback, labels)
        hours = DAYS * 24
        counts = rng.poisson(0.8, hours)
        _write(
            engine,
            serve_errors,
            [
                {
                    "error_id": f"{model}-{h}",
                    "model_name": model,
                    "model_version": int(version_of[-1]),
                    "kind": "input" if h % 3 else "model",
                    "cause": "validation" if h % 3 else "ValueError",
                    "created_at": start + timedelta(hours=h, minutes=30),
                    "count": int(c),
                }
                for h, c in enumerate(counts)
                if c
            ],
        )
    return times


def _output(probability: float) -> str:
    """A classifier's logged output as JSON: the predicted class and both probabilities."""
    verdict = "true" if probability > 0.5 else "false"
    return f'{{"prediction": {verdict}, "probabilities": {{"False": {1 - probability!r}, "True": {probability!r}}}}}'


def _timestamps(engine: Engine, start: datetime, seconds: np.ndarray) -> list[str]:
    """``start + seconds`` as the text the database reads for a UTC timestamp (SQLite: naive UTC, as
    :class:`~loopline.store._tables.UTCDateTime` stores it; PostgreSQL: ISO 8601 with the zone)."""
    base = np.datetime64(start.replace(tzinfo=None), "us")
    stamps = base + (seconds * 1e6).astype("timedelta64[us]")
    text = np.datetime_as_string(stamps, unit="us")
    encoded = np.char.replace(text, "T", " ") if engine.dialect.name == "sqlite" else np.char.add(text, "+00:00")
    return [str(value) for value in encoded]


# --- windows and alerts --------------------------------------------------------------------------------------------


def _windows(
    engine: Engine,
    sizes: Sizes,
    rng: np.random.Generator,
    now: datetime,
    times: dict[str, np.ndarray],
    promotions: dict[str, list[Promotion]],
) -> list[tuple[int, str, datetime, datetime, list[str]]]:
    """Closed windows of equal length tiling the 30 days of each model; (id, model, start, end, drifted) of each."""
    from loopline.monitor import DriftReport, PredictionSummary, WindowHealth, WindowResult

    start = now - timedelta(days=DAYS)
    wanted = DAYS * 24 / max(1, sizes.windows // len(MODELS))  # hours a window would span
    hours = max(h for h in (1, 2, 3, 4, 6, 8, 12, 24) if h <= max(1.0, wanted))  # a spec that tiles the calendar
    per_model = DAYS * 24 // hours
    length = hours * 3600.0
    spec = "1d" if hours == 24 else f"{hours}h"
    rows: list[dict[str, Any]] = []
    for model in MODELS:
        edges = np.searchsorted(times[model], np.arange(per_model + 1) * length)
        production = promotions[model][-1].version
        for seq in range(per_model):
            w_start = start + timedelta(seconds=seq * length)
            w_end = w_start + timedelta(seconds=length)
            count = int(edges[seq + 1] - edges[seq])
            shift = seq / per_model
            features = [
                _feature("x", 0.02 + 0.4 * shift * float(rng.random()), count),
                _feature("n", 0.01 + 0.05 * float(rng.random()), count),
                _feature("group", 0.01 + 0.05 * float(rng.random()), count, kind="categorical"),
            ]
            drifted = [f.feature for f in features if f.drifted]
            outputs = [_feature("probability:True", 0.05 + 0.2 * shift * float(rng.random()), count)]
            health = WindowHealth(
                rows=count,
                versions={production: count},
                first_at=w_start,
                last_at=w_end - timedelta(seconds=1),
                latency_p50_ms=float(rng.uniform(1.2, 1.6)),
                latency_p99_ms=float(rng.uniform(5, 9)),
                latency_mean_ms=float(rng.uniform(1.5, 2)),
                latency_max_ms=float(rng.uniform(10, 40)),
                throughput_rps=count / length,
                prediction=PredictionSummary("categorical", {"True": 0.4 + 0.1 * shift, "False": 0.6 - 0.1 * shift}),
            )
            auc = 0.86 - 0.08 * shift + float(rng.normal(0, 0.01))
            result = WindowResult(
                model,
                spec,
                seq,
                w_start,
                w_end,
                "closed",
                health,
                DriftReport(features, drifted, bool(drifted)),
                output_drift=DriftReport(outputs, [f.feature for f in outputs if f.drifted], False),
                last_id=None,
                reference_version=production,
                realised_metrics={"roc_auc": auc, "accuracy": auc - 0.05},
                estimated_metrics={"roc_auc": auc + 0.01},
                estimated_bands={"roc_auc": (auc - 0.03, auc + 0.05)},
                label_coverage=0.1,
                labelled_rows=count // 10,
                realised_status="ok",
            )
            rows.append(
                {
                    "model_name": model,
                    "spec": spec,
                    "seq": seq,
                    "start_at": w_start,
                    "end_at": w_end,
                    "last_id": None,
                    "rows": count,
                    "drifted": len(drifted),
                    "result": result.to_dict(),
                    "closed_at": w_end + timedelta(seconds=30),
                }
            )
    _write(engine, monitor_windows, rows)
    with engine.connect() as conn:
        found = conn.execute(
            select(monitor_windows.c.id, monitor_windows.c.model_name, monitor_windows.c.seq).order_by(
                monitor_windows.c.id
            )
        ).all()
    by_key = {(r["model_name"], r["seq"]): r for r in rows}
    out = []
    for window_id, model, seq in found:
        row = by_key[(model, seq)]
        drifted = [f["feature"] for f in row["result"]["drift"]["features"] if f["drifted"]]
        out.append((window_id, model, row["start_at"], row["end_at"], drifted))
    return out


def _feature(name: str, psi: float, count: int, *, kind: str = "numeric") -> Any:
    from loopline.monitor import FeatureDrift

    drifted = psi > 0.25
    return FeatureDrift(
        name,
        kind,  # type: ignore[arg-type]
        psi,
        "psi",
        psi,
        None,
        drifted,
        300,
        count,
        f"PSI {psi:.3f} {'above' if drifted else 'within'} the threshold 0.25",
        "drift" if drifted else "no drift",
        0.25,
    )


def _alerts(
    engine: Engine,
    sizes: Sizes,
    rng: np.random.Generator,
    windows: list[tuple[int, str, datetime, datetime, list[str]]],
) -> None:
    """Alerts on the drifted windows first (then on others, for the accuracy floor), the newest unacknowledged."""
    ordered = [w for w in windows if w[4]] + [w for w in windows if not w[4]]
    chosen = sorted(ordered[: sizes.alerts], key=lambda w: w[3])
    rows: list[dict[str, Any]] = []
    for index, (window_id, model, start, end, drifted) in enumerate(chosen):
        drift = bool(drifted)
        rows.append(
            {
                "window_id": window_id,
                "model_name": model,
                "spec": "window",
                "window_start": start,
                "window_end": end,
                "rule": "drifted features above 0" if drift else "realised roc_auc below 0.8",
                "metric": "drifted_features" if drift else "realised.roc_auc",
                "op": "above" if drift else "below",
                "threshold": 0.0 if drift else 0.8,
                "value": float(len(drifted)) if drift else float(rng.uniform(0.7, 0.8)),
                "created_at": end + timedelta(seconds=31),
                "acknowledged_at": None if index >= len(chosen) * 2 // 3 else end + timedelta(hours=2),
                "delivery": "sent",
                "delivery_error": None,
            }
        )
    _write(engine, alerts, rows)


# --- the loop ------------------------------------------------------------------------------------------------------


def _loop_events(
    engine: Engine, sizes: Sizes, rng: np.random.Generator, now: datetime, promotions: dict[str, list[Promotion]]
) -> None:
    """Ticks every few minutes over 30 days, with triggers, retrains, gate verdicts and promotions in between."""
    start = now - timedelta(days=DAYS)
    per_model = sizes.loop_events // len(MODELS)
    rows: list[dict[str, Any]] = []
    for model in MODELS:
        pipeline = f"{model}-loop"
        history = {p.at: p.version for p in promotions[model]}
        at_promotion = sorted(history)
        moments = np.sort(rng.uniform(0, DAYS * 86400, per_model))
        next_promotion = 0
        for second in moments:
            at = start + timedelta(seconds=float(second))
            if next_promotion < len(at_promotion) and at >= at_promotion[next_promotion]:
                version = history[at_promotion[next_promotion]]
                next_promotion += 1
                rows += _decision(pipeline, model, at_promotion[next_promotion - 1], version)
                continue
            kind = "tick" if rng.random() < 0.9 else "skip"
            reason = "no drift, accuracy within bounds" if kind == "tick" else "no trigger fired: drift below 1 feature"
            details = {"signals": {"drifted_features": int(rng.integers(0, 2)), "rows": int(rng.integers(0, 9000))}}
            rows.append(
                {"pipeline": pipeline, "model": model, "kind": kind, "reason": reason, "details": details, "at": at}
            )
    rows.sort(key=lambda r: r["at"])
    _write(engine, loop_events, rows)


def _decision(pipeline: str, model: str, at: datetime, version: int) -> list[dict[str, Any]]:
    """The events of one retrain that ended in a promotion."""
    steps_ = [
        ("trigger", "drift: 1 of 3 features drifted (x)", {"rule": "on_drift", "drifted": ["x"]}),
        ("retrain", "drift trigger", {"run_id": None, "strategy": "best"}),
        (
            "gate",
            f"v{version} passed the gate: roc_auc 0.861 >= 0.855",
            {"passed": True, "reasons": ["roc_auc 0.861 >= 0.855", "latency_p99_ms 4.1 <= 50"], "candidate": version},
        ),
        ("promotion", f"v{version} promoted", {"version": version}),
        ("probation", f"v{version} is on probation for 1d", {"version": version, "state": "started"}),
    ]
    return [
        {"pipeline": pipeline, "model": model, "kind": kind, "reason": reason, "details": details,
         "at": at - timedelta(minutes=10 - 2 * i)}
        for i, (kind, reason, details) in enumerate(steps_)
    ]  # fmt: skip


# --- datasets ------------------------------------------------------------------------------------------------------


def _datasets(
    store: Store, sizes: Sizes, rng: np.random.Generator, now: datetime, ids: dict[str, list[str]], assets: Assets
) -> None:
    """Datasets ingested over 90 days: three parts per version (each the same real small table), a schema, a
    checkpoint per source, dead letters, and the latest version's profile."""
    schema = {"x": "Float64", "n": "Int64", "group": "String", "label": "Boolean"}
    parts, versions, letters, schemas, marks = [], [], [], [], []
    for d in range(sizes.datasets):
        name = f"{MODELS[d % len(MODELS)]}-events"
        run_list: list[str | None] = [*ids[f"{MODELS[d % len(MODELS)]}-loop"]] or [None]
        seq = 0
        for v in range(1, sizes.dataset_versions + 1):
            at = now - timedelta(days=90) + timedelta(days=90 * v / sizes.dataset_versions)
            for _ in range(3):
                seq += 1
                parts.append(
                    {
                        "dataset": name,
                        "seq": seq,
                        "source": "kafka" if seq % 2 else "files",
                        "digest": assets.table,
                        "rows": assets.table_rows,
                        "bytes": 9_000,
                        "position": {"offset": seq * assets.table_rows},
                        "created_at": at,
                    }
                )
            versions.append(
                {
                    "dataset": name,
                    "version": v,
                    "rows": seq * assets.table_rows,
                    "upto_seq": seq,
                    "checksum": f"{d:02d}{v:062x}",
                    "schema": schema,
                    "positions": {"kafka": {"offset": seq * assets.table_rows}, "files": {"file": f"part-{v}.csv"}},
                    "run_id": run_list[v % len(run_list)],
                    "created_at": at,
                    "profile_digest": None,
                }
            )
        letters += [
            {
                "dataset": name,
                "source": "kafka",
                "reason": "field 'x': expected a number, got 'n/a'",
                "position": {"offset": int(i * 37)},
                "raw": '{"x": "n/a", "n": 3, "group": "b"}',
                "created_at": now - timedelta(minutes=int(rng.integers(0, DAYS * 1440))),
                "replayed_at": None,
            }
            for i in range(sizes.dead_letters)
        ]
        schemas.append({"dataset": name, "schema": schema, "created_at": now - timedelta(days=90)})
        marks += [
            {"dataset": name, "source": "kafka", "position": {"offset": seq * assets.table_rows}, "rows": seq * 150,
             "updated_at": now},
            {"dataset": name, "source": "files", "position": {"file": "latest.csv"}, "rows": seq * 150,
             "updated_at": now},
        ]  # fmt: skip
    for table, rows in (
        (dataset_parts, parts),
        (dataset_versions, versions),
        (dead_letters, letters),
        (dataset_schemas, schemas),
        (checkpoints, marks),
    ):
        _write(store.engine, table, rows)
    for d in range(sizes.datasets):
        name = f"{MODELS[d % len(MODELS)]}-events"
        latest = store.datasets.version(name)
        profile = {"dataset": name, "version": latest.version, "checksum": latest.checksum, **assets.dataset_profile}
        store.datasets.set_profile(name, latest.version, store.artifacts.put_json(profile))


# --- studies -------------------------------------------------------------------------------------------------------


def _studies(store: Store, sizes: Sizes) -> None:
    """A few Optuna studies in the store's database, as ``loopline tune`` writes them (settings, per-set scores)."""
    import optuna

    from loopline.tune._studies import SETTINGS_ATTR, storage_at

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = store.engine.url.render_as_string(hide_password=False)
    with storage_at(url) as storage:
        for s in range(sizes.studies):
            study = optuna.create_study(
                study_name=f"{MODELS[s % len(MODELS)]}-tuning", storage=storage, direction="maximize",
                sampler=optuna.samplers.RandomSampler(seed=s),
            )  # fmt: skip
            settings = {"metric": "roc_auc", "aggregate": "mean", "sets": ["2013-03", "2013-04"]}
            study.set_user_attr(SETTINGS_ATTR, settings)
            study.optimize(_objective, n_trials=sizes.trials)


def _objective(trial: Any) -> float:
    """A smooth made-up score over three hyperparameters, with a score per evaluation set."""
    from loopline.tune._objective import SCORES_ATTR

    lr = trial.suggest_float("learning_rate", 0.01, 0.3, log=True)
    depth = trial.suggest_int("max_depth", 2, 10)
    l2 = trial.suggest_float("l2_regularization", 0.0, 1.0)
    score = 0.85 - (math.log10(lr) + 1.2) ** 2 * 0.02 - abs(depth - 6) * 0.004 - l2 * 0.01
    trial.set_user_attr(SCORES_ATTR, {"2013-03": score + 0.003, "2013-04": score - 0.003})
    return float(score)


# --- writing -------------------------------------------------------------------------------------------------------


def _write(engine: Engine, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` in chunks, one transaction."""
    if not rows:
        return
    with engine.begin() as conn:
        for chunk in _chunks(rows):
            conn.execute(insert(table), chunk)


def _write_raw(engine: Engine, table: Table, rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (tuples in the table's column order, already encoded) through the driver's executemany."""
    if not rows:
        return
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    names, marks = ", ".join(table.columns.keys()), ", ".join([mark] * len(table.columns))
    sql = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"
    with engine.begin() as conn:
        for chunk in _chunks(rows):
            conn.exec_driver_sql(sql, chunk)


def _chunks(rows: list[Any]) -> Iterator[list[Any]]:
    for lo in range(0, len(rows), CHUNK):
        yield rows[lo : lo + CHUNK]


def _count(engine: Engine, table: Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _mark_row(sizes: Sizes, now: datetime) -> dict[str, Any]:
    position = {"version": GENERATOR_VERSION, "sizes": asdict(sizes)}
    return {"dataset": MARK_DATASET, "source": MARK_SOURCE, "position": position, "rows": 0, "updated_at": now}


def _mark(engine: Engine) -> dict[str, Any] | None:
    stmt = select(checkpoints.c.position).where(
        checkpoints.c.dataset == MARK_DATASET, checkpoints.c.source == MARK_SOURCE
    )
    with engine.connect() as conn:
        found = conn.execute(stmt).scalar_one_or_none()
    return dict(found) if found else None
