"""The hour the hourly-window tests run in (tests/_clock.py): it waits out the turn of the hour, never longer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests import _clock


class FakeClock:
    """``datetime.now`` and ``sleep`` for :func:`tests._clock.steady_hour`: sleeping moves the clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))

    class FakeDatetime(datetime):
        @classmethod
        def now(cls, tz: object = None) -> FakeDatetime:  # type: ignore[override]
            return fake.now  # type: ignore[return-value]

    monkeypatch.setattr(_clock, "datetime", FakeDatetime)
    monkeypatch.setattr(_clock, "sleep", fake.sleep)  # this module's sleep only, not time.sleep
    return fake


@pytest.mark.parametrize(
    ("at", "hour", "slept"),
    [
        ("09:20:00", "09:00", []),  # the middle of an hour: no wait
        ("09:00:00", "09:00", [35.0]),  # the hour just struck: its window closes GRACE later
        ("09:00:34", "09:00", [1.0]),
        ("09:00:35", "09:00", []),
        ("09:57:00", "09:00", []),  # exactly NEEDED left
        ("09:57:01", "10:00", [179.0 + 35.0]),  # less than NEEDED left: the next hour, once settled
    ],
)
def test_steady_hour_waits_out_the_turn_of_the_hour(clock: FakeClock, at: str, hour: str, slept: list[float]) -> None:
    clock.now = datetime.fromisoformat(f"2026-12-07T{at}+00:00")
    assert _clock.steady_hour() == datetime.fromisoformat(f"2026-12-07T{hour}:00+00:00")
    assert clock.slept == slept
    assert sum(slept) <= (_clock.SETTLED + _clock.NEEDED).total_seconds()
