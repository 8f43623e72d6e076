"""``loopline store check``: the artifact folder against the rows that reference it."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from loopline.cli._context import clear_errors, open_store
from loopline.cli._render import console, print_json, table

if TYPE_CHECKING:
    from loopline.store import CheckReport, StrayFile

app = typer.Typer(help="The store itself: consistency of artifacts and metadata.", no_args_is_help=True)
Home = Annotated[Path | None, typer.Option("--home")]
Json = Annotated[bool, typer.Option("--json")]


@app.command("check")
def check(
    fix: Annotated[
        bool, typer.Option("--fix", help="Remove old temp files and orphans (never a referenced artifact).")
    ] = False,
    grace_minutes: Annotated[
        int,
        typer.Option(
            "--grace-minutes",
            min=0,
            help="Leave temp files and orphans younger than this alone: a writer may be about to use them.",
        ),
    ] = 60,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Find temp files of killed writers, orphan artifacts, and rows whose artifact is missing or corrupted.

    Exits 1 when something is left to repair. Safe while pipelines run: see --grace-minutes.
    """
    with clear_errors(), open_store(home) as store:
        report = store.check(fix=fix, grace=timedelta(minutes=grace_minutes))
        if as_json:
            print_json({**asdict(report), "clean": report.clean})
        else:
            _print(report, fix)
    if not report.clean:
        raise typer.Exit(1)


def _print(report: CheckReport, fix: bool) -> None:
    console.print(f"{report.artifacts} artifacts, {report.referenced} referenced by the metadata")
    for title, files in (("temp files", report.temp_files), ("orphans", report.orphans)):
        if files:
            rows = [(f.path, f.bytes, f"{f.age_s / 60:.0f} min", _fate(f)) for f in files]
            console.print(table(title, ["path", "bytes", "age", "state"], rows))
    for title, refs in (("missing artifacts", report.missing), ("corrupted artifacts", report.corrupted)):
        if refs:
            console.print(table(title, ["referenced by", "digest"], [(r.where, r.digest) for r in refs]))
    if report.missing or report.corrupted:
        console.print("Re-run the steps that produced the missing or corrupted artifacts (`loopline run --no-cache`).")
    elif report.clean:
        console.print("the store is consistent")
    elif not fix:
        console.print("Remove the old temp files and orphans with `loopline store check --fix`.")


def _fate(found: StrayFile) -> str:
    if found.removed:
        return "removed"
    return "young: kept" if found.kept else "stale"
