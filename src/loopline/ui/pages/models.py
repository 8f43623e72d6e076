"""The model repository: every model with its production version and best candidate; a model's versions, the
main metric per version and its audit trail; one version with its metrics per split and slice, parameters,
timings, schema, learning curve and lineage; and two to ten versions side by side.

Every list is one bounded query (a page of versions, the newest versions' metrics, the newest events): a model
with a thousand versions is never loaded whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loopline.ui._html import Markup, badge, chart, escape, form, join, link, muted, pager, pairs, section, table, tag
from loopline.ui._page import Data, Page, Params, UIError, View
from loopline.ui.pages._model_charts import curve_points, curves_chart, metric_chart

if TYPE_CHECKING:
    from loopline.store import ModelVersion, Store

BEST_OF = 100
"""The best candidate is the best of this many newest non-archived versions."""
CHART_VERSIONS = 200
"""The main-metric chart shows this many newest versions."""
EVENTS_SHOWN = 50
COMPARE_MIN, COMPARE_MAX = 2, 10
SPLITS = ("train", "valid", "test")
PREFERRED_METRICS = ("roc_auc", "rmse")
"""The main metric: the first of these a version has, else the first metric with a known direction."""
MISSING = object()
TIMES = ("created_at", "promoted_at", "archived_at")


# --- what the pages share ---------------------------------------------------------------------------------------


def splits_of(metric_sets: Iterable[Mapping[str, Any]]) -> list[str]:
    """The metric keys of ``metric_sets``: train, valid, test, then evaluations and the rest, sorted."""
    keys = {str(key) for metrics in metric_sets for key, value in metrics.items() if isinstance(value, Mapping)}
    return [s for s in SPLITS if s in keys] + sorted(keys - set(SPLITS))


def main_metric(metric_sets: Sequence[Mapping[str, Any]]) -> Data | None:
    """``{"split", "metric", "higher_is_better"}``: the metric versions are ranked by (valid, else test, else
    the first split; roc_auc, else rmse, else the first with a known direction), or None."""
    from loopline.bundle import METRIC_DIRECTION

    splits = splits_of(metric_sets)
    split = next((s for s in ("valid", "test") if s in splits), splits[0] if splits else None)
    if split is None:
        return None
    names = sorted({str(m) for metrics in metric_sets for m in (metrics.get(split) or {})})
    known = [m for m in names if m in METRIC_DIRECTION]
    metric = next((m for m in PREFERRED_METRICS if m in names), known[0] if known else None)
    if metric is None:
        return None
    return {"split": split, "metric": metric, "higher_is_better": METRIC_DIRECTION[metric]}


def metric_of(metrics: Mapping[str, Any], main: Data | None) -> float | None:
    """The main metric's value in ``metrics`` (None: not recorded, or not a number)."""
    if main is None:
        return None
    value = (metrics.get(main["split"]) or {}).get(main["metric"])
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def best_of(rows: Sequence[Mapping[str, Any]], main: Data | None) -> Data | None:
    """The row (``version``, ``metrics``) with the best main metric: ``{"version", "value", ...main}``."""
    scored = [(value, row["version"]) for row in rows if (value := metric_of(row["metrics"], main)) is not None]
    if main is None or not scored:
        return None
    sign = -1 if main["higher_is_better"] else 1
    value, version = min(scored, key=lambda item: (sign * item[0], -item[1]))
    return {"version": version, "value": value, **main}


def iso(value: datetime | None) -> str | None:
    """A time as ISO 8601 text (None stays None)."""
    return None if value is None else value.isoformat()


def version_row(found: ModelVersion) -> Data:
    """What every list shows of a version."""
    return {
        "version": found.version,
        "algorithm": found.algorithm,
        "stage": found.stage,
        "aliases": list(found.aliases),
        "metrics": found.metrics,
        "data_fingerprint": found.data_fingerprint,
        "run_id": found.run_id,
        "created_at": iso(found.created_at),
        "promoted_at": iso(found.promoted_at),
        "archived_at": iso(found.archived_at),
    }


def stage_badges(stage: str, aliases: Iterable[str]) -> Markup:
    """The version's stage and its aliases as badges."""
    kind = {"production": "good", "archived": "warn"}.get(stage, "neutral")
    shown = [badge(stage, kind)] + [badge(f"@{alias}") for alias in aliases if alias != "production"]
    return join(shown, " ")


def _short(value: str | None) -> str | None:
    return None if value is None else value[:19].replace("T", " ")


# --- /models -------------------------------------------------------------------------------------------------


def repository_data(store: Store, params: Params) -> Data:
    """One page of model names with their production version, aliases, counts and best candidate."""
    pagination = params.pagination()
    total = store.models.count_names()
    models = []
    for row in store.models.summaries(pagination.offset, pagination.per_page):
        rows = store.models.metric_rows(row["name"], BEST_OF, archived=False)
        best = best_of(rows, main_metric([r["metrics"] for r in rows]))
        models.append(
            {
                "name": row["name"],
                "production": row["aliases"].get("production"),
                "aliases": row["aliases"],
                "versions": row["versions"],
                "archived": row["archived"],
                "latest_version": row["latest_version"],
                "last_registered": iso(row["last_registered"]),
                "best": best,
            }
        )
    return {"models": models, "pagination": pagination.describe(total)}


def render_repository(data: Data, view: View) -> Markup:
    """The models table."""
    if not data["pagination"]["total"]:
        return muted("No model yet: a pipeline's train step registers versions (loopline run PIPELINE).")
    rows = [
        [
            link(view.url(f"/models/{m['name']}"), m["name"]),
            _version_link(view, m["name"], m["production"]),
            _aliases(view, m["name"], m["aliases"]),
            m["versions"],
            m["archived"],
            _best_cell(view, m["name"], m["best"]),
            _short(m["last_registered"]),
        ]
        for m in data["models"]
    ]
    headers = ["model", "production", "aliases", "versions", "archived", f"best of {BEST_OF} newest", "last registered"]
    paging = data["pagination"]
    return join([table(headers, rows, id_="models"), pager(view.url("/models"), {}, paging["page"], paging["pages"])])


def _version_link(view: View, name: str, version: int | None) -> Markup | None:
    return None if version is None else link(view.url(f"/models/{name}/{version}"), f"v{version}")


def _aliases(view: View, name: str, aliases: Mapping[str, int]) -> Markup:
    return join((link(view.url(f"/models/{name}/{v}"), f"@{a} → v{v}") for a, v in sorted(aliases.items())), " ")


def _best_cell(view: View, name: str, best: Data | None) -> Markup | None:
    if best is None:
        return None
    label = f"{best['split']} {best['metric']} {escape(best['value'])}"
    return Markup(f"{_version_link(view, name, best['version'])} {escape(label)}")


# --- /models/{name} ------------------------------------------------------------------------------------------


def model_data(store: Store, params: Params) -> Data:
    """A model's versions (one page, newest first), its main metric per version and its newest events."""
    name = params.required("name")
    aliases = store.models.aliases(name)  # NotFoundError (404) for an unknown model
    include = params.integer("archived", 0, maximum=1) == 1
    pagination = params.pagination()
    counts = {"active": store.models.count(name), "all": store.models.count(name, archived=True)}
    total = counts["all"] if include else counts["active"]
    listed = store.models.listing(name, pagination.offset, pagination.per_page, archived=include)
    versions = [{**row, **{key: iso(row[key]) for key in TIMES}} for row in listed]
    newest = store.models.metric_rows(name, CHART_VERSIONS)
    main = main_metric([r["metrics"] for r in newest])
    series = [
        {"version": r["version"], "value": metric_of(r["metrics"], main), "created_at": iso(r["created_at"])}
        for r in reversed(newest)
    ]
    return {
        "name": name,
        "production": aliases.get("production"),
        "aliases": aliases,
        "archived_included": include,
        "counts": counts,
        "main_metric": main,
        "best": best_of([r for r in newest if r["stage"] != "archived"], main),
        "splits": splits_of(v["metrics"] for v in versions),
        "versions": versions,
        "pagination": pagination.describe(total),
        "metric_series": series,
        "events": [e.to_dict() for e in store.models.latest_history(name, EVENTS_SHOWN)],
    }


def render_model(data: Data, view: View) -> Markup:
    """Facts and actions, the main metric chart, the versions table, the audit trail."""
    name, main = data["name"], data["main_metric"]
    facts = {
        "production": _version_link(view, name, data["production"]) or "none",
        "aliases": _aliases(view, name, data["aliases"]) or "none",
        "versions": f"{data['counts']['all']:,} ({data['counts']['all'] - data['counts']['active']:,} archived)",
        "main metric": f"{main['split']} {main['metric']} ({'higher' if main['higher_is_better'] else 'lower'} is "
        "better)"
        if main
        else None,
        f"best of the {BEST_OF} newest candidates": _best_cell(view, name, data["best"]),
    }
    parts = [pairs(facts), _model_actions(data, view)]
    if main is not None and any(p["value"] is not None for p in data["metric_series"]):
        parts.append(chart("metric-per-version", metric_chart(data["metric_series"], main)))
    parts += [section("Versions", *_versions(data, view), id_="versions"), _events(data, view)]
    return join(parts)


def _model_actions(data: Data, view: View) -> Markup:
    if not view.admin or data["production"] is None:
        return Markup("")
    name = data["name"]
    return form(view.action("rollback"), view.csrf, {"model": name}, "roll back", confirm=f"Roll {name} back?")


def _versions(data: Data, view: View) -> list[Markup]:
    name, main = data["name"], data["main_metric"]
    metric = main["metric"] if main else None
    headers = ["version", "algorithm", "stage", *[f"{s} {metric or ''}".strip() for s in data["splits"]], "created"]
    headers += ["promoted", "archived"] + (["action"] if view.admin else [])
    rows = []
    for v in data["versions"]:
        values = [(v["metrics"].get(split) or {}).get(metric) if metric else None for split in data["splits"]]
        row = [
            link(view.url(f"/models/{name}/{v['version']}"), f"v{v['version']}"),
            v["algorithm"],
            stage_badges(v["stage"], v["aliases"]),
            *values,
            _short(v["created_at"]),
            _short(v["promoted_at"]),
            _short(v["archived_at"]),
        ]
        if view.admin:
            row.append(_promote_form(name, v, view))
        rows.append(row)
    paging = data["pagination"]
    query = {"archived": 1} if data["archived_included"] else {}
    toggle = (
        link(view.url(f"/models/{name}"), "hide archived versions")
        if data["archived_included"]
        else link(view.url(f"/models/{name}?archived=1"), "show archived versions")
    )
    return [
        tag("p", join([toggle, " · ", _compare_form(name, data["versions"], view)])),
        table(headers, rows, id_="versions-table", empty="No version to list."),
        pager(view.url(f"/models/{name}"), query, paging["page"], paging["pages"]),
    ]


def _promote_form(name: str, version: Data, view: View) -> Markup:
    if version["stage"] == "production":
        return Markup("")
    number = version["version"]
    fields = {"model": name, "version": number}
    return form(view.action("promote"), view.csrf, fields, "promote", confirm=f"Put {name} v{number} in production?")


def _compare_form(name: str, versions: Sequence[Data], view: View) -> Markup:
    """A GET form to the comparison, filled with this page's newest versions (up to five)."""
    shown = ",".join(str(v["version"]) for v in versions[:5])
    return Markup(
        f'<form method="get" action="{escape(view.url(f"/models/{name}/compare"))}" class="inline">'
        f'<label>compare versions <input type="text" name="versions" value="{escape(shown)}" '
        f'pattern="[0-9, ]+" size="16"></label> <button type=submit>compare</button></form>'
    )


def _events(data: Data, view: View) -> Markup:
    name = data["name"]
    rows = [
        [
            _short(e["at"]),
            badge(e["action"]),
            e["alias"],
            _version_link(view, name, e["from_version"]) if e["action"] != "gc" else e["from_version"],
            _version_link(view, name, e["to_version"]),
            e["actor"],
            e["reason"],
        ]
        for e in data["events"]
    ]
    headers = ["at (UTC)", "action", "alias", "from", "to", "who", "why"]
    note = muted(f"The {EVENTS_SHOWN} newest events (loopline models history {name} lists all).")
    return section("Audit trail", table(headers, rows, id_="events", empty="No transition yet."), note, id_="audit")


# --- /models/{name}/{version} --------------------------------------------------------------------------------


def version_data(store: Store, params: Params) -> Data:
    """One version: metrics per split and slice, parameters, timings, schema, learning curve, lineage."""
    from loopline.core.records import Timings

    name = params.required("name")
    found = store.models.get(name, params.integer("version", minimum=1))
    trained = found.typed_config
    timings = Timings.from_dict(found.timings)
    training = None if timings.training is None else timings.training.to_dict()
    curve = None if training is None else training.pop("learning_curve", None)
    phases = {key: value for key, value in timings.to_dict().items() if key != "training"}
    return {
        **version_row(found),
        "splits": splits_of([found.metrics]),
        "slices": _slices(trained.slice_metrics),
        "params": found.params,
        "timings": phases,
        "training": training,
        "learning_curve": curve_points(curve),
        "input_schema": found.input_schema,
        "target": trained.target,
        "task": trained.task,
        "rows": trained.rows,
        "importance": None if trained.importance is None else dict(trained.importance.ranked()[:30]),
        "bundle_digest": found.bundle_digest,
        "lineage": _lineage(store, found),
        "name": name,
    }


def _slices(slices: Any) -> list[Data]:
    if slices is None:
        return []
    return [
        {
            "split": split,
            "column": column,
            "values": [{"value": value, "rows": s.rows, "metrics": s.metrics} for value, s in by_value.items()],
        }
        for split, column, by_value in slices.tables()
    ]


def _lineage(store: Store, found: ModelVersion) -> Data:
    """The run that trained the version, the dataset versions it read and the aliases pointing here."""
    from loopline.core.errors import LooplineError
    from loopline.run import data_versions

    run_found, datasets = False, []
    if found.run_id is not None:
        try:
            datasets = [
                {key: item.get(key) for key in ("dataset", "version", "rows", "checksum")}
                for item in data_versions(store, found.run_id)
            ]
            run_found = True
        except LooplineError:  # the run was pruned, or an artifact is gone: show what is known
            run_found = False
    return {
        "run_id": found.run_id,
        "run_found": run_found,
        "datasets": datasets,
        "data_fingerprint": found.data_fingerprint,
        "aliases": list(found.aliases),
    }


def version_title(data: Data) -> str:
    """``NAME v3``."""
    return f"{data['name']} v{data['version']}"


def render_version(data: Data, view: View) -> Markup:
    """Summary and lineage, metrics, slices, learning curve, parameters, timings, schema."""
    name = data["name"]
    summary = {
        "stage": stage_badges(data["stage"], data["aliases"]),
        "algorithm": data["algorithm"],
        "task": data["task"],
        "target": data["target"],
        "created": _short(data["created_at"]),
        "promoted": _short(data["promoted_at"]),
        "archived": _short(data["archived_at"]),
        "bundle": tag("code", data["bundle_digest"][:16]),
    }
    parts = [
        pairs(summary),
        tag("p", link(view.url(f"/models/{name}"), f"all versions of {name}")),
        _version_actions(data, view),
        section("Lineage", _lineage_view(data, view), id_="lineage"),
        section("Metrics", _metrics_table(data), id_="metrics"),
    ]
    if data["slices"]:
        parts.append(section("Metrics per slice", *_slice_tables(data["slices"]), id_="slices"))
    if data["learning_curve"]:
        title = f"learning curve ({(data['training'] or {}).get('metric') or 'loss'})"
        parts.append(section("Learning curve", chart("learning-curve", curves_chart(title, data["learning_curve"]))))
    parts += [
        section("Parameters", pairs(data["params"]) if data["params"] else muted("none recorded"), id_="params"),
        section("Timings", pairs({**data["timings"], **(data["training"] or {})}), id_="timings"),
        section("Input schema", _schema(data["input_schema"]), id_="schema"),
    ]
    if data["importance"]:
        parts.append(section("Feature importance", table(["feature", "weight"], data["importance"].items())))
    return join(parts)


def _version_actions(data: Data, view: View) -> Markup:
    if not view.admin or data["stage"] == "production":
        return Markup("")
    return _promote_form(data["name"], data, view)


def _lineage_view(data: Data, view: View) -> Markup:
    lineage = data["lineage"]
    run_id = lineage["run_id"]
    if run_id is None:
        run: Any = "registered outside a run"
    elif lineage["run_found"]:
        run = link(view.url(f"/runs/{run_id}"), run_id)
    else:
        run = f"{run_id} (no longer in the store)"
    datasets = join(
        (link(view.url(f"/datasets/{d['dataset']}"), f"{d['dataset']} v{d['version']}") for d in lineage["datasets"]),
        ", ",
    )
    name = data["name"]
    aliases = join((f"@{alias}" for alias in lineage["aliases"]), ", ")
    return pairs(
        {
            "dataset versions": datasets or "none recorded",
            "data fingerprint": tag("code", lineage["data_fingerprint"]),
            "run": run,
            "model": link(view.url(f"/models/{name}"), name),
            "aliases here": aliases or "none",
        }
    )


def _metrics_table(data: Data) -> Markup:
    splits = data["splits"]
    metrics = data["metrics"]
    names = sorted({m for s in splits for m in metrics[s]})
    rows = [[m, *[metrics[s].get(m) for s in splits]] for m in names]
    return table(["metric", *splits], rows, id_="metrics-table", empty="No metric recorded.")


def _slice_tables(slices: list[Data]) -> list[Markup]:
    out = []
    for item in slices:
        names = sorted({m for v in item["values"] for m in v["metrics"]})
        rows = [[v["value"], v["rows"], *[v["metrics"].get(m) for m in names]] for v in item["values"]]
        out.append(tag("h3", f"{item['split']} by {item['column']}"))
        out.append(table([item["column"], "rows", *names], rows))
    return out


def _schema(schema: list[dict[str, Any]]) -> Markup:
    rows = [[f.get("name"), f.get("dtype"), f.get("nullable"), f.get("train_dtype")] for f in schema]
    return table(["field", "type", "nullable", "training type"], rows, id_="schema-table", empty="none recorded")


# --- /models/{name}/compare ----------------------------------------------------------------------------------


def compare_data(store: Store, params: Params) -> Data:
    """Two to ten versions side by side: metrics, parameters (differences marked), data, learning curves."""
    from loopline.core.records import Timings

    name = params.required("name")
    numbers = parse_versions(params.required("versions"))
    found = [store.models.get(name, number) for number in numbers]  # NotFoundError (404) names the version
    splits = splits_of(v.metrics for v in found)
    metrics = []
    for split in splits:
        for metric in sorted({m for v in found for m in (v.metrics.get(split) or {})}):
            values = [(v.metrics.get(split) or {}).get(metric) for v in found]
            metrics.append({"split": split, "metric": metric, "values": values, "best": _best_index(metric, values)})
    params_rows = []
    for key in sorted({k for v in found for k in v.params}):
        values = [v.params.get(key, MISSING) for v in found]
        differs = any(value != values[0] for value in values)
        params_rows.append({"param": key, "values": [None if x is MISSING else x for x in values], "differs": differs})
    curves = []
    for v in found:
        training = Timings.from_dict(v.timings).training
        points = curve_points(None if training is None else training.learning_curve)
        if points:
            curves.append({"version": v.version, "curve": points})
    return {
        "name": name,
        "versions": [{**version_row(v), "lineage": _lineage(store, v)} for v in found],
        "metrics": metrics,
        "params": params_rows,
        "learning_curves": curves,
    }


def parse_versions(text: str) -> list[int]:
    """``"3,5,7"`` as distinct version numbers, 2 to 10 of them; a 400 naming ``versions`` otherwise."""
    hint = "Give two to ten version numbers separated by commas: ?versions=3,5,7."
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        raise UIError(
            400, f"the parameter 'versions' must list version numbers, not {text[:40]!r}.", hint=hint
        ) from None
    if any(n < 1 for n in numbers) or len(set(numbers)) != len(numbers):
        raise UIError(
            400, f"the parameter 'versions' must list distinct positive versions, not {text[:40]!r}.", hint=hint
        )
    if not COMPARE_MIN <= len(numbers) <= COMPARE_MAX:
        raise UIError(
            400, f"the parameter 'versions' must name {COMPARE_MIN} to {COMPARE_MAX} versions, not {len(numbers)}.",
            hint=hint,
        )  # fmt: skip
    return numbers


def _best_index(metric: str, values: Sequence[Any]) -> int | None:
    from loopline.bundle import METRIC_DIRECTION

    numbers = [(v, i) for i, v in enumerate(values) if isinstance(v, int | float) and not isinstance(v, bool)]
    if metric not in METRIC_DIRECTION or len(numbers) < 2:
        return None
    sign = -1 if METRIC_DIRECTION[metric] else 1
    return min(numbers, key=lambda item: (sign * item[0], item[1]))[1]


def compare_title(data: Data) -> str:
    """``NAME: v3 vs v5 vs v7``."""
    return f"{data['name']}: " + " vs ".join(f"v{v['version']}" for v in data["versions"])


def render_compare(data: Data, view: View) -> Markup:
    """Summary per version, metrics (best marked), parameters (differences marked), learning curves."""
    name, versions = data["name"], data["versions"]
    heads = ["", *[f"v{v['version']}" for v in versions]]
    summary = [
        ["version", *[link(view.url(f"/models/{name}/{v['version']}"), f"v{v['version']}") for v in versions]],
        ["stage", *[stage_badges(v["stage"], v["aliases"]) for v in versions]],
        ["algorithm", *[v["algorithm"] for v in versions]],
        ["created", *[_short(v["created_at"]) for v in versions]],
        ["data fingerprint", *[tag("code", v["data_fingerprint"][:16]) for v in versions]],
        ["dataset versions", *[_datasets(v["lineage"]) for v in versions]],
    ]
    metric_rows = [
        [f"{m['split']} {m['metric']}", *[_marked(value, i == m["best"]) for i, value in enumerate(m["values"])]]
        for m in data["metrics"]
    ]
    param_rows = [
        [_marked(p["param"], p["differs"]), *[_marked(value, p["differs"]) for value in p["values"]]]
        for p in data["params"]
    ]
    parts = [
        table(heads, summary, id_="compare-summary"),
        section("Metrics", table(["metric", *heads[1:]], metric_rows, id_="compare-metrics", empty="No metric."),
                muted("Bold: the best value of a metric with a known direction.")),
        section("Parameters", table(["param", *heads[1:]], param_rows, id_="compare-params", empty="No parameter."),
                muted("Bold: a parameter whose value differs between the versions.")),
    ]  # fmt: skip
    if data["learning_curves"]:
        parts.append(
            section("Learning curves", chart("learning-curves", curves_chart("learning curves", _overlay(data))))
        )
    return join(parts)


def _datasets(lineage: Data) -> str:
    return ", ".join(f"{d['dataset']} v{d['version']}" for d in lineage["datasets"]) or "—"


def _marked(value: Any, strong: bool) -> Markup:
    return tag("strong", value, class_="differs") if strong else escape(value)


def _overlay(data: Data) -> dict[str, list[list[float]]]:
    """Every version's curves as one set of named series (``v3 valid``...)."""
    return {f"v{c['version']} {key}": points for c in data["learning_curves"] for key, points in c["curve"].items()}


PAGES = [
    Page("/models", "Models", repository_data, render_repository, nav="Models", order=30),
    Page("/models/{name}/compare", compare_title, compare_data, render_compare, order=31),
    Page("/models/{name}", lambda data: f"Model {data['name']}", model_data, render_model, order=32),
    Page("/models/{name}/{version}", version_title, version_data, render_version, order=33),
]
