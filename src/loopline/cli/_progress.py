"""Run a pipeline with a live progress display of its steps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from loopline.cli._leaderboard import finding_lines, leaderboard_table, run_leaderboards
from loopline.cli._render import console, table

if TYPE_CHECKING:
    from loopline.core.pipeline import Pipeline
    from loopline.run import Executor, RunResult
    from loopline.store import Store

_MARKS = {
    "succeeded": "[green]done[/]",
    "cached": "[cyan]cached[/]",
    "reused": "[cyan]reused[/]",
    "failed": "[red]failed[/]",
    "skipped": "[yellow]skipped[/]",
}


def run_with_progress(
    store: Store,
    pipeline: Pipeline,
    params: Mapping[str, Any] | None = None,
    *,
    resume: str | None = None,
    targets: list[str] | None = None,
    cache: bool = True,
    quiet: bool = False,
    leaderboards: bool = True,
    executor: Executor | None = None,
) -> RunResult:
    """Run ``pipeline`` with ``executor`` (a thread pool by default), showing one line per step and
    (``leaderboards``) each select step's leaderboard and decision; never raises on a failed step (see the result)."""
    from loopline.run import Runner

    total = len(targets) if targets else len(pipeline.steps)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=quiet,
    ) as progress:
        task = progress.add_task(f"running {pipeline.name}", total=total)

        def hook(step: str, event: str) -> None:
            if event == "started":
                progress.update(task, description=f"{pipeline.name}: {step}")
            else:
                progress.advance(task)

        result = Runner(store, executor, cache=cache, progress=hook).run(
            pipeline, params, resume=resume, targets=targets, raise_on_error=False
        )
    if not quiet:
        console.print(
            table(
                f"run {result.run_id} — {result.status}",
                ["step", "status", "seconds", "error"],
                [
                    (n, _MARKS.get(o.status, o.status), o.duration_s, escape((o.error or "")[:120]))
                    for n, o in result.steps.items()
                ],
            )
        )
        for step, board in run_leaderboards(result, select_steps(pipeline) if leaderboards else []).items():
            title = f"leaderboard {board['model']} ({step}) — ranked by valid {board['metric']}"
            console.print(leaderboard_table(escape(title), board["metric"], board["rows"]))
            for line in finding_lines(board["rows"]):
                console.print(line)
            verdict = f"promoted v{board['promoted']}" if board["promoted"] is not None else "nothing promoted"
            console.print(f"{verdict}: {escape(str(board['reason']))}")
        if result.status != "succeeded":
            console.print(f"fix the cause, then resume with: [bold]loopline run --resume {result.run_id}[/]")
    return result


def select_steps(pipeline: Pipeline) -> list[str]:
    """The pipeline's select steps, whose leaderboards a run shows."""
    return [name for name, spec in pipeline.steps.items() if spec.type == "select"]
