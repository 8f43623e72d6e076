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
