"""The leaderboard table, shared by ``loopline run`` and ``loopline models leaderboard``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from loopline.cli._render import fmt
from loopline.core.records import Finding, LeaderboardRow, Selection

if TYPE_CHECKING:
    from loopline.run import RunResult


def leaderboard_table(
    title: str, metric: str, rows: Sequence[LeaderboardRow], *, stages: Mapping[int, str] | None = None
) -> Table:
    """One line per candidate in the rows' order (best first): the metric on valid, test (and cv ± std
    when any was cross-validated), fit seconds, how a fit in rounds stopped, each version's stage when
    ``stages`` is given, the training diagnostics' flags when any row has one (suspicious ones in red), and
    the best / promoted marks."""
    with_cv = any(r.cv is not None for r in rows)
    with_flags = any(r.findings for r in rows)
    out = Table(title=title, title_justify="left", header_style="bold")
    out.add_column("#", justify="right")
    out.add_column("version", justify="right")
    out.add_column("algorithm", no_wrap=True)
    for split in ("valid", "test", *(["cv"] if with_cv else [])):
        out.add_column(f"{split} {metric}", justify="right")
    out.add_column("fit s", justify="right")
    out.add_column("rounds", no_wrap=True)
    if stages is not None:
        out.add_column("stage", no_wrap=True)
    if with_flags:
        out.add_column("flags")
    out.add_column("", no_wrap=True)
    for r in rows:
        cells = [fmt(r.rank), fmt(r.version), escape(r.algorithm), fmt(r.valid), fmt(r.test)]
        cells += [_mean_std(r.cv, r.cv_std)] if with_cv else []
        cells += ["-" if r.fit_s is None else f"{r.fit_s:.2f}", _rounds(r.iterations, r.stopped)]
        cells += [fmt(stages.get(r.version))] if stages is not None else []
        cells += [_flags(r.findings)] if with_flags else []
        marks = " ".join(m for m, on in (("best", r.best), ("promoted", r.promoted)) if on)
        out.add_row(*cells, f"[bold green]{marks}[/]" if marks else "")
    return out


def finding_lines(versions: Sequence[tuple[int, Sequence[Finding]]]) -> list[str]:
    """One line per finding of each ``(version, findings)`` (``v3 leak: feature 'x' alone predicts...``),
    suspicious ones first, as rich markup."""
    lines = []
    for version, findings in versions:
        for finding in sorted(findings, key=lambda f: not f.suspicious):
            color = "red" if finding.suspicious else "yellow"
            lines.append(f"[{color}]v{version} {escape(finding.label)}[/]: {escape(finding.detail)}")
    return lines


def _flags(findings: Sequence[Finding]) -> str:
    tags = [f"[{'bold red' if f.suspicious else 'yellow'}]{escape(f.label)}[/]" for f in findings]
    return ", ".join(tags) or "-"


def _rounds(iterations: int | None, stopped: str | None) -> str:
    if iterations is None:
        return "-"
    return f"{iterations} {stopped}" if stopped else str(iterations)


def _mean_std(mean: float | None, std: float | None) -> str:
    return fmt(mean) if std is None or mean is None else f"{fmt(mean)} ±{std:.2g}"


def run_leaderboards(result: RunResult, select_steps: list[str]) -> dict[str, Selection]:
    """``{step: selection}`` of the select steps that produced one in ``result``, with a leaderboard."""
    boards = {}
    for step in select_steps:
        outcome = result.steps.get(step)
        if outcome is None or "out" not in outcome.outputs:
            continue
        out = result.output(step, "out")
        if not Selection.is_one(out):
            continue
        selection = Selection.from_dict(out, where=f"steps.{step}")
        if selection.leaderboard:
            boards[step] = selection
    return boards


def board_json(selection: Selection) -> dict[str, Any]:
    """A select step's leaderboard as ``loopline run --json`` prints it: model, metric, best, promoted,
    reason and the rows."""
    return {
        "model": selection.model,
        "metric": selection.metric,
        "best": selection.best,
        "promoted": selection.promoted,
        "reason": selection.reason,
        "rows": [row.to_dict() for row in selection.leaderboard],
    }
