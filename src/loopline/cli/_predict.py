"""``loopline predict MODEL --input FILE|dataset:NAME[@V] --output FILE``: batch scoring with a progress bar."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from loopline.cli._context import clear_errors, open_store
from loopline.cli._render import console, print_json


def predict(
    model: Annotated[str, typer.Argument(help="Model name (its production version unless --version).")],
    input: Annotated[
        str,
        typer.Option(
            "--input",
            "-i",
            help="CSV, Parquet or JSON Lines file (.gz too) or URL; or dataset:NAME, dataset:NAME@VERSION.",
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Scores file: .parquet, .csv or .jsonl (.gz).")],
    version: Annotated[int | None, typer.Option(help="Model version (default: production).")] = None,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", help="Rows scored at once (memory).")] = 100_000,
    keep: Annotated[list[str] | None, typer.Option("--keep", help="Input column to copy to the output.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing output file.")] = False,
    max_string_length: Annotated[
        int | None,
        typer.Option(
            "--max-string-length",
            help="Characters a text value may hold where the model's input schema names no max_length (default 1024).",
        ),
    ] = None,
    home: Annotated[Path | None, typer.Option("--home", help="State folder.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Score a large file or dataset version with a model, chunk by chunk, into a file."""
    from loopline.bundle import InputPolicy
    from loopline.run import ScoreProgress, score_batch

    with clear_errors(), open_store(home) as store, _bar(quiet=as_json) as progress:
        task = progress.add_task(f"scoring with {escape(model)}", total=None)

        def advance(state: ScoreProgress) -> None:
            progress.update(task, completed=state.rows, total=state.total)

        done = score_batch(
            store,
            model,
            input,
            output,
            version=version,
            chunk_rows=chunk_rows,
            keep=keep or [],
            force=force,
            progress=advance,
            policy=InputPolicy() if max_string_length is None else InputPolicy(max_string_length=max_string_length),
        )
    if as_json:
        print_json(asdict(done))
        return
    rate = done.rows / done.seconds if done.seconds else 0.0
    console.print(
        f"{escape(done.name)} v{done.version} scored {done.rows:,} rows of {escape(done.input)} "
        f"in {done.seconds:.1f} s ({rate:,.0f} rows/s, {done.chunks} chunks) → {escape(str(done.output))}"
    )
    if done.ignored_columns:
        console.print(
            f"ignored {len(done.ignored_columns)} columns the model does not take: "
            f"{escape(', '.join(done.ignored_columns))}"
        )
    if done.missing_columns:
        console.print(f"scored as null (missing from the input): {escape(', '.join(done.missing_columns))}")


def _bar(*, quiet: bool) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=quiet,
    )
