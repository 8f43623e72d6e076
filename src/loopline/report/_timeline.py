"""The decision timeline: loop events and the model audit trail in time order, grouped per tick of the loop.

A group opens at each ``tick`` event and holds what followed until the next tick: its triggers (or the skip that
said why none fired), the retrain, the gate's verdict with every contender, the promotion, and the changes of the
model audit trail (promotions, rollbacks, by the loop or by hand) made meanwhile. What happened before the first
tick shown is one group of its own. Runs of quiet ticks (a tick and its skip) fold into one collapsed group;
every reason stays in the page, escaped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Any, Literal

from loopline.core.records import GateDecision
from loopline.report._html import format_value, html_table, json_script

GroupKind = Literal["retrain", "triggered", "error", "warning", "model change", "quiet", "before the loop"]
_QUIET_KINDS = frozenset({"tick", "skip"})
_DETAIL_CHARS = 400


@dataclass(frozen=True)
class AuditEntry:
    """One change of a model's production version from the audit trail (``store.models.events``)."""

    model: str
    action: str
    from_version: int | None
    to_version: int
    reason: str
    at: datetime

    @classmethod
    def from_row(cls, model: str, row: Mapping[str, Any]) -> AuditEntry:
        """An entry of :meth:`loopline.store.ModelRepository.events`."""
        before = row.get("from_version")
        return cls(
            model=model,
            action=str(row["action"]),
            from_version=None if before is None else int(before),
            to_version=int(row["to_version"]),
            reason=str(row.get("reason") or ""),
            at=row["at"],
        )


@dataclass(frozen=True)
class TimelineEntry:
    """One line of the timeline: a loop event (``source`` ``loop``: the fields of
    :class:`loopline.store.loop.LoopEvent`) or an audit-trail change (``model``)."""

    at: datetime
    kind: str
    reason: str
    source: Literal["loop", "model"]
    model: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of_audit(cls, entry: AuditEntry) -> TimelineEntry:
        versions = {"from_version": entry.from_version, "to_version": entry.to_version}
        return cls(entry.at, entry.action, entry.reason, "model", entry.model, versions)


@dataclass(frozen=True)
class TimelineGroup:
    """Consecutive entries: one tick of the loop and what followed it (see the module docstring)."""

    kind: GroupKind
    entries: tuple[TimelineEntry, ...]


def timeline_entries(events: Sequence[TimelineEntry], audit: Sequence[AuditEntry]) -> list[TimelineEntry]:
    """Loop events and audit entries, oldest first (a loop event before an audit entry of the same instant)."""
    entries = [*events, *(TimelineEntry.of_audit(a) for a in audit)]
    return sorted(entries, key=lambda e: (e.at, e.source == "model"))


def group_timeline(entries: Sequence[TimelineEntry]) -> list[TimelineGroup]:
    """``entries`` (oldest first) cut at each tick, each group named by what it holds."""
    groups: list[list[TimelineEntry]] = []
    for entry in entries:
        if entry.kind == "tick" or not groups:
            groups.append([])
        groups[-1].append(entry)
    return [TimelineGroup(_group_kind(group), tuple(group)) for group in groups]


def _group_kind(entries: list[TimelineEntry]) -> GroupKind:
    if entries[0].kind != "tick":
        return "before the loop"
    kinds = {e.kind for e in entries if e.source == "loop"}
    if "retrain" in kinds:
        return "retrain"
    if "trigger" in kinds:
        return "triggered"
    if "error" in kinds:
        return "error"
    only_loop = all(e.source == "loop" for e in entries)
    if only_loop and "warning" in kinds and kinds <= _QUIET_KINDS | {"warning"}:
        return "warning"  # drift while labelled: said, not acted on
    return "quiet" if kinds <= _QUIET_KINDS and only_loop else "model change"


def timeline_html(entries: Sequence[TimelineEntry], *, truncated: bool = False) -> str:
    """The timeline as HTML (groups, quiet runs collapsed) with its entries embedded as JSON; says so when empty.

    A retrain group whose promoted version was rolled back later ends with that rollback too (marked "later"):
    it stays in its own place in time as well."""
    if not entries:
        return '<p class="muted">No loop events and no model changes yet (run `loopline loop PIPELINE --once`).</p>'
    note = '<p class="muted">Only the newest events are shown (raise --limit for more).</p>' if truncated else ""
    blocks: list[str] = []
    quiet: list[TimelineGroup] = []
    for group in group_timeline(entries):
        if group.kind == "quiet":
            quiet.append(group)
            continue
        blocks.append(_quiet_run(quiet))
        quiet = []
        blocks.append(_group_html(group, _undone_by(group, entries)))
    blocks.append(_quiet_run(quiet))
    data = [_entry_json(e) for e in entries]
    return note + "".join(blocks) + json_script("loopline-timeline", data)


def promoted_version(group: TimelineGroup) -> int | None:
    """The version a retrain group made production (its audit promote, else its loop promotion), or None."""
    for entry in reversed(group.entries):
        if entry.source == "model" and entry.kind == "promote":
            return _int(entry.details.get("to_version"))
        if entry.source == "loop" and entry.kind == "promotion":
            return _int(entry.details.get("version"))
    return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _undone_by(group: TimelineGroup, entries: Sequence[TimelineEntry]) -> TimelineEntry | None:
    """The first later rollback away from the version ``group`` promoted."""
    version = promoted_version(group) if group.kind == "retrain" else None
    if version is None:
        return None
    end = group.entries[-1].at
    return next(
        (
            e
            for e in entries
            if e.source == "model" and e.kind == "rollback" and e.at >= end and e.details.get("from_version") == version
        ),
        None,
    )


def _entry_json(entry: TimelineEntry) -> dict[str, Any]:
    return {"at": entry.at.isoformat(), "kind": entry.kind, "source": entry.source, "reason": entry.reason}


def _quiet_run(groups: list[TimelineGroup]) -> str:
    if not groups:
        return ""
    first, last = groups[0].entries[0].at, groups[-1].entries[0].at
    summary = f"{len(groups)} tick(s) without a trigger, {_time(first)} to {_time(last)}"
    rows = "".join(_entry_rows(group.entries) for group in groups)
    return f'<details class="quiet"><summary>{escape(summary)}</summary>{_entries_table(rows)}</details>'


def _group_html(group: TimelineGroup, undone: TimelineEntry | None = None) -> str:
    heading = f"{group.kind} — {_time(group.entries[0].at)}"
    later = "" if undone is None else _entry_row(undone, later=True)
    table = _entries_table(_entry_rows(group.entries) + later)
    return f'<div class="group {group.kind.replace(" ", "-")}"><h3>{escape(heading)}</h3>{table}</div>'


def _entries_table(rows: str) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("at (UTC)", "source", "event", "reason", "details"))
    return f'<table class="timeline"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _entry_rows(entries: Sequence[TimelineEntry]) -> str:
    return "".join(_entry_row(entry) for entry in entries)


def _entry_row(entry: TimelineEntry, *, later: bool = False) -> str:
    kind = f"{entry.kind} (later)" if later else entry.kind
    cells = [_time(entry.at), "loop" if entry.source == "loop" else "model audit trail", kind, entry.reason]
    tds = "".join(f"<td>{escape(cell)}</td>" for cell in cells)
    css = "event later" if later else "event"
    return f'<tr class="{css} {escape(entry.kind)}">{tds}<td>{_details(entry)}</td></tr>'


def _details(entry: TimelineEntry) -> str:
    if entry.source == "model":
        before, after = entry.details.get("from_version"), entry.details.get("to_version")
        return escape(f"v{before} → v{after}" if before is not None else f"→ v{after}")
    gate = entry.details.get("gate") if entry.kind == "gate" else None
    if isinstance(gate, Mapping):
        decision = GateDecision.from_dict(gate)
        said = "" if decision.reason in ("", entry.reason) else f"<p>{escape(decision.reason)}</p>"
        refit = entry.details.get("refit")
        refitted = f"<p>refit: <code>{escape(json.dumps(refit, sort_keys=True))}</code></p>" if refit else ""
        return said + _gate_html(decision) + refitted
    if not entry.details:
        return ""
    text = json.dumps(entry.details, sort_keys=True, default=str)
    text = text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 1] + "…"
    return f"<code>{escape(text)}</code>"


def _gate_html(gate: GateDecision) -> str:
    verdict = "promote" if gate.promote else "keep champion"
    line = (
        f"{verdict} on {gate.metric}: champion {format_value(gate.champion_score)}, "
        f"challenger {format_value(gate.challenger_score)} (min improvement {format_value(gate.min_improvement)})"
    )
    contenders = [[c.version, c.role, c.score, c.rank, c.note] for c in gate.contenders]
    table = html_table(["version", "role", "score", "rank", "note"], contenders) if contenders else ""
    return f"<p>{escape(line)}</p>{table}"


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")
