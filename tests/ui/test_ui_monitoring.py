"""The monitoring pages over windows closed by the library on a logged prediction log (SQLite and PostgreSQL):
the list of models, one model's heat map, overlay, accuracy, predictions and service, its alerts and their
acknowledgement, the empty state, bad parameters, escaping and every link."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient

from loopline.core.config import AlertRule, MonitorConfig
from loopline.monitor import ReferenceProfile
from loopline.run import check_windows
from loopline.store import PredictionRow, Store
from loopline.store.feedback import Label
from loopline.ui.pages import _windows as figures

from .conftest import crawl, get_json, sign_in, toy_frame

T0 = datetime(2025, 3, 3, tzinfo=UTC)
HOUR = timedelta(hours=1)
RULES = [AlertRule(when="latency_p99_ms", above=250), AlertRule(when="drifted_features", above=0)]


@dataclass(frozen=True)
class Monitored:
    """What the fixture put in the store: the windows it closed and the alerts they fired."""

    windows: list[Any]
    alerts: list[Any]


def logged(model: str, start: datetime, count: int, *, seed: int, shift: float = 0.0, group: str | None = None,
           latency: float = 2.0, prefix: str = "p") -> list[PredictionRow]:  # fmt: skip
    """``count`` logged predictions of the toy model, one a minute from ``start``; ``x`` moved by ``shift``."""
    frame = toy_frame(count, seed)
    return [
        PredictionRow(
            f"{prefix}{seed:03d}{i:05d}",
            model,
            1,
            start + i * timedelta(minutes=1),
            {"x": float(row["x"]) + shift, "n": int(row["n"]), "group": group or row["group"]},
            {"prediction": bool(row["label"])},
            latency,
        )
        for i, row in enumerate(frame.iter_rows(named=True))
    ]


@pytest.fixture
def monitored(ui_store: Store) -> Monitored:
    """``toy`` v3 (v1's bundle and reference, with a stored profile) in production; two hourly windows closed:
    the first like the reference with half its rows labelled, the second with ``x`` moved by 3, every group
    unseen and slow answers (two alerts)."""
    v1 = ui_store.models.get("toy", 1)
    profile = ReferenceProfile.from_frame(toy_frame(300, 0), numeric=["x", "n"], categorical=["group"])
    fields = {k: getattr(v1, k) for k in ("algorithm", "bundle_digest", "reference_digest", "metrics", "params")}
    fields |= {k: getattr(v1, k) for k in ("config", "input_schema", "data_fingerprint", "run_id", "timings")}
    v3 = ui_store.models.register(
        name="toy", profile_digest=ui_store.artifacts.put_bytes(profile.to_json().encode()), **fields
    )
    ui_store.models.promote("toy", v3.version)
    ui_store.predictions.append(
        logged("toy", T0, 60, seed=1) + logged("toy", T0 + HOUR, 60, seed=2, shift=3.0, group="zzz", latency=300.0)
    )
    ui_store.feedback.put("toy", [Label(f"p001{i:05d}", True) for i in range(30)], source="test")
    check = check_windows(ui_store, MonitorConfig(model="toy", alerts=RULES), "1h", now=T0 + 3 * HOUR)
    assert len(check.closed) == 2
    return Monitored(check.closed, check.alerts)


def option(html: str, chart_id: str) -> dict[str, Any]:
    """The ECharts option a page embeds for ``chart_id``."""
    found = re.search(rf'<script type="application/json" id="{chart_id}-option">(.*?)</script>', html)
    assert found, f"no chart {chart_id}"
    parsed: dict[str, Any] = json.loads(found.group(1))
    return parsed


def test_the_list_shows_each_model_with_its_specs_newest_window_and_open_alerts(
    client: TestClient, monitored: Monitored
) -> None:
    data = get_json(client, "/monitoring")
    [toy] = data["models"]
    newest = monitored.windows[-1]
    assert toy["name"] == "toy"
    assert toy["specs"] == {"1h": 2}
    assert toy["open_alerts"] == len(monitored.alerts) == 2  # the second window: slow and drifted
    latest = toy["latest"]
    assert (latest["spec"], latest["seq"], latest["rows"]) == ("1h", newest.seq, 60)
    assert latest["drifted_features"] == len(newest.drift.drifted) >= 2
    assert latest["end"] == newest.end.isoformat()
    assert data["pagination"] == {"page": 1, "per_page": 50, "total": 1, "pages": 1}

    page = client.get("/ui/monitoring")
    assert page.status_code == 200
    assert 'href="/ui/monitoring/toy"' in page.text
    assert 'href="/ui/monitoring/toy?spec=1h"' in page.text
    assert "2 open" in page.text and f"{len(newest.drift.drifted)} of 3 drifted" in page.text
    assert "class=active" in page.text and ">Monitoring</a>" in page.text


def test_a_models_page_draws_its_stored_windows(client: TestClient, monitored: Monitored) -> None:
    first, second = monitored.windows
    data = get_json(client, "/monitoring/toy")
    assert (data["model"], data["spec"], data["stat"], data["truncated"]) == ("toy", "1h", "psi", False)
    assert [w["seq"] for w in data["windows"]] == [first.seq, second.seq]
    assert [w["rows"] for w in data["windows"]] == [60, 60]

    drift = data["drift"]
    assert drift["features"] == [f.feature for f in second.drift.features]
    x = drift["features"].index("x")
    assert [cell["state"] for cell in drift["cells"][x]] == ["stable", "drifted"]
    stored_psi = next(f.psi for f in second.drift.features if f.feature == "x")
    assert drift["cells"][x][1]["psi"] == pytest.approx(stored_psi)
    assert drift["cells"][x][1]["p_value"] == next(f.p_value for f in second.drift.features if f.feature == "x")

    accuracy = data["accuracy"]
    assert accuracy["realised"]["accuracy"][0] == pytest.approx(first.realised_metrics["accuracy"])
    assert accuracy["label_coverage"] == [0.5, 0.0]
    assert data["predictions"]["label"] == "share of predictions"
    assert set(data["predictions"]["series"]) == set(first.health.prediction.shares)
    service = data["service"]
    assert service["latency_p99_ms"] == [2.0, 300.0]
    assert service["throughput_rps"] == [pytest.approx(60 / 3600)] * 2

    assert [a["id"] for a in data["alerts"]] == sorted((a.id for a in monitored.alerts), reverse=True)
    assert {a["rule"] for a in data["alerts"]} == {"latency_p99_ms above 250", "drifted_features above 0"}

    page = client.get("/ui/monitoring/toy")
    assert page.status_code == 200
    heat = option(page.text, "drift-heatmap")
    assert heat["series"][0]["type"] == "heatmap" and heat["visualMap"]["type"] == "continuous"
    assert heat["yAxis"]["data"] == drift["features"]
    assert [1, x, pytest.approx(stored_psi)] in heat["series"][0]["data"]
    accuracy_chart = option(page.text, "accuracy-chart")
    assert accuracy_chart["series"][0]["data"][0] == [
        first.end.isoformat(),
        pytest.approx(first.realised_metrics["accuracy"]),
    ]
    latency = option(page.text, "latency-chart")
    assert latency["xAxis"]["type"] == "time" and latency["series"][1]["data"][1] == [second.end.isoformat(), 300.0]
    for chart_id in ("predictions-chart", "throughput-chart", "errors-chart", "overlay-chart"):
        option(page.text, chart_id)
    assert "latency_p99_ms above 250" in page.text


def test_the_heat_map_colours_by_verdict_or_p_value(client: TestClient, monitored: Monitored) -> None:
    verdicts = option(client.get("/ui/monitoring/toy?stat=drifted").text, "drift-heatmap")
    assert verdicts["visualMap"]["type"] == "piecewise"
    drift = get_json(client, "/monitoring/toy")["drift"]
    x = drift["features"].index("x")
    assert [0, x, 0] in verdicts["series"][0]["data"] and [1, x, 1] in verdicts["series"][0]["data"]
    p_values = option(client.get("/ui/monitoring/toy?stat=p_value").text, "drift-heatmap")
    assert (p_values["visualMap"]["min"], p_values["visualMap"]["max"]) == (0, 1)


def test_the_overlay_compares_the_stored_profile_with_one_window(
    client: TestClient, monitored: Monitored, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = monitored.windows
    overlay = get_json(client, "/monitoring/toy")["overlay"]
    # the newest window with a drift report, its first drifted feature, against the stored profile of v3
    assert (overlay["window"], overlay["feature"], overlay["source"]) == (second.seq, "x", "profile")
    assert overlay["reference_version"] == 3 and overlay["kind"] == "numeric"
    assert sum(overlay["reference_counts"]) == 300 and sum(overlay["window_counts"]) == 60
    assert (overlay["window_rows_read"], overlay["window_rows_cut"]) == (60, False)
    assert overlay["bins"][-1] == "missing" and len(overlay["bins"]) == len(overlay["window_shares"])
    # x moved by 3: most of the window's rows fall in the reference's top bin
    assert overlay["window_shares"][-2] > 0.8 > overlay["reference_shares"][-2]

    group = get_json(client, f"/monitoring/toy?window={second.seq}&feature=group")["overlay"]
    assert group["kind"] == "categorical"
    assert group["bins"] == ["a", "b", "c", "unseen", "missing"] or set(group["bins"][:3]) == {"a", "b", "c"}
    assert group["window_counts"][group["bins"].index("unseen")] == 60
    monkeypatch.setattr(figures, "OVERLAY_ROWS", 25)  # a busy window: only its first rows are read
    calm = get_json(client, f"/monitoring/toy?window={first.seq}&feature=group")["overlay"]
    assert (calm["window_rows_read"], calm["window_rows_cut"]) == (25, True) and sum(calm["window_counts"]) == 25
    assert "the first 25 (the window holds more)" in client.get(f"/ui/monitoring/toy?window={first.seq}").text
    monkeypatch.undo()
    calm = get_json(client, f"/monitoring/toy?window={first.seq}&feature=group")["overlay"]
    assert calm["window_counts"][calm["bins"].index("unseen")] == 0 and sum(calm["window_counts"]) == 60

    page = client.get(f"/ui/monitoring/toy?window={second.seq}&feature=group")
    drawn = option(page.text, "overlay-chart")
    assert drawn["xAxis"]["data"] == group["bins"]
    assert drawn["series"][1]["data"] == pytest.approx(group["window_shares"])


BAD = [
    ("spec=bogus", 400, "spec"),
    ("spec=1d", 404, "1h"),
    ("stat=median", 400, "stat"),
    ("feature=nope", 400, "feature"),
    ("window=abc", 400, "window"),
    ("window=999", 404, "?window=SEQ"),
    ("since=yesterday", 400, "since"),
    ("page=0", 400, "page"),
]


def test_bad_parameters_are_refused_naming_them(client: TestClient, monitored: Monitored) -> None:
    for query, status, names in BAD:
        answer = client.get(f"/api/monitoring/toy?{query}")
        assert answer.status_code == status, (query, answer.text)
        assert names in answer.text, (query, answer.text)
        assert client.get(f"/ui/monitoring/toy?{query}").status_code == status


def test_an_unknown_model_is_a_404_and_one_without_windows_says_how_to_close_them(
    client: TestClient, ui_store: Store
) -> None:
    assert client.get("/api/monitoring/nosuch").status_code == 404
    assert client.get("/ui/monitoring/nosuch").status_code == 404
    data = get_json(client, "/monitoring/toy")
    assert (data["windows"], data["spec"], data["specs"], data["alerts"]) == ([], None, {}, [])
    assert "loopline monitor PIPELINE --window 1d" in data["empty"]
    page = client.get("/ui/monitoring/toy")
    assert page.status_code == 200 and "--window 1d" in page.text and "No alert fired." in page.text
    listed = get_json(client, "/monitoring")["models"]
    assert listed == [{"name": "toy", "specs": {}, "latest": None, "open_alerts": 0}]


def test_since_and_until_narrow_the_windows(client: TestClient, monitored: Monitored) -> None:
    first, second = monitored.windows
    later = get_json(client, f"/monitoring/toy?since={(T0 + HOUR).isoformat()}".replace("+", "%2B"))
    assert [w["seq"] for w in later["windows"]] == [second.seq]
    earlier = get_json(client, "/monitoring/toy?until=2025-03-03T01:00:00")
    assert [w["seq"] for w in earlier["windows"]] == [first.seq]
    none = get_json(client, "/monitoring/toy?since=2030-01-01T00:00:00")
    assert none["windows"] == [] and "No closed 1h window" in none["empty"]


def test_alerts_paginate_and_are_acknowledged_by_the_admin_only(client: TestClient, monitored: Monitored) -> None:
    newest_first = sorted((a.id for a in monitored.alerts), reverse=True)
    one = get_json(client, "/monitoring/toy?per_page=1&page=2")
    assert [a["id"] for a in one["alerts"]] == [newest_first[1]]
    assert one["alerts_pagination"] == {"page": 2, "per_page": 1, "total": 2, "pages": 2}
    paged = client.get("/ui/monitoring/toy?per_page=1")
    assert "page 1 of 2" in paged.text and 'href="/ui/monitoring/toy?spec=1h&amp;page=2"' in paged.text

    assert "/ui/actions/acknowledge" not in client.get("/ui/monitoring/toy").text
    csrf = sign_in(client)
    page = client.get("/ui/monitoring/toy").text
    assert f'name="alert" value="{newest_first[0]}"' in page and 'action="/ui/actions/acknowledge"' in page
    done = client.post("/ui/actions/acknowledge", data={"csrf": csrf, "alert": str(newest_first[0])})
    assert done.status_code in (200, 303), done.text
    alerts = get_json(client, "/monitoring/toy")["alerts"]
    assert [a["acknowledged"] for a in alerts] == [True, False]
    assert [a["acknowledged_by"] for a in alerts] == ["ui:token:admin", None]  # who, for the audit trail
    assert get_json(client, "/monitoring")["models"][0]["open_alerts"] == 1
    assert f'name="alert" value="{newest_first[0]}"' not in client.get("/ui/monitoring/toy").text


def test_every_link_resolves(client: TestClient, monitored: Monitored) -> None:
    start = ["/ui/monitoring", "/ui/monitoring/toy", "/ui/monitoring/toy?stat=drifted"]
    seen, others = crawl(client, start, ("/ui/monitoring",))
    assert any("window=" in p for p in seen) and any("feature=" in p for p in seen)
    assert "/ui/models/toy" in others


def test_names_from_data_are_escaped(client: TestClient, ui_store: Store) -> None:
    """A feature named like markup appears escaped in the page, and only inside JSON blocks as \\u003c."""
    evil = "<script>alert(1)</script>"
    reference = pl.DataFrame({evil: ["a", "b"] * 50, "x": [float(i) for i in range(100)]})
    version = ui_store.models.register(
        name="evil",
        algorithm="logistic_regression",
        bundle_digest=ui_store.artifacts.put_bytes(b"bundle"),
        reference_digest=ui_store.artifacts.put_table(reference),
        metrics={},
        params={},
        config={"features": {"numeric": ["x"], "categorical": [evil]}},
        input_schema=[],
        data_fingerprint="e" * 64,
        run_id=None,
        timings={},
    )
    ui_store.models.promote("evil", version.version)
    rows = [
        PredictionRow(
            f"e{i:04d}", "evil", 1, T0 + i * timedelta(minutes=1), {evil: "a", "x": float(i)}, {"prediction": 1}, 1.0
        )
        for i in range(60)
    ]
    ui_store.predictions.append(rows)
    check_windows(ui_store, MonitorConfig(model="evil"), "1h", now=T0 + 2 * HOUR)
    data = get_json(client, "/monitoring/evil")
    assert evil in data["drift"]["features"]
    overlay = get_json(
        client, f"/monitoring/evil?feature={evil}".replace("<", "%3C").replace(">", "%3E").replace("/", "%2F")
    )
    assert overlay["overlay"]["source"] == "reference sample"  # no stored profile: the stored sample's column
    assert overlay["overlay"]["reference_counts"][:2] == [50, 50]
    page = client.get("/ui/monitoring/evil")
    assert page.status_code == 200
    assert evil not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text or "\\u003cscript\\u003e" in page.text


def test_estimates_are_drawn_with_their_band(client: TestClient, ui_store: Store) -> None:
    """A window whose record holds an estimate with its band (as the orchestrator stores a binary classifier's
    windows with a performance reference), in either layout the records have used."""
    from loopline.monitor import WindowHealth, WindowResult
    from loopline.store import WindowRow

    health = WindowHealth(10, {1: 10}, T0, T0 + HOUR, 1.0, 2.0, 1.5, 3.0, 0.01)
    banded = {"estimated_metrics": {"accuracy": 0.8}, "estimated_bands": {"accuracy": (0.7, 0.9)}}
    keyed = {"accuracy": 0.7, "accuracy_lower": 0.6, "accuracy_upper": 0.85}
    first = WindowResult("toy", "1h", 1, T0, T0 + HOUR, "closed", health, label_coverage=0.0, **banded)  # type: ignore[arg-type]
    second = WindowResult("toy", "1h", 2, T0 + HOUR, T0 + 2 * HOUR, "closed", health, label_coverage=0.2,
                          realised_metrics={"accuracy": 0.75}, estimated_metrics=keyed)  # fmt: skip
    for window in (first, second):
        row = WindowRow("toy", "1h", window.seq, window.start, window.end, None, 10, None, window.to_dict())
        ui_store.windows.close(row, [])
    accuracy = get_json(client, "/monitoring/toy")["accuracy"]
    assert accuracy["estimated"] == {"accuracy": [[0.8, 0.7, 0.9], [0.7, 0.6, 0.85]]}
    assert accuracy["realised"] == {"accuracy": [None, 0.75]} and accuracy["label_coverage"] == [0.0, 0.2]
    drawn = option(client.get("/ui/monitoring/toy").text, "accuracy-chart")
    series = {s["name"]: s for s in drawn["series"] if "areaStyle" not in s}
    assert series["accuracy (estimated)"]["data"][1] == [second.end.isoformat(), 0.7]
    band = [s for s in drawn["series"] if s["name"] == "accuracy band"]
    assert [s.get("stack") for s in band] == ["band-accuracy"] * 2
    assert band[0]["data"][0][1] == 0.7 and band[1]["data"][0][1] == pytest.approx(0.2)  # lower, then the width
    assert series["label coverage"]["yAxisIndex"] == 1
