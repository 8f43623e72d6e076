"""The overview: each production model with its version and aliases, live health, the latest drift and
accuracy against their thresholds, open alerts and the loop's last decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from loopline.ui._html import Markup, badge, escape, form, join, link, muted, pairs, section, table, tag
from loopline.ui._page import Data, Page, Params, View

if TYPE_CHECKING:
    from loopline.store import ModelVersion, Store

LIVE_MINUTES = 5
"""The live request rate counts the predictions logged in this many minutes."""
DECISION_KINDS = ("trigger", "retrain", "gate", "promotion", "probation", "rollback", "skip", "error", "request")
OPEN_ALERTS_SHOWN = 20


def overview_data(store: Store, params: Params) -> Data:
    """Every model that has a production version, newest decisions and open alerts."""
    from loopline.store.loop import LoopStore

    loops = LoopStore(store.engine)
    now = datetime.now(UTC)
    models = []
    for name in store.models.names():
        production = store.models.production(name)
        models.append(_model_card(store, loops, name, production, now))
    alerts = store.alerts.list(unacknowledged=True, limit=OPEN_ALERTS_SHOWN)
    return {
        "generated_at": now.isoformat(),
        "models": models,
        "open_alerts": [alert.to_dict() for alert in alerts],
    }


def _model_card(store: Store, loops: Any, name: str, production: ModelVersion | None, now: datetime) -> Data:
    card: Data = {"name": name, "production": None, "aliases": store.models.aliases(name)}
    if production is not None:
        card["production"] = {
            "version": production.version,
            "algorithm": production.algorithm,
            "promoted_at": production.promoted_at.isoformat() if production.promoted_at else None,
            "test": production.metrics.get("test"),
        }
    recent = store.predictions.prediction_count(name, now - timedelta(minutes=LIVE_MINUTES), now)
    card["live"] = {"predictions": recent, "minutes": LIVE_MINUTES, "rate_per_s": recent / (LIVE_MINUTES * 60)}
    window = store.windows.latest(name)
    card["window"] = None if window is None else _window_summary(window.result)
    card["open_alerts"] = store.alerts.count(name, unacknowledged=True)
    event = loops.latest_for_model(name, DECISION_KINDS)
    card["last_decision"] = (
        None
        if event is None
        else {"kind": event.kind, "reason": event.reason, "at": event.at.isoformat(), "pipeline": event.pipeline}
    )
    return card


def _window_summary(result: dict[str, Any]) -> Data:
    """What the overview shows of a stored window record (its JSON)."""
    health = result.get("health") or {}
    drift = result.get("drift") or {}
    features = drift.get("features") or []
    drifted = [f.get("feature") for f in features if f.get("drifted")]
    return {
        "spec": result.get("spec"),
        "start": result.get("start"),
        "end": result.get("end"),
        "rows": health.get("rows"),
        "latency_p50_ms": health.get("latency_p50_ms"),
        "latency_p99_ms": health.get("latency_p99_ms"),
        "throughput_rps": health.get("throughput_rps"),
        "error_rate": health.get("error_rate"),
        "drift_checked": bool(features),
        "drifted_features": drifted,
        "features_checked": len(features),
        "realised": result.get("realised_metrics"),
        "estimated": result.get("estimated_metrics"),
        "label_coverage": result.get("label_coverage"),
    }


def render_overview(data: Data, view: View) -> Markup:
    """Cards per model, then the open alerts."""
    if not data["models"]:
        start = Markup("<code>loopline quickstart</code>")
        return muted(Markup(f"No model yet. Train one with a pipeline, or run {start} for the whole loop."))
    cards = join(_card(model, view) for model in data["models"])
    alerts = table(
        ["alert", "model", "rule", "value", "threshold", "window end", ""],
        (
            [a["id"], a["model"], a["rule"], a["value"], a["threshold"], a["window_end"], _ack(a["id"], view)]
            for a in data["open_alerts"]
        ),
        id_="open-alerts",
        empty="No open alert.",
    )
    return join([tag("div", cards, class_="cards"), section("Open alerts", alerts)])


def _card(model: Data, view: View) -> Markup:
    name = model["name"]
    production = model["production"]
    heading = tag("h3", link(view.url(f"/models/{name}"), name))
    if production is None:
        status = badge("no production version", "neutral")
    else:
        status = badge(f"production v{production['version']}", "good")
    aliases = join((badge(f"{alias} → v{version}") for alias, version in sorted(model["aliases"].items())), " ")
    live = model["live"]
    facts: dict[str, Any] = {
        "algorithm": production["algorithm"] if production else None,
        f"requests (last {live['minutes']} min)": live["predictions"],
        "rate (predictions/s)": round(live["rate_per_s"], 3),
        "open alerts": _alerts_badge(model["open_alerts"]),
    }
    window = model["window"]
    if window is not None:
        facts |= {
            f"window {window['spec']} ending": window["end"],
            "latency p50 / p99 (ms)": f"{_num(window['latency_p50_ms'])} / {_num(window['latency_p99_ms'])}",
            "error rate": window["error_rate"],
            "drift": _drift_badge(window),
            "realised": _metrics(window["realised"]),
            "at training (test split)": _metrics(production["test"] if production else None),
            "estimated": _metrics(window["estimated"]),
            "label coverage": window["label_coverage"],
        }
    else:
        facts["monitoring"] = "no closed window yet (loopline monitor --window 1d)"
    decision = model["last_decision"]
    facts["last loop decision"] = (
        Markup(
            f"{badge(decision['kind'])} {tag('span', _shortened(decision['reason']), title=decision['reason'])} "
            f"({escape(decision['at'][:19])})"
        )
        if decision
        else None
    )
    links = join(
        [
            link(view.url(f"/monitoring/{name}"), "monitoring"),
            link(view.url(f"/models/{name}"), "versions"),
            link(view.url("/loop"), "loop"),
        ],
        " · ",
    )
    actions = Markup("")
    if view.admin and production is not None:
        actions = form(view.action("rollback"), view.csrf, {"model": name}, "roll back", confirm=f"Roll {name} back?")
    return tag(
        "div", join([heading, status, " ", aliases, pairs(facts), links, actions]), class_="card", id=f"model-{name}"
    )


def _alerts_badge(count: int) -> Markup:
    return badge(f"{count} open", "bad") if count else badge("none", "good")


def _drift_badge(window: Data) -> Markup:
    if not window["drift_checked"]:
        return badge("not checked", "neutral")
    drifted = window["drifted_features"]
    if drifted:
        return badge(
            f"{len(drifted)} of {window['features_checked']} drifted: {', '.join(map(str, drifted[:5]))}", "bad"
        )
    return badge(f"no drift ({window['features_checked']} features)", "good")


PRIMARY_METRICS = ("roc_auc", "pr_auc", "accuracy", "f1", "f1_macro", "log_loss", "r2", "rmse", "mae")
"""The metrics a card shows first, in this order (a window records many)."""


def _metrics(metrics: dict[str, Any] | None) -> str | None:
    if not metrics:
        return None
    ordered = [key for key in PRIMARY_METRICS if key in metrics] or sorted(metrics)
    return ", ".join(f"{key} {_num(metrics[key])}" for key in ordered[:3])


def _shortened(text: str, limit: int = 200) -> str:
    """``text`` cut at a word boundary before ``limit`` characters, with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " …"


def _num(value: Any) -> str:
    return "—" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _ack(alert_id: int, view: View) -> Markup:
    if not view.admin:
        return Markup("")
    return form(view.action("acknowledge"), view.csrf, {"alert": alert_id}, "acknowledge")


PAGES = [Page("/", "Overview", overview_data, render_overview, nav="Overview", order=0)]
