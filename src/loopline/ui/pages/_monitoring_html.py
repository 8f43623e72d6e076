"""The monitoring pages drawn: the models table, and one model's heat map, overlay, accuracy, predictions and
service charts (ECharts options), its windows and its alerts (with the acknowledge form for the admin)."""

from __future__ import annotations

from typing import Any

from loopline.ui._html import (
    Markup,
    badge,
    chart,
    form,
    join,
    link,
    muted,
    pager,
    pairs,
    query_url,
    section,
    table,
    tag,
)
from loopline.ui._page import Data, View
from loopline.ui.pages._windows import CLOSE_COMMAND, STATES, STATS

STAT_LABELS = {"psi": "PSI", "statistic": "test statistic", "p_value": "p-value", "drifted": "verdict"}


def render_monitoring(data: Data, view: View) -> Markup:
    """A table of the models; each links to its page."""
    rows = [_list_row(model, view) for model in data["models"]]
    listing = table(
        ["model", "window specs", "newest window", "rows", "drift", "realised", "estimated", "open alerts"],
        rows,
        id_="monitored-models",
        empty="No model yet.",
    )
    info = data["pagination"]
    return join([listing, pager(view.url("/monitoring"), {}, info["page"], info["pages"])])


def _list_row(model: Data, view: View) -> list[Any]:
    name, latest = model["name"], model["latest"]
    page = view.url(f"/monitoring/{name}")
    specs = join((link(query_url(page, {"spec": s}), f"{s} ({n})") for s, n in model["specs"].items()), " ")
    alerts = badge(f"{model['open_alerts']} open", "bad") if model["open_alerts"] else badge("none", "good")
    if latest is None:
        return [link(page, name), muted(f"no window yet ({CLOSE_COMMAND})"), None, None, None, None, None, alerts]
    return [
        link(page, name),
        specs,
        f"{latest['spec']} #{latest['seq']} ending {latest['end'][:16]} ({latest['status']})",
        latest["rows"],
        _drift_badge(latest["drifted_features"], latest["features_checked"]),
        _metrics(latest["realised"]),
        _metrics(latest["estimated"]),
        alerts,
    ]


def _drift_badge(drifted: int | None, checked: int) -> Markup:
    if drifted is None:
        return badge("not checked", "neutral")
    return badge(f"{drifted} of {checked} drifted", "bad") if drifted else badge(f"none of {checked}", "good")


def _metrics(metrics: dict[str, Any] | None) -> str | None:
    if not metrics:
        return None
    kept = [(k, v) for k, v in metrics.items() if not k.endswith(("_lower", "_upper"))][:3]
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in kept)


def render_model(data: Data, view: View) -> Markup:
    """The spec links, then the heat map, the overlay, accuracy, predictions, service and the alerts."""
    name = data["model"]
    page = view.url(f"/monitoring/{name}")
    specs = join(
        (
            badge(f"{spec} ({n})", "good") if spec == data["spec"] else link(query_url(page, {"spec": spec}), spec)
            for spec, n in data["specs"].items()
        ),
        " ",
    )
    head = tag("p", join(["window specs: ", specs, " · ", link(view.url(f"/models/{name}"), "versions")]))
    parts = [head]
    if data.get("empty"):
        parts.append(muted(data["empty"]))
    else:
        parts += _charts(data, page)
    parts.append(_alerts(data, view, page))
    return join(parts)


def _charts(data: Data, page: str) -> list[Markup]:
    windows = data["windows"]
    ends = [w["end"] for w in windows]
    query = {"spec": data["spec"], "since": data["since"], "until": data["until"]}
    note = (
        muted(f"The newest {data['max_windows']} windows (narrow with ?since= and ?until=).")
        if data["truncated"]
        else Markup("")
    )
    return [
        note,
        section("Drift per feature and window", _heat_map(data, page, query), id_="drift"),
        section("Reference vs window", _overlay_html(data, page, query), id_="overlay"),
        section("Accuracy over time", _accuracy_chart(data["accuracy"], ends), id_="accuracy"),
        section("Predictions over time", _prediction_chart(data["predictions"], ends), id_="predictions"),
        section(
            "Service over time",
            *_service_charts(data["service"], ends),
            _window_table(data, page, query),
            id_="service",
        ),
    ]


def _heat_map(data: Data, page: str, query: dict[str, Any]) -> Markup:
    drift, stat = data["drift"], data["stat"]
    if not drift["features"]:
        return muted("No window has a drift report (too few rows in each).")
    labels = [w["label"] for w in data["windows"]]
    cells = []
    for y, row in enumerate(drift["cells"]):
        for x, cell in enumerate(row):
            value = STATES.get(cell["state"], -1) if stat == "drifted" else cell[stat]
            if value is not None:
                cells.append([x, y, value])
    option = {
        "title": {"text": f"{STAT_LABELS[stat]} per feature and window"},
        "tooltip": {"position": "top"},
        "grid": {"left": 120, "bottom": 90},
        "xAxis": {"type": "category", "data": labels, "splitArea": {"show": True}},
        "yAxis": {"type": "category", "data": drift["features"], "splitArea": {"show": True}},
        "visualMap": _visual_map(stat, [c[2] for c in cells]),
        "series": [{"name": STAT_LABELS[stat], "type": "heatmap", "data": cells, "label": {"show": len(labels) <= 20}}],
    }
    choices = join(
        (
            badge(STAT_LABELS[s], "good") if s == stat else link(query_url(page, {**query, "stat": s}), STAT_LABELS[s])
            for s in STATS
        ),
        " ",
    )
    height = max(240, 60 + 28 * len(drift["features"]))
    return join([tag("p", join(["colour by: ", choices])), chart("drift-heatmap", option, height=height)])


def _visual_map(stat: str, values: list[Any]) -> dict[str, Any]:
    base = {"orient": "horizontal", "left": "center", "bottom": 0, "calculable": True}
    if stat == "drifted":
        pieces = [
            {"value": 1, "label": "drifted", "color": "#d9534f"},
            {"value": 0, "label": "stable", "color": "#5cb85c"},
            {"value": -1, "label": "no verdict", "color": "#cccccc"},
        ]
        return {**base, "type": "piecewise", "pieces": pieces}
    if stat == "p_value":
        return {**base, "type": "continuous", "min": 0, "max": 1, "inRange": {"color": ["#d9534f", "#f7f7f7"]}}
    top = max([float(v) for v in values] + [0.25 if stat == "psi" else 1e-9])
    return {**base, "type": "continuous", "min": 0, "max": top, "inRange": {"color": ["#f7f7f7", "#d9534f"]}}


def _overlay_html(data: Data, page: str, query: dict[str, Any]) -> Markup:
    overlay = data.get("overlay")
    if overlay is None:
        return muted("No window has a drift report to compare with the reference.")
    seq = overlay["window"]
    choices = join(
        (
            badge(f, "good")
            if f == overlay["feature"]
            else link(query_url(page, {**query, "window": seq, "feature": f}), f)
            for f in overlay["features"]
        ),
        " ",
    )
    head = tag("p", join([f"window #{seq}, feature: ", choices]))
    if "note" in overlay:
        return join([head, muted(overlay["note"])])
    option = {
        "title": {"text": f"{overlay['feature']}: reference (v{overlay['reference_version']}) vs window #{seq}"},
        "tooltip": {"trigger": "axis"},
        "legend": {"bottom": 0},
        "xAxis": {"type": "category", "data": overlay["bins"]},
        "yAxis": {"type": "value", "name": "share of rows"},
        "series": [
            {"name": f"reference ({overlay['source']})", "type": "bar", "data": overlay["reference_shares"]},
            {"name": f"window #{seq}", "type": "bar", "data": overlay["window_shares"]},
        ],
    }
    facts = pairs(
        {
            "PSI": overlay["psi"],
            "verdict": overlay["state"],
            "reference rows": sum(overlay["reference_counts"]),
            "window rows": sum(overlay["window_counts"]),
            "window rows read": f"the first {overlay['window_rows_read']:,} (the window holds more)"
            if overlay["window_rows_cut"]
            else "all",
        }
    )
    return join([head, chart("overlay-chart", option), facts])


def _time_option(title: str, axis: str, series: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title},
        "tooltip": {"trigger": "axis"},
        "legend": {"bottom": 0, "type": "scroll"},
        "xAxis": {"type": "time"},
        "yAxis": {"type": "value", "name": axis},
        "series": series,
        **extra,
    }


def _line(name: str, ends: list[str], values: list[Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "line", "data": [[t, v] for t, v in zip(ends, values, strict=True)], **extra}


def _accuracy_chart(accuracy: Data, ends: list[str]) -> Markup:
    series: list[dict[str, Any]] = []
    for metric, values in accuracy["realised"].items():
        series.append(_line(f"{metric} (realised)", ends, values))
    for metric, triples in accuracy["estimated"].items():
        lower = [t[1] for t in triples]
        width = [None if t[1] is None or t[2] is None else t[2] - t[1] for t in triples]
        stack = f"band-{metric}"
        series.append(_line(f"{metric} (estimated)", ends, [t[0] for t in triples], lineStyle={"type": "dashed"}))
        series.append(_line(f"{metric} band", ends, lower, stack=stack, lineStyle={"opacity": 0}, symbol="none"))
        series.append(
            _line(f"{metric} band", ends, width, stack=stack, lineStyle={"opacity": 0}, symbol="none", areaStyle={})
        )
    series.append(_line("label coverage", ends, accuracy["label_coverage"], yAxisIndex=1, step="middle"))
    note = Markup("") if accuracy["realised"] or accuracy["estimated"] else muted("No window has a metric yet.")
    option = _time_option("realised and estimated metrics, label coverage", "metric", series)
    option["yAxis"] = [{"type": "value", "name": "metric"}, {"type": "value", "name": "label coverage", "max": 1}]
    return join([note, chart("accuracy-chart", option)])


def _prediction_chart(predictions: Data, ends: list[str]) -> Markup:
    if not predictions["series"]:
        return muted("No prediction summary in these windows.")
    series = [_line(name, ends, values) for name, values in predictions["series"].items()]
    return chart("predictions-chart", _time_option("prediction distribution per window", predictions["label"], series))


def _service_charts(service: Data, ends: list[str]) -> list[Markup]:
    latency = [
        _line("p50 (ms)", ends, service["latency_p50_ms"]),
        _line("p99 (ms)", ends, service["latency_p99_ms"]),
    ]
    return [
        chart("latency-chart", _time_option("latency per prediction", "ms", latency)),
        chart(
            "throughput-chart",
            _time_option("throughput", "rows/s", [_line("rows per second", ends, service["throughput_rps"])]),
        ),
        chart(
            "errors-chart",
            _time_option("error rate", "share of requests", [_line("error rate", ends, service["error_rate"])]),
        ),
    ]


def _window_table(data: Data, page: str, query: dict[str, Any]) -> Markup:
    """The windows, newest first, each linking to its overlay."""
    windows, service = data["windows"], data["service"]
    rows = []
    for i in reversed(range(len(windows))):
        w = windows[i]
        overlay = link(query_url(page, {**query, "window": w["seq"]}) + "#overlay", "overlay")
        rows.append(
            [
                str(w["seq"]),
                w["label"],
                w["rows"],
                _drift_badge(w["drifted_features"], w["features_checked"] or 0),
                service["latency_p50_ms"][i],
                service["latency_p99_ms"][i],
                service["throughput_rps"][i],
                service["error_rate"][i],
                overlay if w["features_checked"] else None,
            ]
        )
    headers = ["#", "window", "rows", "drift", "p50 (ms)", "p99 (ms)", "rows/s", "error rate", ""]
    return table(headers, rows, id_="windows")


def _alerts(data: Data, view: View, page: str) -> Markup:
    rows = [
        [
            a["id"],
            f"{a['spec']} {a['window_start'][:16]} to {a['window_end'][:16]}",
            a["rule"],
            a["value"],
            a["threshold"],
            badge(f"acknowledged by {a['acknowledged_by'] or '?'}", "neutral")
            if a["acknowledged"]
            else badge("open", "bad"),
            _ack(a, view),
        ]
        for a in data["alerts"]
    ]
    listing = table(
        ["alert", "window", "rule", "value", "threshold", "state", ""], rows, id_="alerts", empty="No alert fired."
    )
    info = data["alerts_pagination"]
    keep = {"spec": data["spec"]} if data.get("spec") else {}
    return section("Alerts", listing, pager(page, keep, info["page"], info["pages"]), id_="model-alerts")


def _ack(alert: Data, view: View) -> Markup:
    if not view.admin or alert["acknowledged"]:
        return Markup("")
    return form(view.action("acknowledge"), view.csrf, {"alert": alert["id"]}, "acknowledge")
