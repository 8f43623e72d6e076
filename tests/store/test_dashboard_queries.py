"""The store queries the dashboard pages with (SQLite and PostgreSQL): window specs per model, alert counts and
pages of alerts. The loop's pipeline listing is tested with the loop pages (tests/ui/test_ui_loop.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from loopline.store import AlertRow, Store, WindowRow

T0 = datetime(2025, 3, 3, tzinfo=UTC)


def window(seq: int, *, spec: str = "1h", model: str = "churn") -> WindowRow:
    start = T0 + timedelta(hours=seq)
    return WindowRow(model, spec, seq, start, start + timedelta(hours=1), None, 10, 0, {"seq": seq})


def fired(n: int) -> list[AlertRow]:
    return [AlertRow(f"rule {i}", "rows", "above", float(i), 10.0) for i in range(n)]


def test_window_specs_are_counted_per_model(store: Store) -> None:
    assert store.windows.specs("churn") == {}
    for seq in (1, 2, 3):
        store.windows.close(window(seq), [])
    store.windows.close(window(1, spec="1d"), [])
    store.windows.close(window(1, model="other"), [])
    assert store.windows.specs("churn") == {"1d": 1, "1h": 3}
    assert store.windows.specs("other") == {"1h": 1}


def test_alerts_are_counted_and_paged_newest_first(store: Store) -> None:
    assert store.alerts.count() == 0 and store.alerts.count("churn", unacknowledged=True) == 0
    store.windows.close(window(1), fired(2))
    store.windows.close(window(2), fired(3))
    store.windows.close(window(1, model="other"), fired(1))
    newest = [a.id for a in store.alerts.list("churn")]
    assert len(newest) == 5 and newest == sorted(newest, reverse=True)
    assert [a.id for a in store.alerts.list("churn", limit=2, offset=2)] == newest[2:4]
    assert store.alerts.list("churn", limit=2, offset=5) == []
    assert (store.alerts.count(), store.alerts.count("churn"), store.alerts.count("other")) == (6, 5, 1)
    store.alerts.acknowledge(newest[0])
    assert store.alerts.count("churn", unacknowledged=True) == 4
    assert [a.id for a in store.alerts.list("churn", unacknowledged=True, limit=1, offset=1)] == [newest[2]]


def test_one_input_field_of_a_span_is_read_in_log_order_up_to_a_limit(store: Store) -> None:
    from loopline.store import PredictionRow

    rows = [
        PredictionRow(f"p{i:03d}", "churn", 1, T0 + timedelta(minutes=i), {"age": 20.5 + i, "city": f"c{i % 2}"},
                      {"prediction": 1}, 1.0)
        for i in range(10)
    ]  # fmt: skip
    rows.append(PredictionRow("q", "churn", 1, T0 + timedelta(minutes=3), {"city": "<none>"}, {"prediction": 0}, 1.0))
    rows.append(PredictionRow("r", "other", 1, T0 + timedelta(minutes=3), {"age": 99.0}, {"prediction": 0}, 1.0))
    store.predictions.append(rows)
    end = T0 + timedelta(minutes=6)
    ages, more = store.predictions.input_values("churn", "age", start=T0 + timedelta(minutes=2), end=end, limit=10)
    assert (ages, more) == ([22.5, 23.5, None, 24.5, 25.5], False)  # "q" has no age; [start, end)
    cities, more = store.predictions.input_values("churn", "city", start=T0, end=end, limit=3)
    assert (cities, more) == (["c0", "c1", "c0"], True)
    assert store.predictions.input_values("churn", "city", start=end, end=end, limit=3) == ([], False)
