"""The loop: the pipelines whose loop service recorded events, and one pipeline's decisions with every reason.

``/loop`` lists the pipelines (the one with the newest event first) with their event counts and last event;
``/loop/{pipeline}`` (or ``/loop?pipeline=``) shows that pipeline's events newest first, paginated and filtered
by ``?kind=`` (a gate verdict with all its checks and contenders), a chart of them over time (one row per kind),
the audit trail of the model it monitors, and, for the admin, the form that requests a retrain.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from loopline.ui._html import Markup, badge, chart, form, join, link, pager, query_url, section, table, tag
from loopline.ui._page import PER_PAGE, Data, Page, Pagination, Params, UIError, View

if TYPE_CHECKING:
    from loopline.store import Store
    from loopline.store.loop import LoopEvent, LoopStore

CHART_EVENTS = 300
"""The newest events the timeline chart draws."""
AUDIT_SHOWN = 50
"""The newest changes of the model's audit trail shown beside the events."""
DETAIL_CHARS = 400
KIND_TONES = {"error": "bad", "rollback": "bad", "promotion": "good", "gate": "warn", "trigger": "warn"}


def _loops(store: Store) -> LoopStore:
    from loopline.store.loop import LoopStore

    return LoopStore(store.engine)


# -- the list ------------------------------------------------------------------------------------------------


def loop_data(store: Store, params: Params) -> Data:
    """The pipelines with loop events (a page of them); with ``?pipeline=``, that pipeline's timeline too (the
    page number then pages its events, and the list shows its first page)."""
    chosen = params.text("pipeline")
    listed = params.pagination() if chosen is None else Pagination(1, PER_PAGE)
    loops = _loops(store)
    data: Data = {
        "pipelines": [p.to_dict() for p in loops.pipelines(limit=listed.per_page, offset=listed.offset)],
        "pagination": listed.describe(loops.pipeline_count()),
    }
    if chosen is not None:
        data["pipeline"] = pipeline_data(store, params)
    return data


def render_loop(data: Data, view: View) -> Markup:
    """The pipelines table; the chosen pipeline's timeline under it."""
    rows = [
        [
            link(pipeline_url(view, p["pipeline"]), p["pipeline"]),
            link(view.url(f"/models/{p['model']}"), p["model"]) if p["model"] else None,
            p["events"],
            join(
                (badge(f"{kind} {n}", KIND_TONES.get(kind, "neutral")) for kind, n in sorted(p["counts"].items())), " "
            ),
            Markup(f"{badge(p['last']['kind'], KIND_TONES.get(p['last']['kind'], 'neutral'))} {_short(p['last'])}"),
            p["last"]["at"][:19],
        ]
        for p in data["pipelines"]
    ]
    listing = table(
        ["pipeline", "model", "events", "by kind", "last event", "at"],
        rows,
        id_="pipelines",
        empty="No loop event yet: run a pipeline's loop with `loopline loop PIPELINE --once`.",
    )
    if data.get("pipeline"):
        chosen = data["pipeline"]
        return join(
            [listing, section(f"Pipeline {chosen['name']}", render_pipeline(chosen, view, base=view.url("/loop")))]
        )
    info = data["pagination"]
    return join([listing, pager(view.url("/loop"), {}, info["page"], info["pages"])])


def pipeline_url(view: View, name: str) -> str:
    """``/loop/NAME``, or ``/loop?pipeline=NAME`` for a name that is not one path segment as it is (a request
    from the dashboard may name any pipeline)."""
    plain = re.fullmatch(r"[A-Za-z0-9_.-]+", name) is not None and name not in (".", "..")
    return view.url(f"/loop/{name}") if plain else query_url(view.url("/loop"), {"pipeline": name})


def _short(event: Data) -> Markup:
    reason = str(event["reason"])
    return tag("span", reason if len(reason) <= 120 else reason[:119] + "…", title=reason)


# -- one pipeline --------------------------------------------------------------------------------------------


def pipeline_data(store: Store, params: Params) -> Data:
    """One pipeline's events, newest first (``?kind=`` one kind or several, comma-separated; paginated), their
    newest :data:`CHART_EVENTS` for the chart, its counts by kind, and its model's audit trail."""
    name = params.required("pipeline")
    loops = _loops(store)
    summary = loops.pipeline(name)
    if summary is None:
        raise UIError(
            404,
            f"pipeline {name[:200]!r} has no loop event.",
            hint="Run its loop with `loopline loop PIPELINE --once`; /loop lists the pipelines that have events.",
        )
    kinds = _kinds(params)
    pagination = params.pagination()
    events = loops.events(name, limit=pagination.per_page, offset=pagination.offset, kinds=kinds)
    charted = loops.events(name, limit=CHART_EVENTS, kinds=kinds)
    return {
        "name": name,
        "model": summary.model,
        "counts": summary.counts,
        "events_total": summary.events,
        "kind": None if kinds is None else list(kinds),
        "events": [_event(e) for e in events],
        "pagination": pagination.describe(loops.count(name, kinds=kinds)),
        "chart": [{"at": e.at.isoformat(), "kind": e.kind, "reason": e.reason[:200]} for e in charted],
        "audit": _audit(store, summary.model),
    }


def _kinds(params: Params) -> tuple[str, ...] | None:
    """``?kind=`` as a tuple of known kinds (400 naming the parameter and the kinds for another)."""
    from loopline.store.loop import LOOP_EVENT_KINDS

    given = params.text("kind")
    if given is None:
        return None
    kinds = tuple(dict.fromkeys(k.strip() for k in given.split(",") if k.strip()))
    unknown = [k for k in kinds if k not in LOOP_EVENT_KINDS]
    if unknown or not kinds:
        raise UIError(
            400,
            f"the parameter 'kind' must name loop event kinds, not {given[:80]!r}.",
            hint=f"Use one or more of: {', '.join(LOOP_EVENT_KINDS)} (comma-separated).",
        )
    return kinds


def _event(event: LoopEvent) -> Data:
    return {**event.to_dict(), "reasons": reasons(event.kind, event.reason, event.details)}


def reasons(kind: str, reason: str, details: Mapping[str, Any]) -> list[str]:
    """Every reason an event holds: its own, and for a gate verdict the decision's, the comparison, each check
    of the deployment gate (passed, failed or skipped, and why) and each contender's score."""
    from loopline.core.records import GateDecision

    found = [reason]
    gate = details.get("gate") if kind == "gate" else None
    if not isinstance(gate, Mapping):
        return found
    decision = GateDecision.from_dict(gate)
    if decision.reason and decision.reason != reason:
        found.append(decision.reason)
    if decision.metric:
        verdict = "promote" if decision.promote else "keep the champion"
        found.append(
            f"{verdict} on {decision.metric}: champion {_num(decision.champion_score)}, challenger "
            f"{_num(decision.challenger_score)} (min improvement {_num(decision.min_improvement)})"
        )
    if decision.verdict is not None:
        for check in decision.verdict.checks:
            state = "skipped" if check.passed is None else "passed" if check.passed else "FAILED"
            found.append(f"check {check.name} ({check.kind}) {state}" + (f": {check.detail}" if check.detail else ""))
    for c in decision.contenders:
        note = f" ({c.note})" if c.note else ""
        found.append(f"contender v{c.version} {c.role}: score {_num(c.score)}, rank {c.rank}{note}")
    return found


def _num(value: float | None) -> str:
    return "—" if value is None or value != value else f"{value:.4g}"


def _audit(store: Store, model: str | None) -> list[Data]:
    """The newest :data:`AUDIT_SHOWN` changes of ``model``'s audit trail, newest first."""
    from loopline.core.errors import NotFoundError

    if model is None:
        return []
    try:
        history = store.models.history(model)
    except NotFoundError:  # the pipeline's model has no version registered yet
        return []
    return [e.to_dict() for e in reversed(history[-AUDIT_SHOWN:])]


def pipeline_title(data: Data) -> str:
    """``Loop · PIPELINE``."""
    return f"Loop · {data['name']}"


def render_pipeline(data: Data, view: View, *, base: str | None = None) -> Markup:
    """The request form, the kind filter, the chart, the events with every reason, the audit trail."""
    name = data["name"]
    page = base or view.url(f"/loop/{name}")
    fixed = {"pipeline": name} if base else {}
    kind = ",".join(data["kind"]) if data["kind"] else None
    parts: list[Any] = [
        tag(
            "p",
            join(
                [
                    "model: ",
                    link(view.url(f"/models/{data['model']}"), data["model"]) if data["model"] else "—",
                    " · ",
                    link(view.url(f"/monitoring/{data['model']}"), "monitoring") if data["model"] else "",
                ]
            ),
        )
    ]
    if view.admin:
        confirm = f"Ask the loop of {name} to retrain at its next tick?"
        parts.append(form(view.action("retrain"), view.csrf, {"pipeline": name}, "request a retrain", confirm=confirm))
    parts.append(_filter(data, page, fixed))
    parts.append(_chart(data))
    rows = [_event_row(e) for e in data["events"]]
    listing = table(["at (UTC)", "event", "reasons", "details"], rows, id_="events", empty="No event of that kind.")
    info = data["pagination"]
    parts.append(section("Events", listing, pager(page, {**fixed, "kind": kind}, info["page"], info["pages"])))
    parts.append(section("Audit trail of the model", _audit_table(data), id_="audit"))
    return tag("div", join(parts), id=f"pipeline-{name}")


def _filter(data: Data, page: str, fixed: dict[str, Any]) -> Markup:
    chosen = set(data["kind"] or ())
    links = [badge("all", "good") if not chosen else link(query_url(page, fixed), "all")]
    for kind, n in sorted(data["counts"].items()):
        label = f"{kind} ({n})"
        links.append(
            badge(label, "good") if chosen == {kind} else link(query_url(page, {**fixed, "kind": kind}), label)
        )
    return tag("p", join(["kind: ", join(links, " ")]), class_="filter")


def _chart(data: Data) -> Markup:
    events = data["chart"]
    if not events:
        return Markup("")
    kinds = sorted({e["kind"] for e in events})
    series = [
        {
            "name": kind,
            "type": "scatter",
            "symbolSize": 10,
            "data": [[e["at"], kind, e["reason"]] for e in events if e["kind"] == kind],
        }
        for kind in kinds
    ]
    option = {
        "title": {"text": f"the newest {len(events)} events"},
        "tooltip": {"trigger": "item"},
        "legend": {"bottom": 0},
        "grid": {"left": 100},
        "xAxis": {"type": "time"},
        "yAxis": {"type": "category", "data": kinds},
        "series": series,
    }
    return chart("loop-timeline", option, height=max(200, 80 + 30 * len(kinds)))


def _event_row(event: Data) -> list[Any]:
    items = join(tag("li", reason) for reason in event["reasons"])
    details = event["details"]
    text = json.dumps(details, sort_keys=True, default=str) if details else ""
    shown = text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"
    return [
        event["at"][:19],
        badge(event["kind"], KIND_TONES.get(event["kind"], "neutral")),
        tag("ul", items, class_="reasons"),
        tag("code", shown, title="the whole record is in the page's JSON (/api)") if shown else None,
    ]


def _audit_table(data: Data) -> Markup:
    rows = [
        [
            e["at"][:19],
            e["action"],
            e["alias"],
            f"v{e['from_version']}" if e["from_version"] is not None else None,
            f"v{e['to_version']}" if e["to_version"] is not None else None,
            e["actor"],
            e["reason"],
        ]
        for e in data["audit"]
    ]
    empty = "No model change recorded." if data["model"] else "The pipeline's events name no model."
    return table(["at (UTC)", "action", "alias", "from", "to", "actor", "reason"], rows, id_="audit-trail", empty=empty)


PAGES = [
    Page("/loop", "Loop", loop_data, render_loop, nav="Loop", order=50),
    Page("/loop/{pipeline}", pipeline_title, pipeline_data, render_pipeline, order=50),
]
