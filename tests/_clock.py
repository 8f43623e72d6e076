"""The hour a test of hourly monitoring windows runs in: away from the turn of the hour, so that the windows the
test expects closed (every one that ended ``GRACE`` before now) are the same at each of its checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from time import sleep

from loopline.run._windows import GRACE

SETTLED = GRACE + timedelta(seconds=5)
"""How long after the hour strikes the window that ended then is surely closed by a check."""

NEEDED = timedelta(minutes=3)
"""How long before the next hour strikes a test must start: the longest such test runs well within this."""


def steady_hour() -> datetime:
    """The start of the current hour (UTC), once it has struck more than :data:`SETTLED` ago and has at least
    :data:`NEEDED` left; waits (at most ``SETTLED + NEEDED``) when the clock is in between. A test that serves
    traffic up to this hour then finds its window closed, and the next one still open, at every check."""
    while True:
        now = datetime.now(UTC)
        hour = now.replace(minute=0, second=0, microsecond=0)
        if now - hour >= SETTLED and hour + timedelta(hours=1) - now >= NEEDED:
            return hour
        settled_at = (hour if now - hour < SETTLED else hour + timedelta(hours=1)) + SETTLED
        sleep((settled_at - now).total_seconds())
