"""The ``loopline`` command: run, tune, studies, runs, models, datasets, store, feedback, serve, monitor, schema,
init, quickstart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from loopline.cli import _alerts, _datasets, _feedback, _loop_service, _models, _predict, _runs, _store, _studies
from loopline.cli._context import clear_errors, open_store
from loopline.cli._extras import require_extra
from loopline.cli._render import console, print_json
from loopline.core.cpu import usable_cores
from loopline.core.errors import ConfigError

app = typer.Typer(
    name="loopline",
    help="The whole machine-learning loop: ingest, prep, train, serve, monitor, retrain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(_runs.app, name="runs")
app.add_typer(_models.app, name="models")
app.add_typer(_datasets.app, name="datasets")
app.add_typer(_store.app, name="store")
app.add_typer(_feedback.app, name="feedback")
app.add_typer(_studies.app, name="studies")
app.command("tune")(_studies.tune)
app.command("predict")(_predict.predict)
app.command("loop")(_loop_service.loop)
app.command("alerts")(_alerts.alerts)

HomeOption = Annotated[
    Path | None, typer.Option("--home", help="State folder (default: $LOOPLINE_HOME or ./.loopline).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def parse_params(values: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs; values are read as YAML scalars (numbers, booleans, strings)."""
    import yaml

    params: dict[str, Any] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--param {item!r} is not NAME=VALUE.", hint="Write it like --param start=2013-04-01.")
        params[name] = yaml.safe_load(value) if value else ""
        if not isinstance(params[name], str | int | float | bool) and params[name] is not None:
            params[name] = value
    return params


@app.command()
def run(
    pipeline: Annotated[Path | None, typer.Argument(help="Pipeline YAML file.")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Override a param: NAME=VALUE.")] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            help="Continue a failed or stale run by its id, with the pipeline file as it is now (the one named, "
            "else the run's own file): succeeded steps are kept, the others run their current config.",
        ),
    ] = None,
    to: Annotated[list[str] | None, typer.Option("--to", help="Run only what this step needs.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Recompute every step.")] = False,
    executor: Annotated[
        str,
        typer.Option(
            "--executor",
            help="Where steps run: local (threads), sequential, dask (a local Dask cluster of worker processes) "
            "or dask://HOST:PORT (a running Dask scheduler; needs loopline[dask]).",
        ),
    ] = "local",
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a pipeline file (or resume a failed run)."""
    from loopline.cli._leaderboard import board_json, run_leaderboards
    from loopline.cli._progress import resume_pipeline, run_with_progress, select_steps
    from loopline.core.yamlfile import load_pipeline
    from loopline.run import make_executor

    with clear_errors(), open_store(home) as store:
        params = parse_params(param or [])
        if resume:
            loaded, params = resume_pipeline(store.runs.get(resume), pipeline, params, quiet=as_json)
        elif pipeline is None:
            raise ConfigError(
                "name a pipeline file, or --resume RUN_ID.", hint="For example: loopline run pipeline.yaml"
            )
        else:
            loaded = load_pipeline(pipeline, params)
        with make_executor(executor) as steps_executor:  # a local Dask cluster starts here, stops after the run
            result = run_with_progress(
                store,
                loaded,
                params,
                resume=resume,
                targets=to,
                cache=not no_cache,
                quiet=as_json,
                executor=steps_executor,
            )
        if as_json:
            print_json(
                {
                    "run_id": result.run_id,
                    "status": result.status,
                    "error": result.error,
                    "changed": list(result.changed),
                    "steps": {n: {"status": o.status, "duration_s": o.duration_s} for n, o in result.steps.items()},
                    "leaderboards": {
                        step: board_json(selection)
                        for step, selection in run_leaderboards(result, select_steps(loaded)).items()
                    },
                }
            )
        if result.status != "succeeded":
            raise typer.Exit(1)


@app.command()
def ingest(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML file.")],
    step: Annotated[str, typer.Argument(help="The ingest step whose source to read.")],
    follow: Annotated[bool, typer.Option("--follow", help="Keep reading new data until stopped.")] = False,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest one source into its versioned dataset, from its last checkpoint (once, or --follow)."""
    from loopline.cli._datasets import ingest_command

    with clear_errors():
        ingest_command(pipeline, step, follow=follow, home=home, as_json=as_json)


@app.command(
    "sources",
    help="Supervise the pipeline's continuous sources (brokers, ingest steps with follow: true), each in its own "
    "process restarted with backoff, until Ctrl-C / SIGTERM; or `loopline sources status PIPELINE`.",
)
def sources(
    pipeline: Annotated[str, typer.Argument(metavar="PIPELINE | status", help="Pipeline YAML file, or 'status'.")],
    status_of: Annotated[
        str | None, typer.Argument(metavar="[PIPELINE]", help="After 'status': the pipeline file.")
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    from loopline.cli._sources import sources_command

    with clear_errors():
        sources_command(pipeline, status_of, home=home, as_json=as_json)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    home: HomeOption = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(help="Accept this Host header (repeat; '*' for any). Default: loopback names and --host."),
    ] = None,
    allow_origin: Annotated[
        list[str] | None, typer.Option(help="Allow CORS from this browser origin (repeat). Default: CORS off.")
    ] = None,
    protocol: Annotated[
        list[str] | None,
        typer.Option(
            help="Mount only this wire protocol (repeat): json, oip, mlflow or a plugin's name. Default: every "
            "registered one.",
        ),
    ] = None,
    max_concurrency: Annotated[
        int, typer.Option(help="Prediction requests in flight before the next gets a 503.", min=1)
    ] = 64,
    max_batch_rows: Annotated[int, typer.Option(help="Records merged into one model call at most.", min=1)] = 64,
    max_batch_delay_ms: Annotated[
        float, typer.Option(help="How long a request may wait for others to merge with (0: never waits).", min=0)
    ] = 0.0,
    header_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a client gets to send the request line and headers (then 408, closed).",
            min=0.001,
            envvar="LOOPLINE_SERVE_HEADER_TIMEOUT",
        ),
    ] = 10.0,
    body_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a client gets to send the body after the headers (then 408, closed).",
            min=0.001,
            envvar="LOOPLINE_SERVE_BODY_TIMEOUT",
        ),
    ] = 30.0,
    keepalive_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a connection may idle between requests.", min=0.001, envvar="LOOPLINE_SERVE_KEEPALIVE_TIMEOUT"
        ),
    ] = 5.0,
    max_connections: Annotated[
        int,
        typer.Option(
            help="Open connections (per worker); past it a new one gets a 503 and is closed.",
            min=1,
            envvar="LOOPLINE_SERVE_MAX_CONNECTIONS",
        ),
    ] = 1000,
    max_header_bytes: Annotated[
        int,
        typer.Option(
            help="Bytes of request line and headers (then 431).", min=1024, envvar="LOOPLINE_SERVE_MAX_HEADER_BYTES"
        ),
    ] = 65_536,
    max_string_length: Annotated[
        int,
        typer.Option(
            help="Characters a text value may hold where the model's input schema names no max_length (longer: 422).",
            min=1,
        ),
    ] = 1024,
    missing_as_null: Annotated[
        bool,
        typer.Option(help="A field a record lacks is null when the model imputes it (--no-missing-as-null: a 422)."),
    ] = True,
    shadow: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=VERSION or NAME@ALIAS: that version (or the one the store-side alias points at, followed as "
            "it moves) scores every request of NAME in shadow, after the production version answered; its answers "
            "are logged (prediction id + ':shadow'), never returned (repeat per model).",
            envvar="LOOPLINE_SERVE_SHADOW",
        ),
    ] = None,
    canary: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=VERSION:SHARE or NAME@ALIAS:SHARE: that version (or the alias's, followed as it moves) "
            "answers SHARE (above 0, at most 0.5) of NAME's requests, chosen by the X-Request-Key header (else the "
            "body), so a retried request lands on the same side (repeat).",
            envvar="LOOPLINE_SERVE_CANARY",
        ),
    ] = None,
    shadow_queue: Annotated[
        int,
        typer.Option(
            help="Requests waiting for shadow scoring at most; past it the shadow's work is dropped and counted.",
            min=1,
            envvar="LOOPLINE_SERVE_SHADOW_QUEUE",
        ),
    ] = 256,
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes (uvicorn's supervisor). Each has its own models, batching, log writer and "
            "metrics: /metrics reports only the worker that answered (header X-Loopline-Worker); Prometheus "
            "multiprocess mode is not supported.",
            min=1,
        ),
    ] = 1,
    ui: Annotated[
        bool, typer.Option("--ui", help="Mount the dashboard at /ui (and its data at /api) in the service too.")
    ] = False,
) -> None:
    """Serve every production model: /predict, Open Inference Protocol v2, /metrics.

    A model whose production version does not load is not ready (GET /health says why; its requests get a 503);
    the others are served. --shadow and --canary designate a challenger version per model, by number or by a
    store-side alias (churn@shadow); a move of production or of that alias is picked up without a restart.

    Admin endpoints need LOOPLINE_TOKEN (named LOOPLINE_TOKEN_NAME in the audit trail); set LOOPLINE_PREDICT_TOKEN
    to require a token for predictions too.
    """
    from loopline.serve import ServeSettings
    from loopline.serve import serve as run_server
    from loopline.serve._challenger import check_designations
    from loopline.serve._settings import designations, protocol_names
    from loopline.serve.protocols import PROTOCOLS

    with clear_errors(), open_store(home) as store:
        settings = ServeSettings.from_env(
            home,
            allowed_hosts=allow_host or None,
            allowed_origins=allow_origin or (),
            protocols=protocol or None,
            max_concurrency=max_concurrency,
            max_batch_rows=max_batch_rows,
            max_batch_delay=max_batch_delay_ms / 1000,
            header_timeout=header_timeout,
            body_timeout=body_timeout,
            keepalive_timeout=keepalive_timeout,
            max_connections=max_connections,
            max_header_bytes=max_header_bytes,
            max_string_length=max_string_length,
            missing_as_null=missing_as_null,
            shadow=shadow or (),
            canary=canary or (),
            shadow_queue=shadow_queue,
            mounts=[DASHBOARD_MOUNT] if ui else (),
        )
        protocol_names(settings.protocols, PROTOCOLS.names())  # an unknown --protocol fails before anything starts
        check_designations(store, designations(settings))  # so does a challenger that cannot be served
        production = [name for name in store.models.names() if store.models.production(name) is not None]
        if workers > (cores := usable_cores()):  # each worker predicts on one thread: one worker per core at most
            console.print(f"{workers} workers asked for, {cores} core(s) usable: starting {cores}")
            workers = cores
        processes = f" ({workers} workers)" if workers > 1 else ""
        loading = f"loading {', '.join(production)}" if production else "no production model yet"
        console.print(f"{loading}; listening on http://{host}:{port}{processes} (GET /health lists what is served)")
        run_server(store, host=host, port=port, settings=settings, workers=workers)


DASHBOARD_MOUNT = "loopline.ui:mount_in_service"


@app.command("ui")
def ui_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
    home: HomeOption = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(help="Accept this Host header (repeat; '*' for any). Default: loopback names and --host."),
    ] = None,
) -> None:
    """The dashboard: models in production, runs, datasets, the model repository, monitoring, the loop's
    decisions and tuning studies, in a browser (every page's data is JSON under /api).

    Reading needs no token. Actions (promote, roll back, request a retrain, acknowledge an alert) need the admin
    token LOOPLINE_TOKEN: sign in at /ui/login, or send it as `Authorization: Bearer TOKEN` to /api/actions/...
    """
    import os
    import threading

    import uvicorn

    from loopline.core.settings import TOKEN_ENV
    from loopline.serve import allowed_hosts
    from loopline.serve._settings import TOKEN_NAME_ENV
    from loopline.ui import create_ui_app
    from loopline.ui.pages.tuning import warm_up

    with clear_errors(), open_store(home) as store:
        hosts = allowed_hosts(allow_host or None, host)
        token = os.environ.get(TOKEN_ENV) or None
        app_ = create_ui_app(store, token=token, token_name=os.environ.get(TOKEN_NAME_ENV) or "admin", hosts=hosts)
        actions = "actions open to the admin token" if token else "read-only (set LOOPLINE_TOKEN for actions)"
        threading.Thread(target=warm_up, args=(store,), name="loopline-ui-warm-up", daemon=True).start()
        console.print(f"dashboard on http://{host}:{port}/ui/ ({actions})")
        uvicorn.run(app_, host=host, port=port, log_level="warning")


@app.command()
def monitor(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML file with a 'monitor:' section.")],
    retrain: Annotated[bool, typer.Option(help="Retrain and gate when drift is found.")] = False,
    end: Annotated[str | None, typer.Option(help="End of the retraining window (ISO date; default now).")] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            help="Write an HTML report here (with --window: drift, accuracy, service and decisions over time)."
        ),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(
            help="Close and store every complete window: 1h, 6h, 1d, 1w, 1mo (UTC calendar) or a row count (10000)."
        ),
    ] = None,
    since: Annotated[str | None, typer.Option(help="Only traffic from this ISO time on (UTC when naive).")] = None,
    until: Annotated[str | None, typer.Option(help="With --window: only windows before this ISO time.")] = None,
    fail_on_alert: Annotated[
        bool, typer.Option("--fail-on-alert", help="With --window: exit 3 when an alert fired (for cron and CI).")
    ] = False,
    follow: Annotated[
        bool, typer.Option("--follow", help="With --window: keep closing windows as they complete, until stopped.")
    ] = False,
    interval: Annotated[float, typer.Option(help="With --follow: seconds between checks.", min=0.01)] = 60.0,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check the production model's logged traffic for drift; optionally retrain and gate.

    With --window: close every complete window since the last check, store its health, drift and alerts.
    """
    from loopline.cli._loop import WindowOptions, monitor_command

    options = WindowOptions(window, since, until, fail_on_alert, follow, interval)
    with clear_errors():
        if report is not None:
            require_extra("report")  # before the work, not after it
        with open_store(home) as store:
            code = monitor_command(
                store, pipeline, retrain=retrain, end=end, report=report, as_json=as_json, windows=options
            )
    if code:
        raise typer.Exit(code)


@app.command()
def schema() -> None:
    """Print the JSON Schema of pipeline files (for editor completion)."""
    from loopline.core.yamlfile import pipeline_json_schema

    with clear_errors():
        print(json.dumps(pipeline_json_schema(), indent=2))


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the new pipeline file.")] = Path("pipeline.yaml"),
    template: Annotated[
        str, typer.Option(help="A template from --list: csv-classification, postgres-regression, ...")
    ] = "pipeline",
    list_templates: Annotated[bool, typer.Option("--list", help="List the templates and exit.")] = False,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Scaffold a pipeline YAML file from a template (each complete: ingest, train, select, monitor, retrain)."""
    from loopline.cli._templates import template_text, templates

    with clear_errors():
        if list_templates:
            for name, summary in templates().items():
                console.print(f"[bold]{name:<22}[/] {summary}", highlight=False)
            return
        text = template_text(template)
        if path.exists() and not force:
            raise ConfigError(
                f"{str(path)!r} already exists.", hint="Pass --force to overwrite it, or pick another path."
            )
        path.write_text(text, encoding="utf-8")
        console.print(f"wrote {path} from template {template!r}; run it with: loopline run {path}")


@app.command()
def quickstart(
    home: HomeOption = None,
    report: Annotated[Path, typer.Option(help="Where to write the HTML report.")] = Path("loopline-report.html"),
    mqtt: Annotated[
        str | None,
        typer.Option(help="Weather from stations publishing on this MQTT broker, e.g. mqtt://127.0.0.1:1883."),
    ] = None,
) -> None:
    """Run the whole loop on NYC flights: ingest, train, serve, replay traffic, detect drift, retrain, gate."""
    with clear_errors():
        require_extra("quickstart")
        from loopline.cli._quickstart import run_quickstart

        run_quickstart(home, report, mqtt)


def main() -> None:
    """Entry point of the ``loopline`` console script."""
    app()
