"""Terminal output: rich tables for people, JSON for machines."""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

_WIDTH = None if sys.stdout.isatty() else 120
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=_WIDTH)


def print_json(value: Any) -> None:
    """One JSON document on stdout."""
    print(json.dumps(value, indent=2, default=str))


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, whole: Collection[str] = ()) -> Table:
    """A rich table with the given columns and stringified cells. Nothing is ever cut: a long cell wraps (a long
    word folds), and the columns in ``whole`` (ids a command takes back) stay on one line at full width."""
    cells = [[fmt(cell) for cell in row] for row in rows]
    out = Table(title=title, title_justify="left", header_style="bold")
    for index, column in enumerate(columns):
        if column in whole:
            width = max((len(row[index]) for row in cells), default=0)
            out.add_column(column, no_wrap=True, min_width=max(width, len(column)))
        else:
            out.add_column(column, overflow="fold")
    for row in cells:
        out.add_row(*row)
    return out


def fmt(value: Any) -> str:
    """Numbers with 4 significant digits, None as '-', the rest as text."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def verdict_table(verdict: Any) -> Table:
    """A deployment-gate verdict (:class:`~loopline.core.records.GateVerdict`): one row per check."""
    mark = {True: "passed", False: "FAILED", None: "-"}
    champion = "none" if verdict.champion is None else f"v{verdict.champion}"
    outcome = "passed" if verdict.passed else "refused"
    return table(
        f"deployment gate: v{verdict.challenger} vs champion {champion} on {verdict.evaluated_on} — {outcome}",
        ["check", "result", "value", "threshold", "champion", "detail"],
        [(c.name, mark[c.passed], c.value, c.threshold, c.champion, c.detail) for c in verdict.checks],
    )
