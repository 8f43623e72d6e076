"""``loopline sources PIPELINE`` (supervise its continuous sources) and ``loopline sources status PIPELINE``."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from loopline.cli._context import open_store
from loopline.cli._render import console, err_console, print_json, table
from loopline.core.errors import ConfigError

if TYPE_CHECKING:
    from loopline.run import SourceStatus

_HEADERS = [
    "source",
    "dataset",
    "type",
    "state",
    "restarts",
    "rows",
    "rows/s",
    "lag s",
    "checkpoint age s",
    "backlog",
    "error",
]


def sources_command(first: str, second: str | None, *, home: Path | None, as_json: bool) -> None:
    """``sources PIPELINE`` supervises; ``sources status PIPELINE`` reports."""
    if first == "status" and second is not None:
        status_command(Path(second), home=home, as_json=as_json)
    elif second is not None:
        raise ConfigError(
            f"unexpected argument {second!r}.",
            hint="Use `loopline sources PIPELINE` or `loopline sources status PIPELINE`.",
        )
    else:
        supervise_command(Path(first), home=home)


def supervise_command(pipeline_path: Path, *, home: Path | None) -> None:
    """Run every continuous source of the pipeline until SIGTERM / Ctrl-C, then stop them cleanly."""
    import typer

    from loopline.core.yamlfile import load_pipeline
    from loopline.run import Supervisor

    pipeline = load_pipeline(pipeline_path)
    supervisor = Supervisor(pipeline, home=home).start()
    _log_to_stderr()
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
    names = ", ".join(s.source for s in supervisor.status())
    err_console.print(f"supervising {names}; Ctrl-C or SIGTERM stops them", markup=False, highlight=False)
    try:
        stop.wait()
    finally:
        clean = supervisor.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    err_console.print("stopped: every source committed its last batch" if clean else "stopped (some were killed)")
    if not clean:
        raise typer.Exit(1)


def status_command(pipeline_path: Path, *, home: Path | None, as_json: bool) -> None:
    """Each continuous source's state, restarts, rows, rate, lag and last error (from any process)."""
    from loopline.core.settings import Settings
    from loopline.core.yamlfile import load_pipeline
    from loopline.run import sources_status

    pipeline = load_pipeline(pipeline_path)
    with open_store(home) as store:
        statuses = sources_status(store, pipeline, Settings.from_env(home).home)
    if as_json:
        print_json([s.to_json() for s in statuses])
        return
    console.print(table(f"{pipeline.name}: continuous sources", _HEADERS, [_row(s) for s in statuses]))


def _row(status: SourceStatus) -> list[object]:
    state = status.state
    if status.retry_in_s is not None:
        state += f" (in {status.retry_in_s:.0f} s)"
    return [
        escape(status.source),
        escape(status.dataset),
        status.type,
        state,
        status.restarts,
        status.rows,
        round(status.rate, 1),
        None if status.lag_s is None else round(status.lag_s, 1),
        None if status.checkpoint_age_s is None else round(status.checkpoint_age_s, 1),
        status.backlog,
        escape(status.last_error or "-"),
    ]


def _log_to_stderr() -> None:
    """The supervisor's events (started, died, restarting) on stderr, once per process."""
    logger = logging.getLogger("loopline.sources")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
