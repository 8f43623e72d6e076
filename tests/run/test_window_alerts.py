"""Alert rules on closed windows: the value that fired, the stored event, acknowledgement, and the webhook POST to
a real HTTP server (delivered, refused, unreachable, not configured) on SQLite and PostgreSQL."""

from __future__ import annotations

import getpass
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tests.run._windows_data import T0, config, production, rows

from loopline.core.errors import NotFoundError
from loopline.run import check_windows
from loopline.store import Store

HOUR = timedelta(hours=1)


@dataclass
class Hook:
    """A local HTTP server that records the JSON bodies POSTed to it and answers ``status``."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    status: int = 204


@pytest.fixture
def hook() -> Iterator[Hook]:
    received = Hook("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.bodies.append({"type": self.headers["Content-Type"], **json.loads(self.rfile.read(length))})
            self.send_response(received.status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    received.url = f"http://127.0.0.1:{server.server_address[1]}/hook?token=s3cret"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received
    server.shutdown()
    server.server_close()


def test_rules_fire_with_the_value_and_threshold_and_are_listed_and_acknowledged(store: Store) -> None:
    production(store)
    store.predictions.append(
        rows(T0, 60, latency_ms=2.0) + rows(T0 + HOUR, 60, latency_ms=300.0, age=70, city="zzz", offset=100)
    )
    rules = [
        {"when": "latency_p99_ms", "above": 250},
        {"when": "drifted_features", "above": 0},
        {"when": "drift.age", "above": 0.25},
        {"when": "unseen_share.city", "above": 0.2},
        {"when": "missing_share.age", "above": 0.5},
        {"when": "throughput_rps", "below": 0.001},
        {"when": "error_rate", "above": 0.1},
    ]
    check = check_windows(store, config(rules), "1h", now=T0 + 2 * HOUR + timedelta(minutes=1))
    fired = {(a.window_start, a.metric): a for a in check.alerts}
    late = T0 + HOUR
    assert {metric for start, metric in fired if start == late} == {
        "latency_p99_ms",
        "drifted_features",
        "drift.age",
        "unseen_share.city",
    }
    # The first hour's reference draws half its cities from 'b' while the traffic is all 'a': city drifted there.
    assert {metric for start, metric in fired if start == T0} == {"drifted_features"}
    latency = fired[(late, "latency_p99_ms")]
    assert (latency.value, latency.threshold, latency.op, latency.rule) == (
        300.0,
        250.0,
        "above",
        "latency_p99_ms above 250",
    )
    assert fired[(late, "unseen_share.city")].value == 0.5
    psi = next(f.psi for f in check.closed[1].drift.features if f.feature == "age")  # type: ignore[union-attr]
    assert fired[(late, "drift.age")].value == psi
    assert all(a.delivery == "none" and a.acknowledged_at is None for a in check.alerts)

    listed = store.alerts.list("churn")
    assert [a.id for a in listed] == sorted((a.id for a in check.alerts), reverse=True)
    acked = store.alerts.acknowledge(latency.id)
    assert acked.acknowledged_at is not None and acked.acknowledged_by == getpass.getuser()  # the OS user by default
    again = store.alerts.acknowledge(latency.id, actor="someone-else")
    assert (again.acknowledged_at, again.acknowledged_by) == (acked.acknowledged_at, acked.acknowledged_by)  # first
    assert latency.id not in {a.id for a in store.alerts.list("churn", unacknowledged=True)}
    assert store.alerts.list("other") == []
    with pytest.raises(NotFoundError, match="no alert 999.*loopline alerts"):
        store.alerts.acknowledge(999)


def test_alerts_are_posted_to_the_webhook(
    store: Store, hook: Hook, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CHURN_HOOK", hook.url)
    production(store)
    store.predictions.append(rows(T0, 60, latency_ms=300.0))
    rules = [{"when": "latency_p99_ms", "above": 250}]
    check = check_windows(store, config(rules, alerts_webhook_env="CHURN_HOOK"), "1h", now=T0 + 2 * HOUR)
    [alert] = check.alerts
    assert (alert.delivery, alert.delivery_error) == ("sent", None)
    assert store.alerts.get(alert.id).delivery == "sent"
    [body] = hook.bodies
    assert body["type"] == "application/json"
    assert (body["alert_id"], body["model"], body["metric"], body["value"], body["threshold"]) == (
        alert.id,
        "churn",
        "latency_p99_ms",
        300.0,
        250.0,
    )
    assert body["window"] == {"spec": "1h", "start": T0.isoformat(), "end": (T0 + HOUR).isoformat()}


def test_a_refusing_webhook_is_retried_then_recorded_never_raised(
    store: Store, hook: Hook, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import loopline.run._webhook as webhook

    monkeypatch.setattr(webhook, "BACKOFF_S", 0.01)
    monkeypatch.setenv("CHURN_HOOK", hook.url)
    hook.status = 503
    production(store)
    store.predictions.append(rows(T0, 60, latency_ms=300.0))
    rules = [{"when": "latency_p99_ms", "above": 250}]
    monitor = config(rules, alerts_webhook_env="CHURN_HOOK")
    events = webhook.deliver_alerts(store, check_windows_alerts(store, monitor), "CHURN_HOOK", backoff=0.01)
    assert len(hook.bodies) == webhook.ATTEMPTS
    assert [(e.delivery, e.delivery_error) for e in events] == [("failed", "HTTP 503 after 3 attempts")]
    assert store.alerts.get(events[0].id).delivery_error == "HTTP 503 after 3 attempts"
    assert "s3cret" not in caplog.text and "s3cret" not in str(events)

    hook.status = 400  # a refusal is not retried
    hook.bodies.clear()
    again = webhook.deliver_alerts(store, events, "CHURN_HOOK", backoff=0.01)
    assert len(hook.bodies) == 1 and again[0].delivery_error == "HTTP 400 (not retried)"


def check_windows_alerts(store: Store, monitor: Any) -> list[Any]:
    """The alerts of one check whose webhook is not configured (delivery is driven by the test)."""
    quiet = monitor.model_copy(update={"alerts_webhook_env": None})
    return check_windows(store, quiet, "1h", now=T0 + 2 * HOUR).alerts


def test_an_unreachable_or_unset_webhook_is_recorded(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    production(store)
    store.predictions.append(rows(T0, 60, latency_ms=300.0) + rows(T0 + HOUR, 60, latency_ms=300.0, offset=60))
    rules = [{"when": "latency_p99_ms", "above": 250}]
    monkeypatch.delenv("NO_SUCH_HOOK", raising=False)
    first = check_windows(store, config(rules, alerts_webhook_env="NO_SUCH_HOOK"), "1h", now=T0 + HOUR + HOUR / 2)
    assert [(a.delivery, a.delivery_error) for a in first.alerts] == [
        ("failed", "environment variable NO_SUCH_HOOK is not set")
    ]
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("DEAD_HOOK", f"http://127.0.0.1:{port}/")
    monkeypatch.setattr("loopline.run._webhook.BACKOFF_S", 0.01)
    second = check_windows(store, config(rules, alerts_webhook_env="DEAD_HOOK"), "1h", now=T0 + 3 * HOUR)
    [alert] = second.alerts
    assert alert.delivery == "failed" and "Connection refused" in (alert.delivery_error or "")
    monkeypatch.setenv("DEAD_HOOK", "file:///etc/passwd")
    store.predictions.append(rows(T0 + 2 * HOUR, 60, latency_ms=300.0, offset=200))
    third = check_windows(store, config(rules, alerts_webhook_env="DEAD_HOOK"), "1h", now=T0 + 4 * HOUR)
    assert [a.delivery_error for a in third.alerts] == ["the URL in DEAD_HOOK is not http:// or https://"]


def test_the_error_rate_of_a_window_counts_the_failed_requests_and_fires_its_rule(store: Store) -> None:
    from loopline.store import ErrorCount

    production(store)
    store.predictions.append(rows(T0, 60) + rows(T0 + HOUR, 60, offset=100))
    tallies = [  # the second hour: 20 failed requests (15 model, 5 input) next to its 60 predictions
        ErrorCount("e1", "churn", 1, "model", "ValueError", T0 + HOUR + timedelta(minutes=3), 15),
        ErrorCount("e2", "churn", 1, "input", "validation", T0 + HOUR + timedelta(minutes=59), 5),
        ErrorCount("e3", "other", 1, "model", "ValueError", T0, 99),  # another model's
    ]
    store.predictions.append_new([], tallies)
    rules = [{"when": "error_rate", "above": 0.1}]
    check = check_windows(store, config(rules), "1h", now=T0 + 2 * HOUR + timedelta(minutes=1))
    first, second = check.closed
    assert (first.health.error_rate, first.health.errors) == (0.0, {})
    assert second.health.error_rate == 20 / 80 and second.health.errors == {"model": 15, "input": 5}
    assert [(a.window_start, a.metric, a.value) for a in check.alerts] == [(T0 + HOUR, "error_rate", 0.25)]
    stored = store.windows.list("churn", "1h")[1].result["health"]
    assert stored["error_rate"] == 0.25 and stored["errors"] == {"model": 15, "input": 5}


def test_a_count_window_counts_the_failures_since_the_previous_window_up_to_its_last_row(store: Store) -> None:
    from loopline.store import ErrorCount

    production(store)
    store.predictions.append(rows(T0, 30))
    store.predictions.append_new(
        [], [ErrorCount("e1", "churn", 1, "model", "KeyError", T0 + timedelta(minutes=29), 10)]
    )
    check = check_windows(store, config(), "30", now=T0 + 2 * HOUR)
    assert [w.health.error_rate for w in check.closed] == [10 / 40]
    gap = ErrorCount("e2", "churn", 1, "input", "validation", T0 + timedelta(minutes=40), 5)  # between the windows
    store.predictions.append_new(rows(T0 + HOUR, 30, offset=100), [gap])
    later = check_windows(store, config(), "30", now=T0 + 3 * HOUR)
    assert [(w.health.errors, w.health.error_rate) for w in later.closed] == [({"input": 5}, 5 / 35)]
