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

    Exits 0 only when the store is consistent; 1 when anything is left: a broken reference, or a temp file or
    orphan still there (--fix leaves the young ones: a writer may be about to use them). Safe while pipelines
    run: see --grace-minutes.
    """
    with clear_errors(), open_store(home) as store:
        report = store.check(fix=fix, grace=timedelta(minutes=grace_minutes))
        if as_json:
            print_json({**asdict(report), "clean": report.clean})
        else:
            _print(report)
    if not report.clean:
        raise typer.Exit(1)


def _print(report: CheckReport) -> None:
    console.print(f"{report.artifacts} artifacts, {report.referenced} referenced by the metadata")
    for title, files in (("temp files", report.temp_files), ("orphans", report.orphans)):
        if files:
            rows = [(f.path, f.bytes, f"{f.age_s / 60:.0f} min", _fate(f)) for f in files]
            console.print(table(title, ["path", "bytes", "age", "state"], rows))
    for title, refs in (("missing artifacts", report.missing), ("corrupted artifacts", report.corrupted)):
        if refs:
            console.print(table(title, ["referenced by", "digest"], [(r.where, r.digest) for r in refs]))
    if report.clean:
        console.print("the store is consistent")
        return
    console.print(f"the store is not consistent: {_summary(report)}")
    if report.missing or report.corrupted:
        console.print("Re-run the steps that produced the missing or corrupted artifacts (`loopline run --no-cache`).")
    stale = [f for f in report.left if not f.kept]
    young = [f for f in report.left if f.kept]
    if stale:
        console.print("Remove the old temp files and orphans with `loopline store check --fix`.")
    if young:
        console.print(
            f"{_count(len(young), 'file')} younger than --grace-minutes: --fix leaves them alone (a writer may be "
            "about to use them). Check again later, or run `loopline store check --fix --grace-minutes 0` when no "
            "pipeline is writing."
        )


def _summary(report: CheckReport) -> str:
    """``2 temp files, 1 orphan (1 removed), 1 corrupted artifact``: what was found, and what --fix removed."""
    parts = []
    for what, files in (("temp file", report.temp_files), ("orphan", report.orphans)):
        if files:
            removed = sum(f.removed for f in files)
            parts.append(_count(len(files), what) + (f" ({removed} removed)" if removed else ""))
    for what, refs in (("missing artifact", report.missing), ("corrupted artifact", report.corrupted)):
        if refs:
            parts.append(_count(len(refs), what))
    return ", ".join(parts)


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _fate(found: StrayFile) -> str:
    if found.removed:
        return "removed"
    return "young: kept" if found.kept else "stale"
