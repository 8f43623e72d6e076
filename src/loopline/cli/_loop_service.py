"""``loopline loop PIPELINE``: the loop service (long-lived, or one tick with ``--once``), and
``loopline loop history PIPELINE``: its events."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from loopline.cli._context import clear_errors, open_store
from loopline.cli._render import console, print_json, table
from loopline.core.errors import ConfigError

if TYPE_CHECKING:
    from rich.table import Table

    from loopline.run._service import TickResult
    from loopline.store import Store
    from loopline.store.loop import LoopEvent

HISTORY = "history"


def loop(
    pipeline: Annotated[
        str, typer.Argument(help="Pipeline YAML file with a 'monitor:' section, or 'history' to list the events.")
    ],
    history_of: Annotated[
        str | None, typer.Argument(help="With 'history': the pipeline (its YAML file or its name).", show_default=False)
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="One tick, then exit (for cron).")] = False,
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
    limit: Annotated[int, typer.Option("--limit", min=1, help="With 'history': the newest N events.")] = 50,
    home: Annotated[
        Path | None, typer.Option("--home", help="State folder (default: $LOOPLINE_HOME or ./.loopline).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Watch a pipeline's production model and retrain when a trigger fires (one retrain at a time across loops).

    Each tick checks drift (weighted by feature importance), metrics, the schedule and new data; see
    `loopline loop history PIPELINE` for every decision. SIGTERM or Ctrl-C ends the loop after the current
    tick (a second one abandons it); the retrain lease is released either way.
    """
    with clear_errors():
        if pipeline == HISTORY:
            if history_of is None:
                raise ConfigError("`loopline loop history` needs the pipeline.", hint="loopline loop history PIPELINE")
            with open_store(home) as store:
                show_history(store, history_of, limit=limit, as_json=as_json)
            return
        if history_of is not None:
            raise ConfigError(
                f"unexpected argument {history_of!r}.",
                hint="Run `loopline loop PIPELINE` or `loopline loop history PIPELINE`.",
            )
        if interval is not None and schedule is not None:
            raise ConfigError("give --interval or --schedule, not both.", key="--schedule", hint="Drop one of them.")
        _check_clock(interval, schedule)
        with open_store(home) as store:
            _serve(store, Path(pipeline), once=once, interval=interval, schedule=schedule, end=end, force=force,
                   as_json=as_json)  # fmt: skip


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
) -> None:
    from loopline.cli._loop import progress_runner
    from loopline.core.yamlfile import load_pipeline
    from loopline.run._service import LoopService

    pipeline = load_pipeline(path)
    window_end = _parse_end(end)
    service = LoopService(store, pipeline, end=window_end, force=force, run=progress_runner(quiet=as_json))
    service.config  # noqa: B018 - a pipeline without a monitor section fails here, before any tick
    stop = threading.Event()
    if once:
        with _stopping_on_signals(stop):  # SIGTERM from cron or systemd: the tick finishes first
            result = service.tick()
        _show_tick(result, as_json=as_json)
        if result.outcome == "error":
            raise typer.Exit(1)
        return
    with _stopping_on_signals(stop):
        if not as_json:
            console.print(f"loop of {pipeline.name}: ticking; SIGTERM or Ctrl-C stops it after the current tick")
        ticks = service.serve(stop, interval=interval, schedule=schedule)
    if not as_json:
        console.print(f"loop of {pipeline.name}: stopped after {ticks} tick(s)")


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


def _show_tick(result: TickResult, *, as_json: bool) -> None:
    if as_json:
        print_json({"outcome": result.outcome, "events": [event.to_dict() for event in result.events]})
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


def _pipeline_name(pipeline: str) -> str:
    path = Path(pipeline)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        from loopline.core.yamlfile import load_pipeline

        return load_pipeline(path).name
    return pipeline


def _events_table(title: str, events: list[LoopEvent]) -> Table:
    rows = [(e.id, e.at.strftime("%Y-%m-%d %H:%M:%S"), e.kind, e.model, escape(e.reason)) for e in events]
    return table(title, ["id", "at (UTC)", "kind", "model", "reason"], rows, whole=("id",))
