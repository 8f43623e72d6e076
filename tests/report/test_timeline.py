"""The decision timeline: grouped per tick, quiet runs folded, every reason kept and escaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from loopline.report import AuditEntry, TimelineEntry, group_timeline, timeline_entries
from loopline.report._timeline import timeline_html

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def loop(minute: int, kind: str, reason: str, **details: object) -> TimelineEntry:
    return TimelineEntry(T0 + timedelta(minutes=minute), kind, reason, "loop", "churn", details)


def test_quiet_ticks_fold_into_one_run_and_keep_their_reasons() -> None:
    entries = [loop(i, kind, f"{kind} {i}") for i in range(0, 6, 2) for kind in ("tick", "skip")]
    entries = sorted(entries + [loop(i + 1, "skip", f"skip {i + 1}") for i in range(0, 6, 2)], key=lambda e: e.at)
    html = timeline_html(entries)
    assert html.count("<details") == 1 and "3 tick(s) without a trigger" in html
    assert all(f"<td>{e.reason}</td>" in html for e in entries)


def test_groups_are_named_by_what_they_hold() -> None:
    entries = [
        loop(0, "tick", "t"), loop(1, "trigger", "drift"), loop(2, "skip", "cooldown: 5h left"),
        loop(10, "tick", "t"), loop(11, "error", "tick failed: <boom>"),
        loop(20, "tick", "t"), loop(21, "skip", "s"),
        loop(30, "tick", "t"), loop(31, "warning", "x drifted, but labels decide"), loop(32, "skip", "s"),
    ]  # fmt: skip
    audit = [AuditEntry("churn", "rollback", 2, 1, "by hand", T0 + timedelta(minutes=22))]
    groups = group_timeline(timeline_entries(entries, audit))
    assert [g.kind for g in groups] == ["triggered", "error", "model change", "warning"]
    html = timeline_html(timeline_entries(entries, audit))
    assert "tick failed: &lt;boom&gt;" in html and "v2 → v1" in html


def test_an_audit_entry_at_the_same_instant_follows_the_loop_event() -> None:
    event = loop(0, "promotion", "loop promoted v2")
    audit = AuditEntry.from_row("churn", {"action": "promote", "from_version": None, "to_version": 2,
                                          "reason": "gate", "at": event.at})  # fmt: skip
    assert [e.source for e in timeline_entries([event], [audit])] == ["loop", "model"]
    assert "<td>→ v2</td>" in timeline_html(timeline_entries([event], [audit]))


def test_details_other_than_a_gate_are_shown_as_escaped_json() -> None:
    html = timeline_html([loop(0, "trigger", "r", trigger="<drift>", fire=True)])
    assert "&quot;trigger&quot;: &quot;&lt;drift&gt;&quot;" in html and "<drift>" not in html


def test_a_gate_shows_its_refit_when_the_event_holds_one() -> None:
    gate = {"promote": True, "reason": "r", "metric": "roc_auc", "champion_score": 0.7, "challenger_score": 0.8}
    html = timeline_html([loop(0, "gate", "r", gate=gate, refit={"of": 3, "rows": {"train": 10}})])
    assert "promote on roc_auc" in html and "refit: <code>{&quot;of&quot;: 3" in html
