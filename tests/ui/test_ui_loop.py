"""The loop pages over events recorded in the store (SQLite and PostgreSQL): the pipelines, one pipeline's
timeline with every reason of a gate verdict, the kind filter, pagination, the audit trail, the chart, the retrain
request form, bad parameters, escaping and every link."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loopline.core.records import Contender, GateCheck, GateDecision, GateVerdict
from loopline.store import Store
from loopline.store.loop import LoopEvent, LoopStore

from .conftest import crawl, get_json, sign_in


def gate_details() -> dict[str, Any]:
    """The details the loop service records with a gate verdict: the decision with every check and contender."""
    verdict = GateVerdict(
        challenger=2,
        champion=1,
        checks=(
            GateCheck("margin on accuracy", "margin", False, 0.81, 0.01, 0.8, "challenger 0.81 vs champion 0.80"),
            GateCheck("latency budget", "budget", True, 3.0, 10.0, 2.0, "p99 3 ms within 10 ms"),
            GateCheck("golden predictions", "infra", None, detail="no golden rows stored"),
        ),
    )
    contenders = (Contender(2, "challenger", 0.81, 1), Contender(1, "champion", 0.8, 2, "served"))
    decision = GateDecision(
        promote=False,
        reason="challenger v2 did not beat the champion by 0.01",
        metric="accuracy",
        champion_score=0.8,
        challenger_score=0.81,
        min_improvement=0.01,
        champion=1,
        challenger=2,
        contenders=contenders,
        verdict=verdict,
    )
    return {"model": "toy", "best": 2, "promote": False, "gate": decision.to_dict()}


@pytest.fixture
def events(ui_store: Store) -> list[LoopEvent]:
    """``churn-pipe`` (monitoring ``toy``): a tick, a trigger, a retrain, a gate verdict that kept the champion,
    a request, an error; ``other-pipe``: one tick without a model. Oldest first."""
    loops = LoopStore(ui_store.engine)
    recorded = [
        loops.record("churn-pipe", "tick", "tick 1", model="toy"),
        loops.record("churn-pipe", "trigger", "drift in x (PSI 0.4)", model="toy", details={"psi": 0.4}),
        loops.record("churn-pipe", "retrain", "retrained: run r1", model="toy", details={"run": "r1"}),
        loops.record(
            "churn-pipe", "gate", "kept v1: challenger v2 below the margin", model="toy", details=gate_details()
        ),
        loops.record(
            "churn-pipe", "request", "requested from the dashboard (by ui:token:admin)", details={"actor": "x"}
        ),
        loops.record("churn-pipe", "error", "retrain failed: <b>boom</b>", model="toy", details={"type": "<i>E</i>"}),
        loops.record("other-pipe", "tick", "tick of the other pipeline"),
    ]
    return recorded


def test_the_list_shows_each_pipeline_with_its_counts_and_last_event(
    client: TestClient, events: list[LoopEvent]
) -> None:
    data = get_json(client, "/loop")
    assert [p["pipeline"] for p in data["pipelines"]] == ["other-pipe", "churn-pipe"]  # newest event first
    other, churn = data["pipelines"]
    assert (other["events"], other["model"], other["counts"]) == (1, None, {"tick": 1})
    assert churn["events"] == 6 and churn["model"] == "toy"
    assert churn["counts"] == {"tick": 1, "trigger": 1, "retrain": 1, "gate": 1, "request": 1, "error": 1}
    assert churn["last"]["id"] == events[5].id and churn["last"]["reason"] == "retrain failed: <b>boom</b>"
    assert data["pagination"] == {"page": 1, "per_page": 50, "total": 2, "pages": 1}
    assert "pipeline" not in data

    one = get_json(client, "/loop?per_page=1&page=2")
    assert [p["pipeline"] for p in one["pipelines"]] == ["churn-pipe"]
    assert one["pagination"]["pages"] == 2

    page = client.get("/ui/loop")
    assert page.status_code == 200
    assert 'href="/ui/loop/churn-pipe"' in page.text and 'href="/ui/models/toy"' in page.text
    assert "retrain failed: &lt;b&gt;boom&lt;/b&gt;" in page.text and "<b>boom" not in page.text
    assert "class=active" in page.text and ">Loop</a>" in page.text


def test_a_pipelines_timeline_holds_every_reason_of_a_gate_verdict(client: TestClient, events: list[LoopEvent]) -> None:
    data = get_json(client, "/loop/churn-pipe")
    assert (data["name"], data["model"], data["events_total"]) == ("churn-pipe", "toy", 6)
    assert [e["id"] for e in data["events"]] == [e.id for e in reversed(events[:6])]
    gate = next(e for e in data["events"] if e["kind"] == "gate")
    assert gate["details"] == gate_details()
    assert gate["reasons"] == [
        "kept v1: challenger v2 below the margin",
        "challenger v2 did not beat the champion by 0.01",
        "keep the champion on accuracy: champion 0.8, challenger 0.81 (min improvement 0.01)",
        "check margin on accuracy (margin) FAILED: challenger 0.81 vs champion 0.80",
        "check latency budget (budget) passed: p99 3 ms within 10 ms",
        "check golden predictions (infra) skipped: no golden rows stored",
        "contender v2 challenger: score 0.81, rank 1",
        "contender v1 champion: score 0.8, rank 2 (served)",
    ]
    assert [e["reasons"] for e in data["events"] if e["kind"] == "trigger"] == [["drift in x (PSI 0.4)"]]
    assert {(c["kind"], c["reason"]) for c in data["chart"]} >= {("request", events[4].reason)}
    assert len(data["chart"]) == 6

    page = client.get("/ui/loop/churn-pipe")
    assert page.status_code == 200
    for reason in gate["reasons"][2:]:
        assert reason in page.text
    assert "check margin on accuracy (margin) FAILED" in page.text
    found = re.search(r'<script type="application/json" id="loop-timeline-option">(.*?)</script>', page.text)
    assert found
    option = json.loads(found.group(1))
    assert option["xAxis"]["type"] == "time" and option["yAxis"]["type"] == "category"
    assert option["yAxis"]["data"] == sorted(data["counts"])
    gate_series = next(s for s in option["series"] if s["name"] == "gate")
    assert gate_series["type"] == "scatter" and gate_series["data"][0][:2] == [events[3].at.isoformat(), "gate"]
    # markup in reasons and details is shown as text
    assert "&lt;b&gt;boom&lt;/b&gt;" in page.text and "<b>boom" not in page.text and "<i>E</i>" not in page.text


def test_the_audit_trail_of_the_model_is_beside_the_events(
    client: TestClient, ui_store: Store, events: list[LoopEvent]
) -> None:
    ui_store.models.promote("toy", 2, "better on the holdout")
    ui_store.models.rollback("toy", "<script>worse</script> in production")
    data = get_json(client, "/loop/churn-pipe")
    audit = data["audit"]
    history = ui_store.models.history("toy")
    assert [a["id"] for a in audit] == [e.id for e in reversed(history)]
    assert audit[0]["action"] == "rollback" and audit[0]["reason"] == "<script>worse</script> in production"
    assert (audit[1]["action"], audit[1]["to_version"]) == ("promote", 2)
    page = client.get("/ui/loop/churn-pipe")
    assert "&lt;script&gt;worse&lt;/script&gt; in production" in page.text and "<script>worse" not in page.text
    assert get_json(client, "/loop/other-pipe")["audit"] == []


def test_the_kind_filter_and_pagination(client: TestClient, events: list[LoopEvent]) -> None:
    gates = get_json(client, "/loop/churn-pipe?kind=gate")
    assert [e["id"] for e in gates["events"]] == [events[3].id]
    assert gates["kind"] == ["gate"] and gates["pagination"]["total"] == 1 and len(gates["chart"]) == 1
    both = get_json(client, "/loop/churn-pipe?kind=trigger,error")
    assert [e["kind"] for e in both["events"]] == ["error", "trigger"]

    second = get_json(client, "/loop/churn-pipe?per_page=2&page=2")
    assert [e["id"] for e in second["events"]] == [events[3].id, events[2].id]
    assert second["pagination"] == {"page": 2, "per_page": 2, "total": 6, "pages": 3}
    page = client.get("/ui/loop/churn-pipe?per_page=2&page=2&kind=gate,retrain,trigger,tick")
    assert "page 2 of 2" in page.text
    assert 'href="/ui/loop/churn-pipe?kind=gate%2Cretrain%2Ctrigger%2Ctick&amp;page=1"' in page.text

    chosen = get_json(client, "/loop?pipeline=churn-pipe&kind=request")
    assert [p["pipeline"] for p in chosen["pipelines"]] == ["other-pipe", "churn-pipe"]
    assert [e["id"] for e in chosen["pipeline"]["events"]] == [events[4].id]
    shown = client.get("/ui/loop?pipeline=churn-pipe")
    assert shown.status_code == 200 and "Pipeline churn-pipe" in shown.text and 'id="events"' in shown.text
    assert 'href="/ui/loop?pipeline=churn-pipe&amp;kind=gate"' in shown.text


def test_unknown_pipelines_and_bad_parameters(client: TestClient, events: list[LoopEvent]) -> None:
    for path, status, names in [
        ("/loop/nosuch", 404, "loopline loop"),
        ("/loop?pipeline=nosuch", 404, "nosuch"),
        ("/loop/churn-pipe?kind=bogus", 400, "kind"),
        ("/loop/churn-pipe?kind=,", 400, "kind"),
        ("/loop/churn-pipe?page=x", 400, "page"),
        ("/loop?per_page=100000", 400, "per_page"),
    ]:
        answer = client.get(f"/api{path}")
        assert answer.status_code == status, (path, answer.text)
        assert names in answer.text, (path, answer.text)
        assert client.get(f"/ui{path}").status_code == status


def test_an_empty_store_says_how_the_loop_records_events(client: TestClient) -> None:
    assert get_json(client, "/loop") == {
        "pipelines": [],
        "pagination": {"page": 1, "per_page": 50, "total": 0, "pages": 1},
    }
    assert "loopline loop PIPELINE --once" in client.get("/ui/loop").text


def test_the_retrain_request_form_is_for_the_admin_and_records_a_request(
    client: TestClient, events: list[LoopEvent]
) -> None:
    assert "/ui/actions/retrain" not in client.get("/ui/loop/churn-pipe").text
    csrf = sign_in(client)
    page = client.get("/ui/loop/churn-pipe").text
    assert 'action="/ui/actions/retrain"' in page and 'name="pipeline" value="churn-pipe"' in page
    assert "data-confirm=" in page
    done = client.post("/ui/actions/retrain", data={"csrf": csrf, "pipeline": "churn-pipe", "reason": "new data"})
    assert done.status_code in (200, 303), done.text
    newest = get_json(client, "/loop/churn-pipe?kind=request")["events"][0]
    assert newest["reason"].startswith("new data (by ui:") and newest["id"] > events[-1].id


def test_every_link_resolves(client: TestClient, events: list[LoopEvent]) -> None:
    start = ["/ui/loop", "/ui/loop/churn-pipe", "/ui/loop?pipeline=churn-pipe&per_page=2"]
    seen, others = crawl(client, start, ("/ui/loop", "/ui/monitoring"))
    assert any("kind=" in p for p in seen) and any("page=2" in p for p in seen)
    assert "/ui/monitoring/toy" in seen and "/ui/models/toy" in others


def test_the_store_lists_pipelines_and_pages_events(ui_store: Store, events: list[LoopEvent]) -> None:
    loops = LoopStore(ui_store.engine)
    assert loops.pipeline_count() == 2
    assert [p.pipeline for p in loops.pipelines(limit=1)] == ["other-pipe"]
    assert [p.pipeline for p in loops.pipelines(limit=1, offset=1)] == ["churn-pipe"]
    assert loops.pipelines(offset=2) == []
    churn = loops.pipeline("churn-pipe")
    assert churn is not None and churn.last == events[5] and churn.model == "toy" and churn.events == 6
    assert loops.pipeline("nosuch") is None
    assert loops.count("churn-pipe") == 6 and loops.count("churn-pipe", kinds=("gate", "tick")) == 2
    assert loops.count("nosuch") == 0
    assert [e.id for e in loops.events("churn-pipe", limit=2, offset=1)] == [events[4].id, events[3].id]


def test_a_pipeline_named_with_markup_or_a_slash_links_through_the_query(client: TestClient, ui_store: Store) -> None:
    odd = "odd name/<b>x</b>"
    LoopStore(ui_store.engine).record(odd, "request", "requested")
    page = client.get("/ui/loop")
    assert 'href="/ui/loop?pipeline=odd+name%2F%3Cb%3Ex%3C%2Fb%3E"' in page.text
    assert "odd name/&lt;b&gt;x&lt;/b&gt;" in page.text and "<b>x</b>" not in page.text
    shown = client.get("/ui/loop?pipeline=odd+name%2F%3Cb%3Ex%3C%2Fb%3E")
    assert shown.status_code == 200 and "<b>x</b>" not in shown.text
    assert get_json(client, "/loop?pipeline=odd+name%2F%3Cb%3Ex%3C%2Fb%3E")["pipeline"]["name"] == odd
