"""``loopline loop PIPELINE``: the loop service (long-lived, or one tick with ``--once``), and
``loopline loop history PIPELINE``: its events."""

from __future__ import annotations

import dataclasses
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from loopline.cli._context import clear_errors, open_store
from loopline.cli._extras import require_extra
from loopline.cli._render import console, print_json, table
from loopline.cli._report_data import REPORT_EVENTS
from loopline.core.errors import ConfigError

if TYPE_CHECKING:
    from rich.table import Table

    from loopline.core.pipeline import Pipeline
    from loopline.run import SourceStatus, Supervisor
    from loopline.run._catch_up import CatchUp
    from loopline.run._service import TickResult
    from loopline.store import Store
    from loopline.store.loop import LoopEvent

HISTORY = "history"
HISTORY_EVENTS = 50


def loop(
    pipeline: Annotated[
        str, typer.Argument(help="Pipeline YAML file with a 'monitor:' section, or 'history' to list the events.")
    ],
    history_of: Annotated[
        str | None, typer.Argument(help="With 'history': the pipeline (its YAML file or its name).", show_default=False)
    ] = None,
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="One tick, then exit (for cron): first one bounded catch-up pass of each continuous source "
            "(from its checkpoint to its current end; --no-sources: none).",
        ),
    ] = False,
    catch_up: Annotated[
        str,
        typer.Option("--catch-up", help='With --once: the time budget of the sources\' catch-up pass, e.g. "5m".'),
    ] = "5m",
    interval: Annotated[
        str | None, typer.Option("--interval", help='Time between ticks, e.g. "15m" (default: monitor.loop).')
    ] = None,
    schedule: Annotated[
        str | None, typer.Option("--schedule", help='Cron schedule of the ticks, e.g. "0 * * * *".')
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="End of the retraining window (ISO date; default: the tick's time).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Retrain at every tick, past triggers and cooldown.")] = False,
    no_sources: Annotated[
        bool,
        typer.Option(
            "--no-sources",
            help="Do not run the pipeline's continuous sources (by default the long-lived loop supervises them "
            "and --once runs one catch-up pass of each).",
        ),
    ] = False,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="With 'history': the newest N events (default 50; 1000 with --report)."),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="With 'history': write the decision timeline and the windows over time as HTML here."),
    ] = None,
    home: Annotated[
        Path | None, typer.Option("--home", help="State folder (default: $LOOPLINE_HOME or ./.loopline).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Watch a pipeline's production model and retrain when a trigger fires (one retrain at a time across loops).

    Each tick syncs the labels (monitor.labels), closes the due windows (monitor.loop.window: realised and
    estimated metrics), checks the probation of the version it promoted last (rolling it back when the previous
    one does better), then checks drift (weighted by feature importance; while labels give a realised metric,
    drift only warns and the metric decides: monitor.loop.drift_when_labelled), metrics, the schedule and new
    data; see `loopline loop history PIPELINE` for every decision. The long-lived loop supervises the pipeline's
    continuous sources while it runs; --once reads each of them from its checkpoint to its current end first
    (within --catch-up; resumed at the next tick, nothing stored twice), unless another process supervises them
    (--no-sources: neither). SIGTERM or Ctrl-C ends the loop after the current tick (a second one abandons it);
    the retrain lease is released either way.
    """
    with clear_errors():
        if pipeline == HISTORY:
            if history_of is None:
                raise ConfigError("`loopline loop history` needs the pipeline.", hint="loopline loop history PIPELINE")
            if report is not None:
                require_extra("report")
            with open_store(home) as store:
                if report is not None:
                    write_history_report(store, history_of, report, limit=limit or REPORT_EVENTS)
                    if not as_json:
                        console.print(f"report: {report}")
                    return
                show_history(store, history_of, limit=limit or HISTORY_EVENTS, as_json=as_json)
            return
        if report is not None:
            raise ConfigError("--report goes with 'history'.", hint="loopline loop history PIPELINE --report FILE")
        if history_of is not None:
            raise ConfigError(
                f"unexpected argument {history_of!r}.",
                hint="Run `loopline loop PIPELINE` or `loopline loop history PIPELINE`.",
            )
        if interval is not None and schedule is not None:
            raise ConfigError("give --interval or --schedule, not both.", key="--schedule", hint="Drop one of them.")
        _check_clock(interval, schedule)
        budget = _catch_up_budget(catch_up)
        with open_store(home) as store:
            _serve(store, Path(pipeline), once=once, interval=interval, schedule=schedule, end=end, force=force,
                   as_json=as_json, sources=not no_sources, home=home, catch_up=budget)  # fmt: skip


def _serve(
    store: Store,
    path: Path,
    *,
    once: bool,
    interval: str | None,
    schedule: str | None,
    end: str | None,
    force: bool,
    as_json: bool,
    sources: bool = True,
    home: Path | None = None,
    catch_up: timedelta = timedelta(minutes=5),
) -> None:
    from loopline.cli._loop import progress_runner
    from loopline.core.yamlfile import load_pipeline
    from loopline.run._loop_windows import window_spec
    from loopline.run._service import LoopService

    pipeline = load_pipeline(path)
    window_end = _parse_end(end)
    service = LoopService(store, pipeline, end=window_end, force=force, run=progress_runner(quiet=as_json))
    window_spec(service.config)  # a pipeline without a monitor section, or a bad window, fails before any tick
    service.sources = _SourcesOf(store, pipeline, home)  # their status, whoever runs them (replaced below)
    stop = threading.Event()
    if once:
        with _stopping_on_signals(stop):  # SIGTERM from cron or systemd: the tick finishes first
            caught = _catch_up(store, pipeline, home, catch_up, stop, enabled=sources, quiet=as_json)
            result = service.tick(catch_up=None if caught is None else [dataclasses.asdict(c) for c in caught])
        _show_tick(result, as_json=as_json, sources=caught)
        if result.outcome == "error":
            raise typer.Exit(1)
        return
    with _stopping_on_signals(stop), _supervised(pipeline, home, enabled=sources, quiet=as_json) as supervisor:
        service.sources = supervisor or service.sources
        if not as_json:
            console.print(f"loop of {pipeline.name}: ticking; SIGTERM or Ctrl-C stops it after the current tick")
        ticks = service.serve(stop, interval=interval, schedule=schedule)
    if not as_json:
        console.print(f"loop of {pipeline.name}: stopped after {ticks} tick(s)")


class _SourcesOf:
    """The status of ``pipeline``'s continuous sources as any process sees it (``loopline sources status``): what
    a tick records when this loop does not run them itself (``--once``, ``--no-sources``)."""

    def __init__(self, store: Store, pipeline: Pipeline, home: Path | None) -> None:
        self.store, self.pipeline, self.home = store, pipeline, home

    def status(self) -> list[SourceStatus] | None:
        from loopline.core.settings import Settings
        from loopline.run import sources_status

        found = sources_status(self.store, self.pipeline, Settings.from_env(self.home).home)
        return found or None


@contextmanager
def _supervised(pipeline: Pipeline, home: Path | None, *, enabled: bool, quiet: bool) -> Iterator[Supervisor | None]:
    """The supervisor of ``pipeline``'s continuous sources while the loop runs (None: none, or ``--no-sources``);
    stopped on the way out, each source committing its batch first."""
    from loopline.run import Supervisor, continuous_sources

    if not enabled or not continuous_sources(pipeline):
        yield None
        return
    supervisor = Supervisor(pipeline, home=home).start()
    if not quiet:
        names = ", ".join(s.source for s in supervisor.status())
        console.print(f"loop of {pipeline.name}: supervising its continuous sources ({names})")
    try:
        yield supervisor
    finally:
        supervisor.stop()


@contextmanager
def _stopping_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (the tick in progress finishes); a second one abandons the tick."""

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _check_clock(interval: str | None, schedule: str | None) -> None:
    from loopline.core.config import LoopConfig

    try:
        LoopConfig(interval=interval, schedule=schedule)
    except ValueError as error:  # pydantic's ValidationError
        option = "--interval" if interval is not None else "--schedule"
        raise ConfigError(
            f"invalid {option}: {str(error).splitlines()[-2].strip()}",
            key=option,
            hint='Write --interval like "15m" or "6h", --schedule as five cron fields like "0 * * * *".',
        ) from None


def _parse_end(end: str | None) -> datetime | None:
    if end is None:
        return None
    try:
        moment = datetime.fromisoformat(end)
    except ValueError:
        raise ConfigError(f"--end {end!r} is not an ISO date.", key="--end", hint="Write it like 2013-07-01.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _catch_up(
    store: Store,
    pipeline: Pipeline,
    home: Path | None,
    budget: timedelta,
    stop: threading.Event,
    *,
    enabled: bool,
    quiet: bool,
) -> list[CatchUp] | None:
    """``--once``: one catch-up pass of the continuous sources before the tick (None: ``--no-sources``)."""
    from loopline.core.settings import Settings
    from loopline.run._catch_up import catch_up_sources
    from loopline.run._supervisor import continuous_sources

    if not enabled:
        if not quiet and continuous_sources(pipeline):
            console.print(f"loop of {pipeline.name}: --no-sources: its continuous sources are not read this tick")
        return None
    if not quiet and continuous_sources(pipeline):
        console.print(f"loop of {pipeline.name}: one catch-up pass of its continuous sources (at most {budget})")
    found = catch_up_sources(store, pipeline, Settings.from_env(home).home, budget=budget, stop=stop)
    if not quiet:
        for item in found:
            console.print(f"  {escape(item.describe())}")
    return found


def _catch_up_budget(text: str) -> timedelta:
    from loopline.core.config import parse_duration

    try:
        return parse_duration(text)
    except ValueError as error:
        raise ConfigError(
            f"invalid --catch-up: {error}", key="--catch-up", hint='Write it like "5m" or "30s".'
        ) from None


def _show_tick(result: TickResult, *, as_json: bool, sources: list[CatchUp] | None = None) -> None:
    if as_json:
        caught = None if sources is None else [dataclasses.asdict(item) for item in sources]
        print_json({"outcome": result.outcome, "events": [e.to_dict() for e in result.events], "sources": caught})
        return
    console.print(_events_table("this tick", list(result.events)))
    console.print(f"outcome: [bold]{result.outcome}[/]")


def show_history(store: Store, pipeline: str, *, limit: int, as_json: bool) -> None:
    """The newest ``limit`` loop events of ``pipeline`` (a YAML file's pipeline, or a name), newest first."""
    from loopline.store.loop import LoopStore

    name = _pipeline_name(pipeline)
    events = LoopStore(store.engine).events(name, limit=limit)
    if as_json:
        print_json([event.to_dict() for event in events])
        return
    if not events:
        console.print(f"no loop events for {name!r} yet (run `loopline loop PIPELINE --once`).")
        return
    console.print(_events_table(f"loop events of {name} (newest first)", events))


def write_history_report(store: Store, pipeline: str, path: Path, *, limit: int) -> Path:
    """The decision timeline of ``pipeline`` (its newest ``limit`` loop events and its model's audit trail), and
    drift, accuracy and service over its model's windows (the spec closed last) when it has any."""
    from loopline.cli._report_data import timeline, windows_view
    from loopline.report import write_history_html

    name, model = _pipeline_name(pipeline), _pipeline_model(store, pipeline)
    entries, truncated = timeline(store, name, model, limit=limit)
    windows = windows_view(store, model) if model is not None else None
    return write_history_html(path, f"loopline — decisions of {name}", entries, windows, truncated=truncated)


def _pipeline_model(store: Store, pipeline: str) -> str | None:
    """The monitored model: the YAML's ``monitor.model``, else the model of the newest loop event, else None."""
    path = Path(pipeline)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        from loopline.core.yamlfile import load_pipeline

        loaded = load_pipeline(path)
        return loaded.monitor.model if loaded.monitor else None
    from loopline.store.loop import LoopStore

    return next((e.model for e in LoopStore(store.engine).events(pipeline, limit=20) if e.model), None)


def _pipeline_name(pipeline: str) -> str:
    path = Path(pipeline)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        from loopline.core.yamlfile import load_pipeline

        return load_pipeline(path).name
    return pipeline


def _events_table(title: str, events: list[LoopEvent]) -> Table:
    rows = [(e.id, e.at.strftime("%Y-%m-%d %H:%M:%S"), e.kind, e.model, escape(e.reason)) for e in events]
    return table(title, ["id", "at (UTC)", "kind", "model", "reason"], rows, whole=("id",))
