"""Window specs over the prediction log: by time (``1h``, ``6h``, ``1d``, ``1w``, ``1mo``) or by count (``10000``).

Time windows are aligned to UTC calendar boundaries: hours to ``00:00``, days to midnight, weeks to Monday
midnight (ISO weeks), months to the first of the month. A window is ``[start, end)``; its ``seq`` is its number
since the Unix epoch in its own unit (hours, days, weeks, months), so the same window always gets the same key.
Count windows hold ``rows`` consecutive predictions ordered by ``(created_at, prediction_id)``; their ``seq``
counts them from 1 per model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, cast

from loopline.core.errors import ConfigError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_MONDAY = datetime(1970, 1, 5, tzinfo=UTC)  # the first Monday after the epoch
_PATTERN = re.compile(r"^(?:(?P<count>[1-9][0-9]*)|(?P<n>[1-9][0-9]*)(?P<unit>h|d|w|mo))$")
_HINT = (
    "Write a time window as 1h, 2h, 3h, 4h, 6h, 8h, 12h, 1d, 1w, 1mo, 2mo, 3mo, 4mo, 6mo or 12mo, or a count as 10000."
)
MAX_COUNT = 10_000_000

Unit = Literal["h", "d", "w", "mo"]


@dataclass(frozen=True)
class WindowSpec:
    """A parsed window spec: ``unit`` and ``size`` for a time window, ``rows`` for a count window."""

    text: str
    unit: Unit | None = None
    size: int = 0
    rows: int | None = None

    @classmethod
    def parse(cls, text: str) -> WindowSpec:
        """``1h``…``1mo`` or a row count; ConfigError naming the spec and the allowed forms otherwise."""
        match = _PATTERN.match(text.strip())
        if match is None:
            raise ConfigError(f"window {text!r} is neither a duration nor a row count.", key="window", hint=_HINT)
        if match["count"]:
            rows = int(match["count"])
            if rows > MAX_COUNT:
                raise ConfigError(f"window {text!r} holds more than {MAX_COUNT} rows.", key="window", hint=_HINT)
            return cls(text=str(rows), rows=rows)
        size = int(match["n"])
        unit = cast(Unit, match["unit"])  # the pattern allows these four only
        fits = {"h": 24 % size == 0, "d": size == 1, "w": size == 1, "mo": 12 % size == 0}[unit]
        if not fits:
            raise ConfigError(
                f"window {text!r} does not divide the calendar evenly, so it cannot align to UTC boundaries.",
                key="window",
                hint=_HINT,
            )
        return cls(text=f"{size}{unit}", unit=unit, size=size)

    @property
    def by_count(self) -> bool:
        """Whether windows hold a number of rows (else a span of time)."""
        return self.rows is not None

    def seq_of(self, moment: datetime) -> int:
        """The number of the time window holding ``moment``."""
        moment = moment.astimezone(UTC)
        if self.unit == "mo":
            return ((moment.year - 1970) * 12 + moment.month - 1) // self.size
        if self.unit == "w":
            return (moment - _EPOCH_MONDAY) // timedelta(weeks=1)
        return (moment - _EPOCH) // self._step()

    def start_of(self, seq: int) -> datetime:
        """The start of time window ``seq``."""
        if self.unit == "mo":
            months = seq * self.size
            return datetime(1970 + months // 12, months % 12 + 1, 1, tzinfo=UTC)
        if self.unit == "w":
            return _EPOCH_MONDAY + seq * timedelta(weeks=1)
        return _EPOCH + seq * self._step()

    def bounds(self, seq: int) -> tuple[datetime, datetime]:
        """``[start, end)`` of time window ``seq``."""
        return self.start_of(seq), self.start_of(seq + 1)

    def _step(self) -> timedelta:
        if self.unit is None:
            raise ConfigError(f"window {self.text!r} counts rows; it has no span of time.", key="window")
        return timedelta(hours=self.size) if self.unit == "h" else timedelta(days=self.size)
