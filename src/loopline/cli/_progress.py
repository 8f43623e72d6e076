"""Run a pipeline with a live progress display of its steps."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from loopline.cli._leaderboard import finding_lines, leaderboard_table, run_leaderboards
from loopline.cli._render import console, table

if TYPE_CHECKING:
    from loopline.core.pipeline import Pipeline
    from loopline.run import Executor, RunResult
    from loopline.store import RunRecord, Store

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
        if result.changed:
            changed = escape(", ".join(result.changed))
            console.print(f"changed since the run, now run with their new config: {changed}", soft_wrap=True)
        console.print(
            table(
                f"run {result.run_id} — {result.status}",
                ["step", "status", "seconds", "error"],
                [
                    (n, _MARKS.get(o.status, o.status), o.duration_s, escape(o.error or ""))
                    for n, o in result.steps.items()
                ],
            )
        )
        for step, board in run_leaderboards(result, select_steps(pipeline) if leaderboards else []).items():
            title = f"leaderboard {board.model} ({step}) — ranked by valid {board.metric}"
            console.print(leaderboard_table(escape(title), board.metric, board.leaderboard))
            for line in finding_lines([(row.version, row.findings) for row in board.leaderboard]):
                console.print(line)
            verdict = f"promoted v{board.promoted}" if board.promoted is not None else "nothing promoted"
            console.print(f"{verdict}: {escape(board.reason)}")
        if result.status != "succeeded":
            console.print(f"fix the cause, then resume with: [bold]loopline run --resume {result.run_id}[/]")
    return result


def resume_pipeline(
    record: RunRecord, file: Path | None, params: dict[str, Any], *, quiet: bool = False
) -> tuple[Pipeline, dict[str, Any]]:
    """The pipeline a resumed run continues with, and its params: the file named, else the run's own file as it
    is now, else (the file is gone) the config the run stored. The run keeps its params; ``params`` override."""
    from loopline.core.yamlfile import load_pipeline, pipeline_from_dict

    merged = {**record.params, **params}
    path = file or (Path(record.pipeline_file) if record.pipeline_file else None)
    if path is not None and (file is not None or path.is_file()):
        if not quiet:
            console.print(f"resuming run {record.run_id} with {escape(str(path))}", soft_wrap=True)
        return load_pipeline(path, merged), merged
    if not quiet and record.pipeline_file:
        gone = f"{escape(record.pipeline_file)} is gone: resuming run {record.run_id} with its stored config"
        console.print(gone, soft_wrap=True)
    return pipeline_from_dict(record.spec, source=f"run {record.run_id}", params=merged), merged


def select_steps(pipeline: Pipeline) -> list[str]:
    """The pipeline's select steps, whose leaderboards a run shows."""
    return [name for name, spec in pipeline.steps.items() if spec.type == "select"]
