"""Table steps that combine inputs: asof_join (nearest earlier row by time) and union (stacked, types unified)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from loopline import DataError
from loopline.core import STEP_TYPES, StepContext
from loopline.core.yamlfile import parse_pipeline
from loopline.run import Runner
from loopline.store import Store
from loopline.testing import check_step_type

T0 = datetime(2024, 1, 1)


def at(*minutes: int | None) -> list[datetime | None]:
    return [None if m is None else T0 + timedelta(minutes=m) for m in minutes]


def run_step(type_name: str, inputs: list[Any], **config: Any) -> pl.DataFrame:
    step_type = STEP_TYPES.get(type_name)
    ctx = StepContext(run_id="test-run", step="s", params={})
    out: pl.DataFrame = step_type.run(step_type.Config.model_validate(config), inputs, ctx)["out"]
    return out


EVENTS = pl.DataFrame({"ts": at(10, 2, None, 30, 5, 0), "sensor": ["a", "a", "a", "b", "b", "b"], "e": range(6)})
READINGS = pl.DataFrame(
    {"ts": at(0, 5, 10, 1, 29, None), "sensor": ["a", "a", "a", "b", "b", "b"], "temp": [10.0, 11, 12, 20, 21, 99]}
)


@pytest.mark.parametrize("name", ["asof_join", "union"])
def test_step_types_conform(name: str) -> None:
    check_step_type(STEP_TYPES.get(name))


def test_asof_join_takes_the_nearest_earlier_reading_of_the_same_key() -> None:
    out = run_step("asof_join", [EVENTS, READINGS], on="ts", by=["sensor"])
    assert out.columns == ["ts", "sensor", "e", "temp"]
    assert out["e"].to_list() == list(range(6))  # the first input's rows, in order
    assert out["temp"].to_list() == [12.0, 10.0, None, 21.0, 20.0, None]  # exact times match by default


def test_asof_join_tolerance_and_strictly_earlier() -> None:
    out = run_step("asof_join", [EVENTS, READINGS], on="ts", by=["sensor"], tolerance="3m", allow_exact_matches=False)
    assert out["temp"].to_list() == [None, 10.0, None, 21.0, None, None]


def test_asof_join_without_key_numbers_and_some_columns() -> None:
    left = pl.DataFrame({"t": [3, 1, 10], "x": [1, 2, 3]})
    right = pl.DataFrame({"t": [0, 2, 9], "v": [5.0, 6.0, 7.0], "x": [0, 0, 0], "noise": [0, 0, 0]})
    out = run_step("asof_join", [left, right], on="t", columns=["v", "x"], tolerance=1)
    assert out.to_dicts() == [
        {"t": 3, "x": 1, "v": 6.0, "x_right": 0},
        {"t": 1, "x": 2, "v": 5.0, "x_right": 0},
        {"t": 10, "x": 3, "v": 7.0, "x_right": 0},
    ]


def test_asof_join_aligns_time_units_and_zones() -> None:
    left = EVENTS.with_columns(pl.col("ts").dt.cast_time_unit("ns").dt.replace_time_zone("UTC"))
    out = run_step("asof_join", [left, READINGS], on="ts", by=["sensor"])
    assert out.schema["ts"] == pl.Datetime("us", "UTC")
    assert out["temp"].to_list()[:2] == [12.0, 10.0]


def test_asof_join_errors_say_what_to_do() -> None:
    with pytest.raises(DataError, match="column 'sensr' is not in the first input.*Did you mean 'sensor'"):
        run_step("asof_join", [EVENTS, READINGS], on="ts", by=["sensr"])
    text = EVENTS.with_columns(pl.col("ts").cast(pl.String))
    with pytest.raises(DataError, match="join key 'ts' is String in the first input.*parse_dates: \\[ts\\]"):
        run_step("asof_join", [text, READINGS], on="ts")
    with pytest.raises(DataError, match="tolerance 5.0 is a number, but 'ts' holds times.*tolerance: 5m"):
        run_step("asof_join", [EVENTS, READINGS], on="ts", tolerance=5)
    numbers = pl.DataFrame({"t": [1]})
    with pytest.raises(DataError, match="tolerance '5m' is a duration, but 't' holds numbers"):
        run_step("asof_join", [numbers, numbers], on="t", tolerance="5m")
    with pytest.raises(DataError, match="column 'tempp' is not in the second input.*Did you mean 'temp'"):
        run_step("asof_join", [EVENTS, READINGS], on="ts", columns=["tempp"])


def test_union_aligns_columns_by_name_and_unifies_types() -> None:
    first = pl.DataFrame(
        {"id": [1, 2], "x": [1, 2], "when": at(0, 1), "city": ["b", None]}, schema_overrides={"x": pl.Int32}
    )
    second = pl.DataFrame(
        {"x": [2.5], "id": [3], "flag": [True], "when": [datetime(2024, 1, 2, tzinfo=UTC)]},
        schema_overrides={"when": pl.Datetime("ms", "UTC")},
    )
    third = pl.DataFrame(
        {"id": [4], "x": pl.Series([None], dtype=pl.Null), "city": pl.Series(["a"], dtype=pl.Categorical)}
    )
    out = run_step("union", [first, second, third], source_column="input")
    assert out.columns == ["id", "x", "when", "city", "flag", "input"]
    assert out.schema["x"] == pl.Float64 and out.schema["when"] == pl.Datetime("us", "UTC")
    assert out.schema["city"] == pl.String and out["city"].to_list() == ["b", None, None, "a"]
    assert out["x"].to_list() == [1.0, 2.0, 2.5, None]
    assert out["when"].to_list()[0] == datetime(2024, 1, 1, tzinfo=UTC)  # naive read as UTC beside a zoned one
    assert out["input"].to_list() == [1, 1, 2, 3]
    assert out["flag"].to_list() == [None, None, True, None]
    common = run_step("union", [first, second, third], columns="common")
    assert common.columns == ["id", "x"]
    ints = run_step("union", [first.select("x"), pl.DataFrame({"x": [7]}, schema={"x": pl.UInt8})])
    assert ints.schema["x"] == pl.Int64


def test_union_errors_name_the_column_and_the_inputs() -> None:
    with pytest.raises(DataError, match="column 'x' is Int64 in input #1 and String in input #3.*derive step"):
        run_step("union", [pl.DataFrame({"x": [1]}), pl.DataFrame({"y": [1]}), pl.DataFrame({"x": ["a"]})])
    with pytest.raises(DataError, match="source_column 'x' is already a column"):
        run_step("union", [pl.DataFrame({"x": [1]}), pl.DataFrame({"x": [1]})], source_column="x")


def test_both_steps_from_yaml(tmp_path: Path) -> None:
    EVENTS.write_parquet(tmp_path / "events.parquet")
    READINGS.write_parquet(tmp_path / "readings.parquet")
    READINGS.head(2).write_parquet(tmp_path / "late.parquet")
    pipeline = parse_pipeline(
        f"""
name: sensors
steps:
  events:   {{type: file, path: "{tmp_path / "events.parquet"}"}}
  readings: {{type: file, path: "{tmp_path / "readings.parquet"}"}}
  late:     {{type: file, path: "{tmp_path / "late.parquet"}"}}
  all:      {{type: union, inputs: [readings, late], source_column: batch}}
  joined:   {{type: asof_join, inputs: [events, all], on: ts, by: [sensor], tolerance: 5m, columns: [temp]}}
"""
    )
    with Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "artifacts") as store:
        result = Runner(store).run(pipeline)
        assert result.output("all").height == 8
        assert result.output("joined")["temp"].to_list() == [12.0, 10.0, None, 21.0, 20.0, None]
