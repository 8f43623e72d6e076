"""Pipelines and runs: the run history (newest first, filtered by pipeline and status) and one run — its DAG
with each step's status, the steps' durations, cache hits, outputs and errors, its parameters and error, and
the command that resumes it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopline.store.runs import RUN_STATUSES, STALE
from loopline.ui._html import Markup, badge, chart, join, link, muted, pager, pairs, query_url, section, table, tag
from loopline.ui._page import PER_PAGE, Data, Page, Params, UIError, View

if TYPE_CHECKING:
    from loopline.store import RunRecord, StepRecord, Store

NOT_RUN = "not run"
"""The status of a pipeline step the run has no record of (never reached, or not yet recorded)."""
STATUS_KINDS = {"succeeded": "good", "cached": "good", "failed": "bad", "running": "warn", STALE: "warn"}
STEP_COLOURS = {"succeeded": "#2e7d32", "cached": "#0288d1", "failed": "#c62828", NOT_RUN: "#9e9e9e"}
RESUMABLE = ("failed", STALE)
_DEPTH_GAP, _ROW_GAP = 200, 80


# -- the run history -----------------------------------------------------------------------------------------
def runs_data(store: Store, params: Params) -> Data:
    """One page of runs, newest first, with their step counts; ``?pipeline=`` and ``?status=`` filter in SQL."""
    pipeline = params.text("pipeline")
    status = _status(params)
    pages = params.pagination()
    records = store.runs.page(offset=pages.offset, limit=pages.per_page, pipeline=pipeline, status=status)
    counts = store.runs.step_counts([r.run_id for r in records])
    return {
        "filters": {"pipeline": pipeline, "status": status},
        "pipelines": store.runs.pipelines(),
        "statuses": list(RUN_STATUSES),
        "pagination": pages.describe(store.runs.count(pipeline=pipeline, status=status)),
        "runs": [_run_row(r, counts[r.run_id]) for r in records],
    }


def _status(params: Params) -> str | None:
    status = params.text("status")
    if status is not None and status not in RUN_STATUSES:
        raise UIError(
            400,
            f"the parameter 'status' must be one of {', '.join(RUN_STATUSES)}, not {status[:40]!r}.",
            hint="Runs whose owner is gone (stale) are stored as running: use ?status=running.",
        )
    return status


def _run_row(record: RunRecord, counts: dict[str, int]) -> Data:
    return {
        "run_id": record.run_id,
        "pipeline": record.pipeline,
        "status": record.status,
        "started_at": record.started_at.isoformat(),
        "finished_at": record.finished_at.isoformat() if record.finished_at else None,
        "duration_s": _duration(record),
        "steps": counts,
        "error": record.error,
    }


def _duration(record: RunRecord) -> float | None:
    if record.finished_at is None:
        return None
    return round((record.finished_at - record.started_at).total_seconds(), 3)


def render_runs(data: Data, view: View) -> Markup:
    """The filters, the runs table and the pager."""
    filters = data["filters"]
    rows = (
        [
            link(view.url(f"/runs/{r['run_id']}"), r["run_id"]),
            link(query_url(view.url("/runs"), {"pipeline": r["pipeline"]}), r["pipeline"]),
            _status_badge(r["status"]),
            r["started_at"][:19].replace("T", " "),
            _seconds(r["duration_s"]),
            r["steps"]["succeeded"],
            r["steps"]["cached"],
            r["steps"]["failed"],
            (r["error"] or "")[:120],
        ]
        for r in data["runs"]
    )
    runs = table(
        ["run", "pipeline", "status", "started", "duration", "done", "cached", "failed", "error"],
        rows,
        id_="runs",
        empty="No run matches." if any(filters.values()) else "No run yet: run a pipeline with `loopline run FILE`.",
    )
    pagination = data["pagination"]
    more = pager(view.url("/runs"), kept(filters, pagination), pagination["page"], pagination["pages"])
    summary = muted(f"{pagination['total']:,} run(s)")
    return join([_filters(data, view), summary, runs, more])


def kept(filters: Data, pagination: Data) -> Data:
    """The query a pager's links keep: the filters, and ``per_page`` unless it is the default."""
    per_page = pagination["per_page"]
    return {**filters, "per_page": None if per_page == PER_PAGE else per_page}


def _filters(data: Data, view: View) -> Markup:
    """Links that set one filter and keep the other."""
    filters = data["filters"]
    base = view.url("/runs")
    by_pipeline = [_filter_link(base, filters, "pipeline", None, "all")]
    by_pipeline += [_filter_link(base, filters, "pipeline", name, name) for name in data["pipelines"]]
    by_status = [_filter_link(base, filters, "status", None, "all")]
    by_status += [_filter_link(base, filters, "status", status, status) for status in data["statuses"]]
    return tag(
        "div",
        join(
            [
                tag("p", join(["pipeline: ", join(by_pipeline, " · ")])),
                tag("p", join(["status: ", join(by_status, " · ")])),
            ]
        ),
        class_="filters",
    )


def _filter_link(base: str, filters: Data, key: str, value: str | None, label: str) -> Markup:
    if filters.get(key) == value:
        return tag("strong", label)
    return link(query_url(base, {**filters, key: value}), label)


# -- one run ---------------------------------------------------------------------------------------------------
def run_data(store: Store, params: Params) -> Data:
    """The run ``{run_id}``: its steps (as recorded, and those of its pipeline it has no record of), the DAG of
    its pipeline, its parameters, error and the command to resume it."""
    record = store.runs.get(params.required("run_id"))
    declared = _declared_steps(record.spec)
    recorded = {s.step: s for s in record.steps}
    names = list(recorded) + [name for name in declared if name not in recorded]
    steps = [_step_row(name, recorded.get(name), declared.get(name)) for name in names]
    return {
        "run_id": record.run_id,
        "pipeline": record.pipeline,
        "pipeline_hash": record.pipeline_hash,
        "pipeline_file": record.pipeline_file,
        "status": record.status,
        "started_at": record.started_at.isoformat(),
        "finished_at": record.finished_at.isoformat() if record.finished_at else None,
        "duration_s": _duration(record),
        "owner": record.owner() if record.status in ("running", STALE) else None,
        "params": record.params,
        "error": record.error,
        "steps": steps,
        "dag": _dag(names, {name: _inputs(declared.get(name)) for name in names}),
        "resume": _resume(record),
    }


def _declared_steps(spec: Any) -> dict[str, dict[str, Any]]:
    """The steps of the pipeline as the run stored it (``Pipeline.to_dict()["steps"]``), by name."""
    found = spec.get("steps") if isinstance(spec, dict) else None
    if not isinstance(found, dict):
        return {}
    return {str(name): step if isinstance(step, dict) else {} for name, step in found.items()}


def _inputs(declared: dict[str, Any] | None) -> list[str]:
    """The steps a declared step takes its inputs from (``step`` or ``step.output``)."""
    refs = (declared or {}).get("inputs") or []
    producers = [str(ref).partition(".")[0] for ref in refs] if isinstance(refs, list) else []
    return list(dict.fromkeys(producers))


def _step_row(name: str, record: StepRecord | None, declared: dict[str, Any] | None) -> Data:
    if record is None:
        step_type = (declared or {}).get("type")
        return {"step": name, "type": str(step_type) if step_type else None, "status": NOT_RUN,
                "inputs": _inputs(declared), "started_at": None, "duration_s": None, "cache_hit": False,
                "attempt": None, "cache_key": None, "outputs": {}, "error": None}  # fmt: skip
    return {
        "step": name,
        "type": record.type,
        "status": record.status,
        "inputs": _inputs(declared),
        "started_at": record.started_at.isoformat(),
        "duration_s": record.duration_s,
        "cache_hit": record.status == "cached",
        "attempt": record.attempt,
        "cache_key": record.cache_key,
        "outputs": record.outputs,
        "error": record.error,
    }


def _dag(names: list[str], inputs: dict[str, list[str]]) -> Data:
    """Nodes laid out by topological depth (a step sits one column right of its deepest input) and the edges
    from each input to the step that takes it."""
    known = set(names)
    edges = [{"source": producer, "target": name} for name in names for producer in inputs[name] if producer in known]
    depth: dict[str, int] = {}

    def depth_of(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name not in depth:
            parents = [p for p in inputs[name] if p in known and p not in seen]
            depth[name] = 1 + max((depth_of(p, seen | {name}) for p in parents), default=-1)
        return depth[name]

    rows: dict[int, int] = {}
    nodes = []
    for name in names:
        column = depth_of(name)
        row = rows.get(column, 0)
        rows[column] = row + 1
        nodes.append({"step": name, "depth": column, "x": column * _DEPTH_GAP, "y": row * _ROW_GAP})
    return {"nodes": nodes, "edges": edges}


def _resume(record: RunRecord) -> Data | None:
    """The command that resumes a failed or stale run (None for one that succeeded or still runs)."""
    if record.status not in RESUMABLE:
        return None
    return {"command": f"loopline run --resume {record.run_id}", "pipeline_file": record.pipeline_file}


def render_run(data: Data, view: View) -> Markup:
    """Facts, the DAG, the steps, the parameters, the error and the resume command."""
    facts = {
        "pipeline": link(query_url(view.url("/runs"), {"pipeline": data["pipeline"]}), data["pipeline"]),
        "status": _status_badge(data["status"]),
        "started": data["started_at"][:19].replace("T", " "),
        "finished": (data["finished_at"] or "")[:19].replace("T", " ") or None,
        "duration": _seconds(data["duration_s"]),
        "pipeline file": data["pipeline_file"],
        "pipeline hash": data["pipeline_hash"][:12],
    }
    if data["owner"]:
        facts["owner"] = data["owner"]
    parts = [pairs(facts)]
    if data["error"]:
        parts.append(section("Error", tag("pre", data["error"], class_="error"), id_="error"))
    if data["resume"]:
        parts.append(_resume_section(data["resume"]))
    parts.append(section("Pipeline", _dag_chart(data), id_="dag"))
    parts.append(section("Steps", _steps_table(data["steps"]), id_="steps"))
    params = pairs(data["params"]) if data["params"] else muted("No parameters.")
    parts.append(section("Parameters", params, id_="params"))
    return join(parts)


def _resume_section(resume: Data) -> Markup:
    where = (
        f"It continues with {resume['pipeline_file']} as it is now (or the config the run stored, if that file "
        "is gone); the steps that succeeded are kept."
        if resume["pipeline_file"]
        else "It continues with the config the run stored (or name a pipeline file after the command); the "
        "steps that succeeded are kept."
    )
    return section("Resume", tag("pre", tag("code", resume["command"])), muted(where), id_="resume")


def _dag_chart(data: Data) -> Markup:
    dag = data["dag"]
    if not dag["nodes"]:
        return muted("The run recorded no step and no pipeline.")
    status = {s["step"]: s for s in data["steps"]}
    nodes = [_node(node, status[node["step"]]) for node in dag["nodes"]]
    rows = 1 + max(node["y"] for node in dag["nodes"]) // _ROW_GAP
    categories = [{"name": name, "itemStyle": {"color": colour}} for name, colour in STEP_COLOURS.items()]
    option = {
        "title": {"text": f"{data['pipeline']}: steps by status", "textStyle": {"fontSize": 13}},
        "tooltip": {"trigger": "item"},
        "legend": {"data": list(STEP_COLOURS), "top": 0, "right": 0},
        "series": [
            {
                "type": "graph",
                "layout": "none",
                "roam": True,
                "top": 60,
                "bottom": 30,
                "left": 80,
                "right": 80,
                "symbol": "roundRect",
                "symbolSize": [120, 36],
                "label": {"show": True, "color": "#fff"},
                "edgeSymbol": ["none", "arrow"],
                "edgeSymbolSize": 9,
                "lineStyle": {"color": "#888", "width": 1.5},
                "categories": categories,
                "data": nodes,
                "links": dag["edges"],
            }
        ],
    }
    return chart("run-dag", option, height=min(100 + _ROW_GAP * rows, 720))


def _node(node: Data, step: Data) -> Data:
    seconds = "" if step["duration_s"] is None else f", {step['duration_s']:.2f} s"
    return {
        "name": node["step"],
        "x": node["x"],
        "y": node["y"],
        "category": list(STEP_COLOURS).index(step["status"]) if step["status"] in STEP_COLOURS else None,
        "itemStyle": {"color": STEP_COLOURS.get(step["status"], "#9e9e9e")},
        "tooltip": {"formatter": f"{node['step']}: {step['status']}{seconds}"},
    }


def _steps_table(steps: list[Data]) -> Markup:
    rows = (
        [
            s["step"],
            s["type"],
            badge(s["status"]) if s["status"] == NOT_RUN else _status_badge(s["status"]),
            s["attempt"],
            _seconds(s["duration_s"]),
            s["cache_hit"],
            _outputs(s["outputs"]),
            tag("pre", s["error"], class_="error") if s["error"] else "",
        ]
        for s in steps
    )
    return table(
        ["step", "type", "status", "attempt", "duration", "cache hit", "outputs", "error"],
        rows,
        id_="steps-table",
        empty="No step recorded.",
    )


def _outputs(outputs: dict[str, Any]) -> Markup:
    """Each output's name, kind and digest (shortened)."""
    return join(
        tag("div", f"{name}: {out.get('kind', '')} {str(out.get('digest', ''))[:12]}") for name, out in outputs.items()
    )


def _status_badge(status: str) -> Markup:
    return badge(status, STATUS_KINDS.get(status, "neutral"))


def _seconds(value: float | None) -> str | None:
    return None if value is None else f"{value:.2f} s"


def _run_title(data: Data) -> str:
    return f"Run {data['run_id'][:12]} of {data['pipeline']}"


PAGES = [
    Page("/runs", "Runs", runs_data, render_runs, nav="Runs", order=10),
    Page("/runs/{run_id}", _run_title, run_data, render_run, order=10),
]
