"""Drift, accuracy and service over monitoring windows: the heat map, the metrics with their gaps, the alerts."""

from __future__ import annotations

import json
import re
from typing import Any

from loopline.report import WindowAlert, WindowsView, render_history_html
from loopline.report._windows_page import (
    MAX_WINDOWS,
    NO_LABELS,
    accuracy_over_time_html,
    drift_over_time_html,
    service_over_time_html,
)

from ._windows import EVIL_FEATURE, feature, three_windows, window


def embedded(html: str, element_id: str) -> Any:
    """The JSON a section embedded under ``element_id``."""
    found = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.S)
    assert found, f"no {element_id} in the page"
    return json.loads(found.group(1))


def alert(seq: int) -> WindowAlert:
    target = three_windows()[seq]
    return WindowAlert("1d", target.start, target.end, "p99 > 6 ms <b>", "latency_p99_ms", "above", 6.0, 7.0)


def test_heat_map_has_every_feature_and_window_with_its_state_and_psi() -> None:
    html = drift_over_time_html(WindowsView("1d", three_windows()))
    data = embedded(html, "loopline-drift-over-time")
    assert data["features"] == ["age", EVIL_FEATURE]
    assert data["windows"] == ["2026-11-01 00:00", "2026-11-02 00:00", "2026-11-03 00:00"]
    assert data["states"] == [["stable", "no data", "stable"], ["stable", "no data", "drifted"]]
    assert data["psi"] == [[0.01, None, 0.05], [0.02, None, 0.6]]
    assert data["drifted_share"] == [0.0, None, 0.5]
    table = html[html.index('<table class="heatmap">') : html.index("</table>")]
    assert table.count('<th class="feature">') == 2 and table.count('<td class="heat') == 6
    assert table.count('class="heat drifted"') == 1 and table.count('class="heat nodata"') == 2
    assert 'title="too few rows"' in table  # why window #1 has no drift report


def test_a_feature_without_a_verdict_is_not_enough_data() -> None:
    few = window(0, [feature("age", 0.3, drifted=False, n_current=3, status="not enough data")])
    data = embedded(drift_over_time_html(WindowsView("1d", [few])), "loopline-drift-over-time")
    assert data["states"] == [["not enough data"]] and data["psi"] == [[0.3]]


def test_text_from_data_is_escaped_everywhere() -> None:
    view = WindowsView("1d", three_windows(), [alert(2)])
    html = render_history_html("t", [], view)
    assert EVIL_FEATURE not in html and 'onerror="alert' not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "p99 &gt; 6 ms &lt;b&gt;" in html and "<b>" not in html
    assert 'src="http' not in html and "<link" not in html and "<script src" not in html  # nothing fetched


def test_accuracy_shows_realised_estimated_band_and_no_labels_yet() -> None:
    html = accuracy_over_time_html(WindowsView("1d", three_windows()))
    data = embedded(html, "loopline-accuracy")
    assert data["realised"] == {"roc_auc": [None, None, 0.75]}
    assert data["estimated"]["roc_auc"] == [[None, None, None], [0.8, 0.7, 0.9], [0.78, 0.7, 0.86]]
    assert data["label_coverage"] == [None, None, 0.5]
    assert html.count(f"<td>{NO_LABELS}</td>") == 4  # coverage and metric of windows #0 and #1
    assert "0.78 [0.7, 0.86]" in html
    assert 'alt="roc_auc per window"' in html


def test_windows_without_any_metric_say_no_labels_yet() -> None:
    html = accuracy_over_time_html(WindowsView("1d", [window(0, None)]))
    assert f"No window has a metric yet: {NO_LABELS}." in html


def test_service_over_time_has_latency_throughput_predictions_and_the_alerts() -> None:
    view = WindowsView("1d", three_windows(), [alert(2)])
    html = service_over_time_html(view)
    data = embedded(html, "loopline-service")
    assert data["p50 (ms)"] == [1.0, 2.0, 3.0] and data["p99 (ms)"] == [5.0, 6.0, 7.0]
    assert data["rows per second"] == [10.0, 20.0, 30.0]
    assert [round(v, 3) for v in data["predictions"]["yes"]] == [0.2, 0.3, 0.4]
    assert data["alerts"] == [view.windows[2].end.isoformat()]
    assert "latency_p99_ms" in html and "No alert fired." not in html


def test_an_alert_of_another_spec_is_not_marked() -> None:
    other = alert(2)
    view = WindowsView("1h", three_windows(), [other])
    assert view.alert_times == []


def test_zero_windows_say_so_in_every_section() -> None:
    view = WindowsView("1d", [])
    for section in (drift_over_time_html, accuracy_over_time_html, service_over_time_html):
        assert "No closed 1d windows yet" in section(view)


def test_only_the_newest_windows_are_drawn() -> None:
    windows = [window(seq, None) for seq in range(MAX_WINDOWS + 5)]
    html = drift_over_time_html(WindowsView("1d", windows))
    assert f"The newest {MAX_WINDOWS} of {MAX_WINDOWS + 5} windows." in html
    assert len(embedded(html, "loopline-drift-over-time")["windows"]) == MAX_WINDOWS
    assert "No window has a drift report" in html


def test_prediction_and_target_drift_rows_sit_under_the_features_and_errors_in_the_service() -> None:
    from dataclasses import replace

    from loopline.monitor import DriftReport

    def report(*features: Any) -> DriftReport:
        return DriftReport(list(features), [f.feature for f in features if f.drifted], any(f.drifted for f in features))

    first, second = three_windows()[0], three_windows()[2]
    outputs = report(feature("prediction", 0.01, drifted=False), feature("probability:yes", 0.4, drifted=True))
    first = replace(first, output_drift=report(feature("prediction", 0.02, drifted=False)))
    second = replace(
        second,
        output_drift=outputs,
        target_drift=report(feature("label", 0.3, drifted=True)),
        health=replace(second.health, error_rate=0.2, errors={"model": 20, "input": 5}),
    )
    view = WindowsView("1d", [first, second])
    data = embedded(drift_over_time_html(view), "loopline-drift-over-time")
    assert data["features"] == ["age", EVIL_FEATURE]  # the feature rows as before
    assert data["outputs"] == ["prediction", "probability:yes"]
    assert data["output_states"] == [["stable", "stable"], ["no data", "drifted"]]
    assert data["targets"] == ["label"] and data["target_states"] == [["no data", "drifted"]]
    html = drift_over_time_html(view)
    table = html[html.index('<table class="heatmap">') : html.index("</table>")]
    assert table.index(">prediction drift<") < table.index(">probability:yes<") < table.index(">target drift<")
    service = service_over_time_html(view)
    assert embedded(service, "loopline-service")["error rate"] == [None, 0.2]
    assert "20.0% (input 5, model 20)" in service and 'alt="error rate"' in service
