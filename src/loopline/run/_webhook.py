"""POST fired alerts to the webhook whose URL an environment variable holds; record what became of each.

The URL (which may carry a token) is read from the environment when alerts are sent, never stored, logged or
put in a message. Each alert is one POST of JSON with a timeout, retried a bounded number of times on a
connection error, a timeout or a 5xx answer (not on a 4xx: the receiver refused it). A failure is recorded on the
alert (``delivery`` ``failed`` and the reason) and never raised: the check that fired the alert goes on.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopline.store import AlertEvent, Store

log = logging.getLogger("loopline.monitor")

TIMEOUT_S = 5.0
ATTEMPTS = 3
BACKOFF_S = 0.5


def deliver_alerts(
    store: Store,
    events: list[AlertEvent],
    env_name: str,
    *,
    timeout: float | None = None,
    attempts: int | None = None,
    backoff: float | None = None,
) -> list[AlertEvent]:
    """POST each of ``events`` to the URL in ``$env_name``; return them with their delivery recorded.

    ``timeout`` (seconds per attempt), ``attempts`` and ``backoff`` (seconds, doubled after each failure) default
    to :data:`TIMEOUT_S`, :data:`ATTEMPTS` and :data:`BACKOFF_S`.
    """
    timeout = TIMEOUT_S if timeout is None else timeout
    attempts = ATTEMPTS if attempts is None else attempts
    backoff = BACKOFF_S if backoff is None else backoff
    url = os.environ.get(env_name, "").strip()
    problem = None
    if not url:
        problem = f"environment variable {env_name} is not set"
    elif not url.lower().startswith(("http://", "https://")):
        problem = f"the URL in {env_name} is not http:// or https://"
    delivered = []
    for event in events:
        error = problem or post_json(url, alert_payload(event), timeout=timeout, attempts=attempts, backoff=backoff)
        status = "failed" if error else "sent"
        if error:
            log.warning("alert %d of %s not delivered: %s", event.id, event.model_name, error)
        store.alerts.record_delivery(event.id, status, error)
        delivered.append(replace(event, delivery=status, delivery_error=error))
    return delivered


def alert_payload(event: AlertEvent) -> dict[str, Any]:
    """The JSON body of an alert's POST."""
    return {
        "source": "loopline",
        "alert_id": event.id,
        "model": event.model_name,
        "window": {"spec": event.spec, "start": event.window_start.isoformat(), "end": event.window_end.isoformat()},
        "rule": event.rule,
        "metric": event.metric,
        "op": event.op,
        "threshold": event.threshold,
        "value": event.value,
        "created_at": event.created_at.isoformat(),
    }


def post_json(url: str, payload: dict[str, Any], *, timeout: float, attempts: int, backoff: float) -> str | None:
    """POST ``payload``; None when a 2xx came back, else why not (the URL is never part of the reason)."""
    body = json.dumps(payload).encode()
    reason = "not attempted"
    for attempt in range(max(attempts, 1)):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "loopline"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # the scheme is checked above
                response.read()
            return None
        except urllib.error.HTTPError as exc:
            reason = f"HTTP {exc.code}"
            if exc.code < 500:
                return f"{reason} (not retried)"
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            cause = getattr(exc, "reason", exc)
            reason = f"{type(cause).__name__}: {cause}" if not isinstance(cause, str) else cause
    return f"{reason} after {max(attempts, 1)} attempts"
