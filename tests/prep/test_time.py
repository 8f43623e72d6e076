"""Time transforms: date parts and cyclic encodings; lags and rolling windows that only ever look at the past."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopline import ConfigError, DataError
from loopline.prep import Chain, Transform, build_transform
from loopline.prep._time import _stat_values

T0 = datetime(2024, 1, 1)


def both(transform: Transform, frame: pl.DataFrame) -> list[dict[str, Any]]:
    """The table rows, after checking the records give the same (NaN == NaN)."""
    table = transform.transform(frame).to_dicts()
    records = [transform.transform_record(r) for r in frame.to_dicts()]
    assert json.dumps(table, default=str) == json.dumps(records, default=str)
    return table


# -- datetime_parts -----------------------------------------------------------------------------------


def test_parts_are_int64_and_iso() -> None:
    frame = pl.DataFrame({"ts": [datetime(2024, 12, 30, 23, 59, 58), None]})
    transform = build_transform(
        {"type": "datetime_parts", "columns": ["ts"], "parts": ["year", "quarter", "week", "weekday", "dayofyear"]}
    ).fit(frame)
    out = transform.transform(frame)
    assert all(out.schema[c] == pl.Int64 for c in out.columns[1:])
    assert out.row(0)[1:] == (2024, 4, 1, 1, 365)  # ISO week 1 of 2025, a Monday, leap year
    assert both(transform, frame)[1]["ts_year"] is None
    assert transform.counts() == {"ts: null time": 3}  # two tables and one record


def test_cyclic_encodings_use_the_period() -> None:
    frame = pl.DataFrame({"ts": [T0 + timedelta(hours=h) for h in (0, 6, 23)]})
    transform = build_transform(
        {"type": "datetime_parts", "columns": ["ts"], "parts": [], "cyclic": {"hour": 24}, "drop": True}
    ).fit(frame)
    rows = both(transform, frame)
    assert list(rows[0]) == ["ts_hour_sin", "ts_hour_cos"]
    assert rows[0] == {"ts_hour_sin": 0.0, "ts_hour_cos": 1.0}
    assert rows[1]["ts_hour_sin"] == pytest.approx(1.0) and rows[1]["ts_hour_cos"] == pytest.approx(0.0, abs=1e-12)
    assert rows[2]["ts_hour_sin"] == math.sin(23 * (2 * math.pi * (1 / 24)))


def test_polars_sin_and_cos_are_pythons_math_to_the_bit() -> None:
    angles = [i * 0.001 - 50.0 for i in range(100_000)] + [1e6 + i * 0.37 for i in range(1000)]
    series = pl.Series(angles)
    assert series.sin().to_list() == [math.sin(a) for a in angles]
    assert series.cos().to_list() == [math.cos(a) for a in angles]


def test_zoned_columns_give_local_parts_and_records_are_converted() -> None:
    paris = ZoneInfo("Europe/Paris")
    frame = pl.DataFrame({"ts": [datetime(2024, 3, 31, 0, 30, tzinfo=UTC)]}).with_columns(
        pl.col("ts").dt.convert_time_zone("Europe/Paris")
    )
    transform = build_transform({"type": "datetime_parts", "columns": ["ts"], "parts": ["day", "hour"]}).fit(frame)
    assert both(transform, frame)[0] == {"ts": datetime(2024, 3, 31, 1, 30, tzinfo=paris), "ts_day": 31, "ts_hour": 1}
    # a served record in UTC, or as ISO text, is read in the training column's zone (after the DST change here)
    for value in (datetime(2024, 3, 31, 2, 30, tzinfo=UTC), "2024-03-31T02:30:00Z", "2024-03-31T02:30:00"):
        assert transform.transform_record({"ts": value})["ts_hour"] == 4


def test_dates_are_midnight() -> None:
    frame = pl.DataFrame({"d": [date(2024, 2, 29)]})
    transform = build_transform({"type": "datetime_parts", "columns": ["d"], "cyclic": ["month"]}).fit(frame)
    row = both(transform, frame)[0]
    assert (row["d_year"], row["d_month"], row["d_day"], row["d_weekday"], row["d_hour"]) == (2024, 2, 29, 4, 0)


def test_datetime_parts_errors() -> None:
    with pytest.raises(DataError, match="column 'ts' is String, not a date.*parse_dates: \\[ts\\]"):
        build_transform({"type": "datetime_parts", "columns": ["ts"]}).fit(pl.DataFrame({"ts": ["2024-01-01"]}))
    with pytest.raises(ConfigError, match="unknown part 'hours'.*Did you mean 'hour'"):
        build_transform({"type": "datetime_parts", "columns": ["ts"], "parts": ["hours"]})
    with pytest.raises(ConfigError, match="year has no natural period.*cyclic: \\{year: 10\\}"):
        build_transform({"type": "datetime_parts", "columns": ["ts"], "cyclic": ["year"]})
    with pytest.raises(ConfigError, match="the period of hour must be a number > 0"):
        build_transform({"type": "datetime_parts", "columns": ["ts"], "cyclic": {"hour": 0}})


@settings(max_examples=60, deadline=None, database=None)
@given(
    moments=st.lists(
        st.one_of(st.none(), st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2099, 12, 1))),
        min_size=1,
        max_size=15,
    ),
    zone=st.sampled_from([None, "UTC", "America/New_York", "Asia/Kolkata"]),
)
def test_parts_agree_on_any_moment(moments: list[datetime | None], zone: str | None) -> None:
    """Up to 2099: polars' zone tables stop there (no daylight saving after), Python's zoneinfo does not."""
    frame = pl.DataFrame({"ts": moments}, schema={"ts": pl.Datetime("us")})
    if zone:
        frame = frame.with_columns(pl.col("ts").dt.replace_time_zone("UTC").dt.convert_time_zone(zone))
    spec = {"type": "datetime_parts", "columns": ["ts"], "parts": list(_PARTS), "cyclic": list(_PARTS)[1:]}
    both(build_transform(spec).fit(frame), frame)


_PARTS = {"year": 0, "quarter": 4, "month": 12, "week": 53, "day": 31, "weekday": 7, "dayofyear": 366, "hour": 24}


# -- lag and rolling -----------------------------------------------------------------------------------


def readings() -> pl.DataFrame:
    hours = [0, 1, 1, 2, 3, 0, 2, 5]
    return pl.DataFrame(
        {
            "ts": [T0 + timedelta(hours=h) for h in hours],
            "sensor": ["a", "a", "a", "a", "a", "b", "b", "b"],
            "v": [1.0, 2.0, 3.0, None, 5.0, 10.0, float("nan"), 30.0],
            "y": [0, 1, 0, 1, 0, 1, 0, 1],
        }
    )


def test_lags_of_training_rows_come_from_strictly_earlier_times() -> None:
    lag = build_transform({"type": "lag", "columns": ["v"], "time": "ts", "by": ["sensor"], "lags": [1, 2]})
    out = lag.fit_transform(readings(), "y")
    assert out["v_lag1"].to_list()[:5] == [None, 1.0, 1.0, 3.0, None]  # rows at 1h do not see each other
    assert out["v_lag2"].to_list()[:5] == [None, None, None, 2.0, 3.0]
    assert math.isnan(out["v_lag1"][7]) and out["v_lag2"][7] == 10.0
    assert lag.counts() == {}


def test_serving_uses_the_history_kept_at_the_end_of_training() -> None:
    lag = build_transform({"type": "lag", "columns": ["v"], "time": "ts", "by": ["sensor"], "lags": [1, 2]})
    lag.fit(readings(), "y")
    state = lag.get_state()
    assert state["history_"] == {
        "keys": ["a", "a", "b", "b"],
        "times": [1704067200000000 + h * 3_600_000_000 for h in (2, 3, 2, 5)],
        "values": {"v": [None, 5.0, "nan", 30.0]},  # JSON: NaN written as text
    }
    assert json.loads(json.dumps(state, allow_nan=False)) == state
    later = pl.DataFrame({"ts": [T0 + timedelta(days=1)] * 3, "sensor": ["a", "b", "zz"], "v": [0.0, 0.0, 0.0]})
    rows = both(lag, later)
    assert [(r["v_lag1"], r["v_lag2"]) for r in rows[::2]] == [(5.0, None), (None, None)]
    assert rows[1]["v_lag1"] == 30.0 and math.isnan(rows[1]["v_lag2"])
    assert lag.counts() == {"unknown key": 2}
    # a back-dated record sees only the history before its own time
    assert lag.transform_record({"ts": T0 + timedelta(hours=3), "sensor": "a"})["v_lag1"] is None


def test_rows_of_one_batch_never_see_each_other() -> None:
    lag = build_transform({"type": "lag", "columns": ["v"], "time": "ts", "lags": [1]}).fit(readings())
    batch = pl.DataFrame({"ts": [T0 + timedelta(days=d) for d in (1, 2)], "v": [100.0, 200.0]})
    assert both(lag, batch)[1]["v_lag1"] == 30.0  # the last training row (b at 5h), not the batch's day 1


def test_refresh_feeds_newer_history_and_max_keys_bounds_it() -> None:
    lag = build_transform({"type": "lag", "columns": ["v"], "time": "ts", "by": ["sensor"], "max_keys": 1})
    lag.fit(readings())
    assert lag.history_["keys"] == ["b"] and lag.keys_dropped_ == 1  # type: ignore[attr-defined]
    fresh = pl.DataFrame({"ts": [T0 + timedelta(hours=9)], "sensor": ["b"], "v": [99.0]})
    lag.refresh(fresh)  # type: ignore[attr-defined]
    record = {"ts": T0 + timedelta(hours=10), "sensor": "b", "v": 0.0}
    assert lag.transform_record(record)["v_lag1"] == 99.0
    assert both(lag, pl.DataFrame([record]))[0]["v_lag1"] == 99.0


def test_rolling_values_skip_nulls_and_nan() -> None:
    spec = {"type": "rolling", "columns": ["v"], "time": "ts", "by": ["sensor"], "windows": [3], "min_periods": 2}
    rolling = build_transform({**spec, "stats": ["mean", "sum", "min", "max", "std"]})
    out = rolling.fit_transform(readings(), "y")
    row = out.row(4, named=True)  # a at 3h: window 2.0, 3.0, null
    assert (row["v_mean3"], row["v_sum3"], row["v_min3"], row["v_max3"]) == (2.5, 5.0, 2.0, 3.0)
    assert row["v_std3"] == pytest.approx(math.sqrt(0.5))
    assert out["v_mean3"][1] is None  # one value, min_periods 2
    assert out["v_sum3"][7] is None  # b at 5h: 10.0 and NaN (skipped) -> one value
    served = both(rolling, pl.DataFrame({"ts": [T0 + timedelta(days=1)], "sensor": ["a"], "v": [0.0]}))[0]
    assert served["v_mean3"] == 4.0  # 3.0, null, 5.0


def test_lag_and_rolling_survive_the_bundle_state() -> None:
    chain = Chain.from_config(
        [
            {"type": "lag", "columns": ["v"], "time": "ts", "by": ["sensor"]},
            {"type": "rolling", "columns": ["v"], "time": "ts", "by": ["sensor"], "stats": ["max"]},
        ]
    )
    chain.fit_transform(readings(), target="y")
    rebuilt = Chain.from_state(json.loads(json.dumps(chain.to_state(), allow_nan=False)))
    record = {"ts": T0 + timedelta(days=1), "sensor": "b", "v": 1.0, "y": 0}
    assert rebuilt.transform_record(record) == chain.transform_record(record)
    assert rebuilt.transform_record(record)["v_max3"] == 30.0
    assert chain.lineage()["v_lag1"] == ["v", "ts", "sensor"]


def test_lag_and_rolling_errors() -> None:
    frame = readings().with_columns(label=pl.col("ts").cast(pl.String), f=pl.col("v"))
    with pytest.raises(DataError, match="time column 'label' is String.*parse_dates"):
        build_transform({"type": "lag", "columns": ["v"], "time": "label"}).fit(frame)
    with pytest.raises(DataError, match="key column 'f' is Float64.*Cast 'f'"):
        build_transform({"type": "lag", "columns": ["v"], "time": "ts", "by": ["f"]}).fit(frame)
    with pytest.raises(DataError, match="column 'sensor' is String; it can hold numbers"):
        build_transform({"type": "rolling", "columns": ["sensor"], "time": "ts"}).fit(frame)
    with pytest.raises(DataError, match="column 'vv' is missing.*Did you mean 'v'"):
        build_transform({"type": "lag", "columns": ["vv"], "time": "ts"}).fit(frame)
    with pytest.raises(ConfigError, match="lags must hold integers from 1 to 1000.*lags: \\[1, 7\\]"):
        build_transform({"type": "lag", "columns": ["v"], "time": "ts", "lags": [0]})
    with pytest.raises(ConfigError, match="invalid stat 'avg'"):
        build_transform({"type": "rolling", "columns": ["v"], "time": "ts", "stats": ["avg"]})
    with pytest.raises(ConfigError, match="'ts' orders or groups the rows"):
        build_transform({"type": "lag", "columns": ["ts"], "time": "ts"})
    with pytest.raises(ConfigError, match="max_keys must be an integer >= 1"):
        build_transform({"type": "lag", "columns": ["v"], "time": "ts", "max_keys": 0})


# -- properties ---------------------------------------------------------------------------------------

values = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5).map(float))
rows_strategy = st.lists(
    st.tuples(st.sampled_from(["a", "b", None]), st.integers(0, 6), values), min_size=1, max_size=25
)


def _frame(rows: list[tuple[str | None, int, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        {"k": [r[0] for r in rows], "t": [r[1] for r in rows], "v": [r[2] for r in rows]},
        schema={"k": pl.String, "t": pl.Int64, "v": pl.Float64},
    )


def _earlier(rows: list[tuple[str | None, int, float | None]], i: int) -> list[float | None]:
    """The values of the rows of row i's key with a strictly earlier time, oldest first (ties: input order)."""
    key, moment = rows[i][0], rows[i][1]
    earlier = sorted((r[1], j) for j, r in enumerate(rows) if r[0] == key and r[1] < moment)
    return [rows[j][2] for _, j in earlier]


@settings(max_examples=80, deadline=None, database=None)
@given(rows=rows_strategy)
def test_training_lags_and_windows_only_see_strictly_earlier_rows(rows: list[tuple[str | None, int, Any]]) -> None:
    frame = _frame(rows)
    lag = build_transform({"type": "lag", "columns": ["v"], "time": "t", "by": ["k"], "lags": [1, 3]})
    stats = ["mean", "sum", "min", "max", "std"]
    rolling = build_transform({"type": "rolling", "columns": ["v"], "time": "t", "by": ["k"], "stats": stats})
    lagged, rolled = lag.fit_transform(frame), rolling.fit_transform(frame)
    for i in range(len(rows)):
        past = _earlier(rows, i)
        for k in (1, 3):
            want = past[-k] if len(past) >= k else None
            assert json.dumps(lagged[f"v_lag{k}"][i]) == json.dumps(want)
        window = [v for v in past[-3:] if v is not None and not math.isnan(v)]
        want_stats = _stat_values(window, 1)
        assert json.dumps([rolled[f"v_{s}3"][i] for s in stats]) == json.dumps([want_stats[s] for s in stats])


@settings(max_examples=80, deadline=None, database=None)
@given(train=rows_strategy, test=rows_strategy, windows=st.sampled_from([[1], [2, 5], [4]]))
def test_table_and_records_agree_from_the_history(
    train: list[tuple[str | None, int, Any]], test: list[tuple[str | None, int, Any]], windows: list[int]
) -> None:
    spec = {"columns": ["v"], "time": "t", "by": ["k"]}
    lag = build_transform({"type": "lag", **spec, "lags": windows}).fit(_frame(train))
    both(lag, _frame(test))
    rolling = build_transform(
        {"type": "rolling", **spec, "windows": windows, "stats": ["mean", "sum", "min", "max", "std"]}
    ).fit(_frame(train))
    both(rolling, _frame(test))


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "datetime_parts", "columns": ["ts"], "cyclic": ["hour"]},
        {"type": "lag", "columns": ["v"], "time": "ts", "by": ["sensor"]},
        {"type": "rolling", "columns": ["v"], "time": "ts", "by": ["sensor"], "stats": ["mean", "std"]},
    ],
)
def test_a_batch_of_nulls_has_polars_type_null_and_gives_nulls(spec: dict[str, Any]) -> None:
    transform = build_transform(spec)
    transform.fit_transform(readings(), "y")
    nulls = pl.DataFrame({"ts": [None, None], "sensor": [None, None], "v": [None, None]})
    rows = both(transform, nulls)
    assert all(value is None for row in rows for value in row.values())
