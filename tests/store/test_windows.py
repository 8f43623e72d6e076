from __future__ import annotations

from datetime import UTC, datetime, timedelta

from loopline.store import AlertRow, Store, WindowRow

T0 = datetime(2025, 3, 3, tzinfo=UTC)


def window(seq: int, *, spec: str = "1h", model: str = "churn") -> WindowRow:
    start = T0 + timedelta(hours=seq)
    return WindowRow(model, spec, seq, start, start + timedelta(hours=1), None, 10 * seq, seq % 2, {"seq": seq})


def test_windows_are_stored_once_with_their_alerts(store: Store) -> None:
    assert store.windows.last("churn", "1h") is None
    closed = store.windows.close(window(1), [AlertRow("rows above 5", "rows", "above", 5.0, 10.0)], delivery="pending")
    assert closed is not None
    stored, [alert] = closed
    assert (stored.seq, stored.rows, stored.drifted, stored.result, stored.start_at) == (
        1,
        10,
        1,
        {"seq": 1},
        T0 + timedelta(hours=1),
    )
    assert (alert.window_id, alert.window_start, alert.value, alert.delivery, alert.acknowledged) == (
        stored.id,
        stored.start_at,
        10.0,
        "pending",
        False,
    )
    assert store.windows.close(window(1), [AlertRow("again", "rows", "above", 1.0, 10.0)]) is None
    assert [a.rule for a in store.alerts.list()] == ["rows above 5"]
    store.alerts.record_delivery(alert.id, "failed", "HTTP 500 after 3 attempts")
    assert store.alerts.get(alert.id).delivery_error == "HTTP 500 after 3 attempts"


def test_windows_are_listed_per_model_and_spec(store: Store) -> None:
    for seq in (3, 1, 2):
        store.windows.close(window(seq), [])
    store.windows.close(window(1, spec="1d"), [])
    store.windows.close(window(1, model="other"), [])
    assert [w.seq for w in store.windows.list("churn", "1h")] == [1, 2, 3]
    assert [(w.spec, w.seq) for w in store.windows.list("churn")] == [("1d", 1), ("1h", 1), ("1h", 2), ("1h", 3)]
    last = store.windows.last("churn", "1h")
    assert last is not None and last.seq == 3
    since = store.windows.list("churn", "1h", since=T0 + timedelta(hours=2, minutes=30))
    assert [w.seq for w in since] == [2, 3]
    assert [w.seq for w in store.windows.list("churn", "1h", until=T0 + timedelta(hours=2))] == [1]
    assert [w.seq for w in store.windows.list("churn", "1h", limit=2)] == [2, 3]
