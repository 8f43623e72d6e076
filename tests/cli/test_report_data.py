"""The over-time report from a store filled with windows, alerts, loop events and the model audit trail (SQLite):
what the CLI gathers, what `loopline loop history --report` writes, and the empty store."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import escape
from pathlib import Path
from typing import Any

import pytest
from tests.report._windows import EVIL_FEATURE, EVIL_REASON, three_windows
from typer.testing import CliRunner

from loopline.cli import app
from loopline.cli._report_data import timeline, windows_view
from loopline.core.records import Contender, GateDecision
from loopline.report import group_timeline, render_history_html
from loopline.store import AlertRow, Store, WindowRow
from loopline.store.loop import LoopStore

GATE = GateDecision(
    True, "v2 beats v1 on roc_auc", "roc_auc", 0.7, 0.8, 0.01, 1, 2,
    (Contender(1, "champion", 0.7, 2), Contender(2, "challenger", 0.8, 1), Contender(0, "earlier", None, note="gone")),
)  # fmt: skip


def embedded(html: str, element_id: str) -> Any:
    found = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.S)
    assert found, f"no {element_id} in the page"
    return json.loads(found.group(1))


def register(store: Store) -> None:
    for _ in range(2):
        store.models.register(
            name="churn", algorithm="logistic_regression", bundle_digest=store.artifacts.put_bytes(b"bundle"),
            reference_digest=None, metrics={}, params={}, config={"target": "y"}, input_schema=[],
            data_fingerprint="f" * 64, run_id=None, timings={},
        )  # fmt: skip


def fill(store: Store) -> list[str]:
    """Three 1d windows (an alert on the last), two ticks of the loop and audit changes; the reasons in order."""
    for w in three_windows():
        row = WindowRow("churn", w.spec, w.seq, w.start, w.end, None, w.health.rows, w.drifted_features, w.to_dict())
        fired = [AlertRow("p99 above 6 ms", "latency_p99_ms", "above", 6.0, 7.0)] if w.seq == 2 else []
        store.windows.close(row, fired)
    register(store)
    loops, reasons = LoopStore(store.engine), []

    def record(kind: str, reason: str, details: dict[str, Any] | None = None) -> None:
        loops.record("churn-pipeline", kind, reason, model="churn", details=details)
        reasons.append(reason)

    store.models.promote("churn", 1, "first version, by hand")
    reasons.append("first version, by hand")
    record("tick", "drift 0/2 features")
    record("skip", "no trigger fired: drift below 1 feature")
    record("tick", "drift 1/2 features")
    record("trigger", f"1 feature(s) drifted ({EVIL_FEATURE})", {"trigger": "drift", "fire": True})
    record("retrain", "drift", {"triggers": ["drift"]})
    store.models.promote("churn", 2, "gate: v2 beats v1")
    reasons.append("gate: v2 beats v1")
    record("gate", "v2 beats v1 on roc_auc", {"model": "churn", "best": 2, "promote": True, "gate": GATE.to_dict()})
    record("promotion", "v2 of churn is production: v2 beats v1 on roc_auc", {"version": 2})
    record("tick", "drift 0/2 features")
    store.models.rollback("churn", EVIL_REASON)
    reasons.append(EVIL_REASON)
    return reasons


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'db' / 'loopline.db'}", tmp_path / "artifacts")
    yield opened
    opened.close()


def test_timeline_lists_every_reason_in_order_grouped_per_tick(store: Store) -> None:
    reasons = fill(store)
    entries, truncated = timeline(store, "churn-pipeline", "churn", limit=1000)
    assert not truncated
    assert [e.reason for e in entries] == reasons
    groups = group_timeline(entries)
    assert [g.kind for g in groups] == ["before the loop", "quiet", "retrain", "model change"]
    retrain = [(e.source, e.kind) for e in groups[2].entries]
    assert retrain == [("loop", "tick"), ("loop", "trigger"), ("loop", "retrain"), ("model", "promote"),
                       ("loop", "gate"), ("loop", "promotion")]  # fmt: skip
    html = render_history_html("decisions", entries, windows_view(store, "churn"))
    assert [e["reason"] for e in embedded(html, "loopline-timeline")] == reasons
    position = 0
    for reason in reasons:  # the tables list them in time order too
        position = html.index(f"<td>{escape(reason)}</td>", position) + 1
    assert "<script>alert" not in html and EVIL_FEATURE not in html
    retrain_group = html[html.index('<div class="group retrain">') :]
    retrain_group = retrain_group[: retrain_group.index("</div>")]
    assert "rollback (later)" in retrain_group and escape(EVIL_REASON) in retrain_group  # probation undid it
    gate = html[html.index('<tr class="event gate">') :]
    gate = gate[: gate.index("</tr></tbody></table></td>")]
    assert "promote on roc_auc" in gate and gate.count("<tr><td") == 3 and "challenger" in gate and "gone" in gate


def test_report_of_a_filled_store_has_the_heat_map_and_the_alert(store: Store) -> None:
    fill(store)
    view = windows_view(store, "churn")
    assert view.spec == "1d" and [w.seq for w in view.windows] == [0, 1, 2] and len(view.alerts) == 1
    html = render_history_html("decisions", timeline(store, "churn-pipeline", "churn", limit=1000)[0], view)
    heat = embedded(html, "loopline-drift-over-time")
    assert heat["features"] == ["age", EVIL_FEATURE] and len(heat["windows"]) == 3
    assert all(len(row) == 3 for row in heat["states"])
    assert embedded(html, "loopline-service")["alerts"] == [view.windows[2].end.isoformat()]


def test_cut_events_are_said_and_older_audit_changes_left_out(store: Store) -> None:
    fill(store)
    entries, truncated = timeline(store, "churn-pipeline", "churn", limit=2)
    assert truncated
    assert [e.kind for e in entries] == ["promotion", "tick", "rollback"]
    assert "Only the newest events are shown" in render_history_html("t", entries, truncated=True)


def test_an_empty_store_renders_and_says_so(store: Store) -> None:
    entries, truncated = timeline(store, "nothing", "nothing", limit=1000)
    view = windows_view(store, "nothing")
    html = render_history_html("t", entries, view)
    assert entries == [] and not truncated and view.windows == []
    assert "No loop events and no model changes yet" in html
    assert html.count("No closed windows yet (run `loopline monitor PIPELINE --window 1d`)") == 3


def test_loop_history_report_writes_the_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
    fill(store)
    monkeypatch.setenv("LOOPLINE_STORE_URL", str(store.engine.url))
    monkeypatch.setenv("LOOPLINE_ARTIFACTS_URL", str(tmp_path / "artifacts"))
    target = tmp_path / "out" / "history.html"
    result = CliRunner().invoke(app, ["loop", "history", "churn-pipeline", "--report", str(target)])
    assert result.exit_code == 0, result.output
    html = target.read_text(encoding="utf-8")
    assert "Decision timeline" in html and "Drift over time (1d windows)" in html
    assert len(embedded(html, "loopline-timeline")) == 11


def test_loop_history_report_of_an_unknown_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path / ".loopline"))
    target = tmp_path / "history.html"
    result = CliRunner().invoke(app, ["loop", "history", "nothing", "--report", str(target)])
    assert result.exit_code == 0, result.output
    assert "No loop events and no model changes yet" in target.read_text(encoding="utf-8")


def test_report_without_history_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["loop", "pipeline.yaml", "--report", str(tmp_path / "x.html")])
    assert result.exit_code != 0 and "--report goes with 'history'" in result.output
