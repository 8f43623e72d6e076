"""``loopline runs list|show``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from loopline.cli._context import clear_errors, open_store
from loopline.cli._render import console, print_json, table

app = typer.Typer(help="Pipeline runs and their steps.", no_args_is_help=True)


@app.command("list")
def list_runs(
    limit: Annotated[int, typer.Option(help="How many runs, newest first.")] = 20,
    pipeline: Annotated[str | None, typer.Option(help="Only runs of this pipeline.")] = None,
    home: Annotated[Path | None, typer.Option("--home")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List recent runs."""
    with clear_errors(), open_store(home) as store:
        runs = store.runs.list(limit=limit, pipeline=pipeline)
        if as_json:
            print_json([{k: v for k, v in asdict(r).items() if k not in ("spec", "steps")} for r in runs])
            return
        console.print(
            table(
                "runs",
                ["run id", "pipeline", "status", "started", "error"],
                [
                    (
                        r.run_id,
                        r.pipeline,
                        r.status,
                        r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                        escape(r.error or (f"owner gone: {r.owner()}" if r.status == "stale" else "")),
                    )
                    for r in runs
                ],
                whole=("run id",),
            )
        )


@app.command("show")
def show_run(
    run_id: Annotated[str, typer.Argument(help="The run id (from `loopline runs list`).")],
    home: Annotated[Path | None, typer.Option("--home")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show a run's steps: status, timings, config and error."""
    with clear_errors(), open_store(home) as store:
        run = store.runs.get(run_id)
        if as_json:
            print_json(asdict(run))
            return
        console.print(f"run {run.run_id} of {escape(run.pipeline)}: {run.status}; params {escape(str(run.params))}")
        if run.status in ("running", "stale"):
            console.print(f"owner: {escape(run.owner())}")
        console.print(
            table(
                "steps",
                ["step", "type", "status", "seconds", "attempt", "error"],
                [(s.step, s.type, s.status, s.duration_s, s.attempt, escape(s.error or "")) for s in run.steps],
            )
        )
