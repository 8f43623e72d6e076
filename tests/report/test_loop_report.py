from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from loopline.core.config import DriftConfig, RetrainConfig
from loopline.core.records import Finding
from loopline.monitor import drift_report, latency_figures, service_stats
from loopline.report import ReportData, _drift_charts, render_html_report, write_html_report
from loopline.report._html import format_value
from loopline.run import decide_retrain, gate

HOSTILE = '<script>alert("x")</script>'
DATA_URI = re.compile(r'src="data:image/png;base64,[A-Za-z0-9+/=]+"')


def frame(seed: int, *, mean: float = 0.0, mix: tuple[float, float, float] = (0.5, 0.3, 0.2)) -> pl.DataFrame:
    """Two numeric features (``x`` normal, ``y`` exponential), one categorical (``colour``), and ``price_$``."""
    rng = np.random.default_rng(seed)
    n = 4000
    table = pl.DataFrame(
        {
            "x": rng.normal(mean, 1.0, n),
            "y": rng.exponential(2.0, n),
            "colour": rng.choice(["red", "green", "blue"], n, p=list(mix)),
        }
    )
    return table.with_columns(pl.col("x").alias("price_$"))


@pytest.fixture
def data() -> ReportData:
    reference, current = frame(1), frame(2, mean=1.0, mix=(0.2, 0.3, 0.5))
    numeric, categorical = ["x", "y", "price_$"], ["colour"]
    report = drift_report(reference, current, numeric=numeric, categorical=categorical)
    rng = np.random.default_rng(0)
    latencies = rng.gamma(2.0, 3.0, 500).tolist()
    times = [datetime(2024, 5, 1, tzinfo=UTC) + timedelta(seconds=i) for i in range(500)]
    log = pl.DataFrame({"created_at": times, "latency_ms": latencies})
    return ReportData(
        title=f"flights {HOSTILE}",
        candidates=[
            {
                "model": "flights",
                "version": 2,
                "algorithm": "hist_gradient_boosting",
                "valid_roc_auc": 0.7412,
            },
            {"model": "flights", "version": 3, "algorithm": HOSTILE, "valid_roc_auc": None, "note": True},
        ],
        production={"model": "flights", "version": 1, "algorithm": "logistic_regression"},
        drift=report,
        reference=reference,
        current=current,
        retrain=decide_retrain(report, RetrainConfig(), DriftConfig()),
        gate=gate({"roc_auc": 0.70}, {"roc_auc": 0.74}, metric="roc_auc"),
        service=service_stats(log),
        latencies_ms=latencies,
        notes=[f"note {HOSTILE}", "trained on January-March"],
    )


def test_report_is_written_with_tables_verdicts_and_plots(tmp_path: Path, data: ReportData) -> None:
    path = write_html_report(tmp_path / "deep" / "report.html", data)
    assert path == tmp_path / "deep" / "report.html"
    html = path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    for name in ("x", "y", "price_$", "colour", "hist_gradient_boosting", "logistic_regression"):
        assert f"<td>{name}</td>" in html
    assert '<td class="verdict drifted">drifted</td>' in html
    assert '<td class="verdict stable">stable</td>' in html
    assert "retrain" in html and "promote" in html and "<td>p95 (ms)</td>" in html
    # PSI chart + 4 distributions (the most drifted first) + latency histogram
    assert html.count('<img src="data:image/png;base64,') == 6
    assert len(DATA_URI.findall(html)) == 6
    assert [p.name for p in tmp_path.joinpath("deep").iterdir()] == ["report.html"]


def test_report_escapes_user_strings_and_links_nothing(data: ReportData) -> None:
    html = render_html_report(data)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "http" not in DATA_URI.sub("", html)


def test_report_with_only_a_title_says_what_is_missing(tmp_path: Path) -> None:
    html = write_html_report(tmp_path / "r.html", ReportData("empty", [], None, None)).read_text()
    for text in ("No candidates.", "No production model.", "No drift report.", "No decisions were made."):
        assert text in html
    assert "<img" not in html


def test_report_without_frames_has_only_the_psi_chart(data: ReportData) -> None:
    data.reference = data.current = None
    data.latencies_ms = None
    html = render_html_report(data)
    assert html.count("<img ") == 1 and "Reference vs current" not in html


def test_all_null_feature_is_drawn_without_error() -> None:
    frame = pl.DataFrame({"x": [None] * 50, "c": [None] * 50}, schema={"x": pl.Float64, "c": pl.String})
    report = drift_report(frame, frame, numeric=["x"], categorical=["c"])
    html = render_html_report(ReportData("nulls", [], None, report, reference=frame, current=frame))
    assert html.count("<img ") == 1  # the PSI chart; no histogram for features without values


def test_the_two_latencies_are_labelled_by_side_and_agree_with_their_chart(
    data: ReportData, monkeypatch: pytest.MonkeyPatch
) -> None:
    times = [datetime(2024, 5, 1, tzinfo=UTC) + timedelta(seconds=i) for i in range(200)]
    server = [0.05 + i / 1000 for i in range(200)]  # model time per prediction: far below a round trip
    client = [3.0 + i / 10 for i in range(40)]
    data.service = service_stats(pl.DataFrame({"created_at": times, "latency_ms": server}))
    data.latencies_ms = client
    legend: list[str] = []
    real = _drift_charts.png_data_uri

    def capture(figure: Any) -> str:
        if figure.axes[0].get_xlabel() == "client-side round trip per request (ms)":
            legend.extend(text.get_text() for text in figure.axes[0].get_legend().get_texts())
        return real(figure)

    monkeypatch.setattr(_drift_charts, "png_data_uri", capture)
    service = render_html_report(data).split("<h2>Service</h2>")[1]
    server_part, client_part = service.split("<h3>Client-side: round trip per request</h3>")
    assert "<h3>Server-side: model time per prediction</h3>" in server_part
    assert "prediction log" in server_part and "divided by the rows of its batch" in server_part
    assert "one value per request" in client_part
    expected_server, expected_client = latency_figures(server), latency_figures(client)
    for p in (50, 95, 99):
        key = f"latency_p{p}_ms"
        assert f"<td>p{p} (ms)</td><td class=num>{format_value(expected_server[key])}</td>" in server_part
        assert f"<td>p{p} (ms)</td><td class=num>{format_value(expected_client[key])}</td>" in client_part
    assert "<td>predictions</td><td class=num>200</td>" in server_part
    assert "<td>requests</td><td class=num>40</td>" in client_part
    marks = {label.split()[0]: float(label.split()[1]) for label in legend}  # the chart's lines: the same figures
    assert marks == pytest.approx({f"p{p}": expected_client[f"latency_p{p}_ms"] for p in (50, 95, 99)}, abs=0.005)


def test_training_findings_have_a_section_and_a_suspicious_one_a_badge() -> None:
    leak = Finding("target_leakage", f"late {HOSTILE}", "feature 'late' alone predicts the target.", 1.0)
    empty = Finding("all_null", "sensor", "feature 'sensor' is missing in all 300 training rows.", None, "dropped")
    html = render_html_report(ReportData("leaky", [], None, None, findings=[(3, leak), (3, empty)]))
    assert "<h2>Training diagnostics</h2>" in html and "suspicious candidate" in html
    assert "<td class=drifted>target_leakage</td>" in html
    assert "<td>all_null</td><td>sensor</td><td>dropped</td>" in html
    assert "<script>" not in html
    clean = render_html_report(ReportData("clean", [], None, None))
    assert "No findings" in clean and "suspicious candidate" not in clean
