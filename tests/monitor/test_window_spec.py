from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from loopline.core.errors import ConfigError
from loopline.monitor import WindowSpec
from loopline.run._windows import _seq_expr


@pytest.mark.parametrize(
    ("text", "moment", "start", "end"),
    [
        ("1h", "2026-03-05T10:42:00", "2026-03-05T10:00:00", "2026-03-05T11:00:00"),
        ("6h", "2026-03-05T10:42:00", "2026-03-05T06:00:00", "2026-03-05T12:00:00"),
        ("1d", "2026-03-05T23:59:59", "2026-03-05T00:00:00", "2026-03-06T00:00:00"),
        ("1w", "2026-03-05T10:00:00", "2026-03-02T00:00:00", "2026-03-09T00:00:00"),  # Thursday -> Monday
        ("1w", "2026-03-02T00:00:00", "2026-03-02T00:00:00", "2026-03-09T00:00:00"),
        ("1mo", "2026-02-28T23:00:00", "2026-02-01T00:00:00", "2026-03-01T00:00:00"),
        ("1mo", "2026-12-31T23:00:00", "2026-12-01T00:00:00", "2027-01-01T00:00:00"),
        ("3mo", "2026-05-10T00:00:00", "2026-04-01T00:00:00", "2026-07-01T00:00:00"),
    ],
)
def test_time_windows_align_to_utc_calendar_boundaries(text: str, moment: str, start: str, end: str) -> None:
    spec = WindowSpec.parse(text)
    at = datetime.fromisoformat(moment).replace(tzinfo=UTC)
    seq = spec.seq_of(at)
    assert spec.bounds(seq) == (
        datetime.fromisoformat(start).replace(tzinfo=UTC),
        datetime.fromisoformat(end).replace(tzinfo=UTC),
    )
    assert spec.seq_of(spec.start_of(seq + 1)) == seq + 1
    frame = pl.DataFrame({"created_at": [at]}).with_columns(pl.col("created_at").dt.replace_time_zone("UTC"))
    assert frame.select(_seq_expr(spec)).item() == seq  # the vectorised form agrees


def test_a_zone_aware_moment_is_placed_in_utc() -> None:
    spec = WindowSpec.parse("1d")
    paris = datetime(2026, 3, 6, 0, 30, tzinfo=UTC) + timedelta(hours=1)
    assert spec.seq_of(paris.astimezone()) == spec.seq_of(datetime(2026, 3, 6, 1, 30, tzinfo=UTC))


def test_count_windows() -> None:
    spec = WindowSpec.parse("10000")
    assert (spec.by_count, spec.rows, spec.text) == (True, 10000, "10000")
    assert not WindowSpec.parse("1d").by_count


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5h", "does not divide the calendar evenly"),
        ("2d", "does not divide the calendar evenly"),
        ("5mo", "does not divide the calendar evenly"),
        ("1y", "neither a duration nor a row count"),
        ("0", "neither a duration nor a row count"),
        ("-5", "neither a duration nor a row count"),
        ("", "neither a duration nor a row count"),
        ("99999999", "more than"),
    ],
)
def test_bad_specs_say_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        WindowSpec.parse(text)
    assert "1h, 2h" in str(info.value) and info.value.key == "window"
