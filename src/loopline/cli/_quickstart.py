"""``loopline quickstart``: the whole loop on real data (NYC flights 2013) in under two minutes.

Train on January–March, serve, replay July's flights as live traffic, find the drift,
retrain on April–June and promote the challenger only if it wins on the recent holdout.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import polars as pl

from loopline.cli._context import check_bundle
from loopline.cli._loop import print_drift, print_selection, progress_runner, write_report
from loopline.cli._progress import run_with_progress
from loopline.cli._render import console, table
from loopline.cli._seed import (
    ingest_weather_from_devices,
    seed_flights_table,
    seed_weather_files,
    weather_mqtt_source,
)
from loopline.core.errors import ConfigError, LooplineError
from loopline.core.settings import Settings

if TYPE_CHECKING:
    from loopline.core.pipeline import Pipeline
    from loopline.core.records import Selection
    from loopline.store import Store

TRAFFIC = {"start": "2013-07-01", "end": "2013-08-01"}
RETRAIN_END = datetime(2013, 7, 1, tzinfo=UTC)
BATCHES, BATCH_SIZE, SINGLES = 40, 50, 200


def run_quickstart(home: Path | None, report_path: Path, mqtt: str | None = None) -> None:
    """Run the loop end to end in the default store (the one ``loopline models list`` and ``serve`` open),
    its source systems in ``<home>/quickstart`` (recreated each time), and summarise it."""
    from loopline.core.yamlfile import parse_pipeline
    from loopline.run import retrain_and_gate, selection_of
    from loopline.serve import BackgroundServer, ServeSettings

    started = time.perf_counter()
    settings = Settings.from_env(home)
    root = settings.home / "quickstart"
    text = files("loopline.templates").joinpath("quickstart.yaml").read_text(encoding="utf-8")
    pipeline = parse_pipeline(text, source="quickstart.yaml")
    if pipeline.monitor is None:
        raise LooplineError("the quickstart template lost its 'monitor:' section.", hint="Reinstall loopline.")
    model = pipeline.monitor.model
    store = open_quickstart_store(settings, pipeline)
    if root.exists():
        shutil.rmtree(root)
    pipeline.params["sources"] = str(root / "sources")
    console.print(f"store: [bold]{_where(settings)}[/] (the default store: {_next_steps(home)} find its models)")
    try:
        feed = f"weather stations publishing on MQTT at {mqtt}" if mqtt else "the weather feed (files)"
        console.rule(f"[bold]0 · seed the source systems: a flights table (SQLite) and {feed}")
        seed_flights_table(root / "sources")
        if mqtt:
            use_weather_devices(pipeline, mqtt, root / "mqtt")
            sent = ingest_weather_from_devices(store, mqtt, root / "mqtt")
            console.print(
                f"{sent:,} weather messages published and ingested into dataset 'weather' "
                f"(v{store.datasets.version('weather').version}, {store.datasets.version('weather').rows:,} rows)"
            )
        else:
            seed_weather_files(root / "sources")
        console.rule("[bold]1 · ingest, prepare, train candidates, select, promote")
        first = selection_of(run_with_progress(store, pipeline), pipeline)
        print_selection(first)
        traffic = _traffic(store, pipeline)
        console.rule("[bold]2 · serve, replay July 2013 as live traffic")
        with BackgroundServer(store, ServeSettings(refresh_interval=0.5)) as server:
            live = _replay(server.url, model, traffic, store)
            console.rule("[bold]3 · monitor: drift of served traffic against the training reference")
            from loopline.run import monitor_model

            monitored = monitor_model(store, pipeline.monitor)
            print_drift(monitored.report)
            console.print(
                f"retrain decision: [bold]{'retrain' if monitored.decision.retrain else 'keep'}[/] — "
                f"{monitored.decision.reason}"
            )
            selections = [first]
            if monitored.decision.retrain:
                console.rule("[bold]4 · retrain on April–June, gate the challenger on the recent holdout")
                second = retrain_and_gate(store, pipeline, RETRAIN_END, run=progress_runner())
                print_selection(second)
                selections.append(second)
            served = _served_version(server.url, model, traffic, store)
        after = _score_on_traffic(store, model, traffic)
        notes = [
            f"live traffic: {live['rows']} July flights in {live['requests']} requests; production "
            f"v{live['version']} scored ROC AUC {live['auc']:.3f} on them once their labels arrived",
            f"after the loop, v{served} serves; on July's labelled traffic: "
            + ", ".join(f"v{v} ROC AUC {auc:.3f}" for v, auc in after.items()),
        ]
        report = write_report(
            report_path, store, pipeline, monitored, selections, notes=notes, latencies_ms=live["latencies_ms"]
        )
        _summary(store, model, monitored, selections, live, served, after, report, time.perf_counter() - started)
        console.print(f"the models are in the store at [bold]{_where(settings)}[/]; next: {_next_steps(home)}")
    finally:
        store.close()


def open_quickstart_store(settings: Settings, pipeline: Pipeline) -> Store:
    """The default store, emptied of an earlier quickstart's models and datasets.

    The quickstart starts from an empty store each time, so its figures are the same on every run. A store
    that holds anything else (another model, dataset or pipeline) is never emptied: ConfigError with the way
    out. Only the default local layout (``<home>/loopline.db`` and ``<home>/artifacts``) is emptied; a store
    elsewhere (``LOOPLINE_STORE_URL``) that holds an earlier quickstart is refused the same way.
    """
    from loopline.store import Store

    store = Store.open(settings.store_url, settings.artifacts, local_dir=settings.home, check_bundle=check_bundle)
    held = _store_contents(store)
    if not any(held.values()):
        return store
    store.close()
    ours = {"models": {pipeline.monitor.model if pipeline.monitor else ""}, "pipelines": {pipeline.name}}
    ours["datasets"] = {
        str(spec.config.get("dataset") or spec.name) for spec in pipeline.steps.values() if spec.type == "ingest"
    }
    foreign = {kind: sorted(names - ours[kind]) for kind, names in held.items() if names - ours[kind]}
    if foreign or not settings.local_default:
        what = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in foreign.items()) or "an earlier quickstart"
        raise ConfigError(
            f"the store at {_where(settings)} already holds {what}; the quickstart starts from an empty store.",
            hint="Run it in another folder, or give it a home of its own: `loopline quickstart --home "
            ".loopline-quickstart`, then `loopline models list --home .loopline-quickstart`.",
        )
    for path in (settings.home / "loopline.db", *settings.home.glob("loopline.db-*"), settings.home / "artifacts"):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    return Store.open(settings.store_url, settings.artifacts, local_dir=settings.home, check_bundle=check_bundle)


def _store_contents(store: Store) -> dict[str, set[str]]:
    runs = {run.pipeline for run in store.runs.list(limit=1000)}
    return {"models": set(store.models.names()), "datasets": set(store.datasets.names()), "pipelines": runs}


def _next_steps(home: Path | None) -> str:
    option = f" --home {home}" if home is not None else ""
    return ", ".join(f"`loopline {command}{option}`" for command in ("models list", "serve", "ui"))


def _where(settings: Settings) -> str:
    if settings.local_default:
        return str(settings.home)
    from sqlalchemy.engine import make_url

    return str(make_url(settings.store_url).render_as_string(hide_password=True))


def use_weather_devices(pipeline: Any, url: str, state_dir: Path) -> None:
    """Swap the weather step's source for the stations' MQTT topics."""
    from loopline.core.pipeline import StepSpec

    spec = pipeline.steps["weather"]
    pipeline.steps["weather"] = StepSpec(
        "weather",
        spec.type,
        spec.inputs,
        {**spec.config, "source": weather_mqtt_source(url, state_dir), "batch_seconds": 0.5},
    )


def _traffic(store: Any, pipeline: Any) -> pl.DataFrame:
    from loopline.run import Runner

    result = Runner(store).run(pipeline, TRAFFIC, targets=["labelled"])
    labelled: pl.DataFrame = result.output("labelled")
    return labelled.sample(n=BATCHES * BATCH_SIZE + SINGLES, seed=7)


def _features(store: Any, model: str) -> list[str]:
    production = store.models.production(model)
    return [f["name"] for f in production.input_schema]


def _replay(url: str, model: str, traffic: pl.DataFrame, store: Any) -> dict[str, Any]:
    features = _features(store, model)
    records = traffic.select(features).to_dicts()
    labels = traffic["delayed"].to_list()
    latencies: list[float] = []
    scores: list[float] = []
    version = None
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(BATCHES):
            batch = records[i * BATCH_SIZE : (i + 1) * BATCH_SIZE]
            body = _post(client, f"/predict/{model}", batch, latencies)
            version = body["version"]
            scores += [p["probabilities"]["True"] for p in body["predictions"]]
        for record in records[BATCHES * BATCH_SIZE :]:
            oip = {
                "inputs": [
                    {"name": k, "shape": [1], "datatype": "FP64" if not isinstance(v, str) else "BYTES", "data": [v]}
                    for k, v in record.items()
                ]
            }
            body = _post(client, f"/v2/models/{model}/infer", oip, latencies)
            scores.append(body["outputs"][1]["data"][1])
    _wait_for_log(store, model, len(records))
    from sklearn.metrics import roc_auc_score

    auc = float(roc_auc_score(labels, scores))
    from loopline.monitor import latency_figures

    figures = latency_figures(latencies)
    table_rows = [
        ("requests", BATCHES + SINGLES),
        ("rows", len(records)),
        *((f"p{p} ms", figures[f"latency_p{p}_ms"]) for p in (50, 95, 99)),
    ]
    console.print(table("served traffic: client-side round trip per request", ["figure", "value"], table_rows))
    return {
        "rows": len(records),
        "requests": BATCHES + SINGLES,
        "version": version,
        "auc": auc,
        "latencies_ms": latencies,
    }


def _post(client: httpx.Client, path: str, body: Any, latencies: list[float]) -> Any:
    sent = time.perf_counter()
    response = client.post(path, json=body)
    latencies.append((time.perf_counter() - sent) * 1000)
    if response.status_code != 200:
        raise LooplineError(f"the service answered {response.status_code} on {path}: {response.text[:300]}")
    return response.json()


def _wait_for_log(store: Any, model: str, expected: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while store.predictions.count(model) < expected and time.monotonic() < deadline:
        time.sleep(0.1)


def _served_version(url: str, model: str, traffic: pl.DataFrame, store: Any) -> int:
    """Wait for the service to pick up the production version, then ask it."""
    wanted = store.models.production(model).version
    record = traffic.select(_features(store, model)).row(0, named=True)
    deadline = time.monotonic() + 10
    with httpx.Client(base_url=url, timeout=30) as client:
        while True:
            version = int(client.post(f"/predict/{model}", json=record).json()["version"])
            if version == wanted or time.monotonic() > deadline:
                return version
            time.sleep(0.2)


def _score_on_traffic(store: Any, model: str, traffic: pl.DataFrame) -> dict[int, float]:
    from loopline.bundle import ModelBundle

    out = {}
    for version in store.models.list(model):
        if version.stage in ("production", "archived"):
            bundle = ModelBundle.from_bytes(store.artifacts.get_bytes(version.bundle_digest))
            out[version.version] = bundle.evaluate(traffic)["roc_auc"]
    return out


def _summary(
    store: Any,
    model: str,
    monitored: Any,
    selections: list[Selection],
    live: dict[str, Any],
    served: int,
    after: dict[int, float],
    report: Path,
    seconds: float,
) -> None:
    console.rule("[bold]summary")
    production = store.models.production(model)
    rows = [
        (
            f"v{v.version}",
            v.algorithm,
            v.stage,
            v.metrics.get("valid", {}).get("roc_auc"),
            v.metrics.get("test", {}).get("roc_auc"),
            after.get(v.version),
        )
        for v in store.models.list(model)
    ]
    console.print(
        table(
            "model repository",
            ["version", "algorithm", "stage", "valid roc_auc", "test roc_auc", "July traffic roc_auc"],
            rows,
        )
    )
    drifted = ", ".join(monitored.report.drifted) or "none"
    last = selections[-1]
    console.print(
        f"production model: [bold]{model} v{production.version}[/] ({production.algorithm}); "
        f"the service answers with v{served}"
    )
    console.print(
        f"drift: {len(monitored.report.drifted)}/{len(monitored.report.features)} features drifted ({drifted})"
    )
    console.print(
        f"retrain: {'yes' if monitored.decision.retrain else 'no'}; v{last.best} {_verdict(last)} — {last.reason}"
    )
    console.print(f"HTML report: [bold]{report}[/]   total time: {seconds:.1f} s")


def _verdict(selection: Selection) -> str:
    """``promoted``, ``promoted as vN`` (its refit on the whole window) or ``kept out``."""
    if not selection.promote:
        return "kept out"
    return "promoted" if selection.promoted == selection.best else f"promoted as v{selection.promoted} (refitted)"
