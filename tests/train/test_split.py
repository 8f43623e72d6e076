from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from loopline.core.errors import ConfigError, DataError
from loopline.train import parse_gap, split_table


def _timed(n: int = 30) -> pl.DataFrame:
    start = datetime(2013, 1, 1, tzinfo=UTC)
    order = [(i * 7) % n for i in range(n)]  # not sorted
    times = [start + timedelta(days=i) for i in order]
    return pl.DataFrame(
        {
            "when": [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in times],
            "at": times,
            "day": order,
            "y": [i % 2 for i in order],
        }
    )


@pytest.mark.parametrize("column", ["when", "at"])
def test_time_split_by_iso_strings_or_datetimes(column: str) -> None:
    parts = split_table(
        _timed(),
        method="time",
        target="y",
        time_column=column,
        valid_from="2013-01-21T00:00:00Z",
        test_from=datetime(2013, 1, 26, tzinfo=UTC),
    )
    assert parts["train"]["day"].to_list() == list(range(20))
    assert parts["valid"]["day"].to_list() == list(range(20, 25))
    assert parts["test"]["day"].to_list() == list(range(25, 30))
    assert parts["train"].columns == _timed().columns


def test_time_split_without_test_from_has_an_empty_test_part() -> None:
    naive = _timed().with_columns(pl.col("at").dt.replace_time_zone(None))
    parts = split_table(naive, method="time", target="y", time_column="at", valid_from=datetime(2013, 1, 29))
    assert (parts["train"].height, parts["valid"].height, parts["test"].height) == (28, 2, 0)
    assert parts["test"].columns == naive.columns


def test_time_split_errors_name_the_column_and_the_empty_part() -> None:
    df = _timed()
    with pytest.raises(DataError, match=r"time column 'wen' is missing.*Did you mean 'when'"):
        split_table(df, method="time", target="y", time_column="wen", valid_from="2013-01-02")
    with pytest.raises(DataError, match=r"target column 'label' is missing"):
        split_table(df, method="time", target="label", time_column="when", valid_from="2013-01-02")
    with pytest.raises(DataError, match="'valid' split is empty.*valid_from"):
        split_table(df, method="time", target="y", time_column="when", valid_from="2014-01-01")
    with pytest.raises(DataError, match="'test' split is empty"):
        split_table(df, method="time", target="y", time_column="when", valid_from="2013-01-10", test_from="2014-01-01")
    with pytest.raises(ConfigError, match="test_from .* is before valid_from"):
        split_table(df, method="time", target="y", time_column="when", valid_from="2013-01-10", test_from="2013-01-05")
    with pytest.raises(ConfigError, match="needs time_column and valid_from"):
        split_table(df, method="time", target="y", time_column="when")
    with pytest.raises(ConfigError, match="not an ISO 8601 time"):
        split_table(df, method="time", target="y", time_column="when", valid_from="next tuesday")
    with pytest.raises(ConfigError, match="valid_from '2013-01-10' is not a number, but time column 'y' holds numbers"):
        split_table(df, method="time", target="y", time_column="y", valid_from="2013-01-10")
    flags = df.with_columns((pl.col("y") > 0).alias("flag"))
    with pytest.raises(DataError, match="time column 'flag' cannot be read as times"):
        split_table(flags, method="time", target="y", time_column="flag", valid_from="2013-01-10")
    bad = df.with_columns(pl.lit("yesterday").alias("when"))
    with pytest.raises(DataError, match="time column 'when' cannot be read"):
        split_table(bad, method="time", target="y", time_column="when", valid_from="2013-01-10")


def test_stratified_split_keeps_class_shares(penguins: pl.DataFrame) -> None:
    parts = split_table(penguins, method="stratified", target="species", seed=3)
    sizes = {k: v.height for k, v in parts.items()}
    assert sum(sizes.values()) == penguins.height
    shares = penguins["species"].value_counts(normalize=True).sort("species")["proportion"]
    for part in parts.values():
        part_shares = part["species"].value_counts(normalize=True).sort("species")["proportion"]
        assert (part_shares - shares).abs().max() < 0.02  # type: ignore[operator]
    joined = pl.concat(parts.values())
    assert joined.sort(joined.columns).equals(penguins.sort(penguins.columns))


def test_random_split_is_seeded(penguins: pl.DataFrame) -> None:
    first = split_table(penguins, method="random", target="sex", valid_fraction=0.25, test_fraction=0.0, seed=1)
    again = split_table(penguins, method="random", target="sex", valid_fraction=0.25, test_fraction=0.0, seed=1)
    other = split_table(penguins, method="random", target="sex", valid_fraction=0.25, test_fraction=0.0, seed=2)
    assert first["valid"].equals(again["valid"])
    assert not first["valid"].equals(other["valid"])
    assert (first["train"].height, first["valid"].height, first["test"].height) == (250, 83, 0)


def test_bad_method_and_fractions_are_refused(penguins: pl.DataFrame) -> None:
    with pytest.raises(ConfigError, match="unknown split method 'stratify'.*Did you mean 'stratified'"):
        split_table(penguins, method="stratify", target="sex")
    with pytest.raises(ConfigError, match="leave no training rows"):
        split_table(penguins, method="random", target="sex", valid_fraction=0.6, test_fraction=0.4)
    with pytest.raises(DataError, match="'valid' split is empty"):
        split_table(penguins[:2], method="random", target="sex", valid_fraction=0.1, test_fraction=0.0)


def _customers(n: int = 400, groups: int = 40) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    return pl.DataFrame({"customer": rng.integers(0, groups, n), "x": rng.normal(size=n), "y": rng.random(n) > 0.5})


def test_group_split_keeps_every_group_in_one_part() -> None:
    df = _customers()
    parts = split_table(df, method="group", target="y", group_column="customer", seed=4)
    owners = [set(part["customer"].to_list()) for part in parts.values()]
    assert not (owners[0] & owners[1] or owners[0] & owners[2] or owners[1] & owners[2])
    assert sum(part.height for part in parts.values()) == df.height
    assert abs(parts["valid"].height - 80) <= 25 and abs(parts["test"].height - 80) <= 25  # by rows, roughly
    again = split_table(df, method="group", target="y", group_column="customer", seed=4)
    other = split_table(df, method="group", target="y", group_column="customer", seed=5)
    assert again["valid"].equals(parts["valid"]) and not other["valid"].equals(parts["valid"])


def test_group_split_refusals_name_the_fix() -> None:
    df = _customers(groups=2)
    with pytest.raises(ConfigError, match="needs group_column.*customer_id"):
        split_table(df, method="group", target="y")
    with pytest.raises(DataError, match="group column 'customer' has 2 distinct value.*at least 3.*test_fraction: 0"):
        split_table(df, method="group", target="y", group_column="customer")
    with pytest.raises(DataError, match="group column 'custmer' is missing.*Did you mean 'customer'"):
        split_table(df, method="group", target="y", group_column="custmer")
    with pytest.raises(ConfigError, match="group_column only applies to method 'group'.*method: group"):
        split_table(df, method="random", target="y", group_column="customer")
    parts = split_table(df, method="group", target="y", group_column="customer", test_fraction=0.0, seed=1)
    assert parts["test"].height == 0 and parts["train"]["customer"].n_unique() == 1


def test_time_split_gap_drops_rows_just_before_each_boundary() -> None:
    parts = split_table(
        _timed(),
        method="time",
        target="y",
        time_column="at",
        valid_from="2013-01-21T00:00:00Z",
        test_from="2013-01-26T00:00:00Z",
        gap="2d",
    )
    assert parts["train"]["day"].to_list() == list(range(18))  # days 18 and 19 fall in the gap
    assert parts["valid"]["day"].to_list() == [20, 21, 22]  # days 23 and 24 fall in the gap
    assert parts["test"]["day"].to_list() == list(range(25, 30))
    same = split_table(
        _timed(), method="time", target="y", time_column="at", valid_from="2013-01-21", gap=timedelta(hours=48)
    )
    assert same["train"].height == 18 and same["valid"].height == 10


def test_gap_refusals_name_the_fix() -> None:
    df = _timed()
    with pytest.raises(ConfigError, match=r"gap 'a week' is not a duration.*\"7d\""):
        split_table(df, method="time", target="y", time_column="at", valid_from="2013-01-21", gap="a week")
    with pytest.raises(ConfigError, match="gap .* is negative"):
        split_table(df, method="time", target="y", time_column="at", valid_from="2013-01-21", gap=timedelta(days=-1))
    with pytest.raises(ConfigError, match="gap only applies to method 'time'"):
        split_table(df, method="random", target="y", gap="1d")
    with pytest.raises(DataError, match=r"'valid' split is empty.*shorten the gap \(5d\)"):
        split_table(
            df, method="time", target="y", time_column="at", valid_from="2013-01-21", test_from="2013-01-26", gap="5d"
        )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("1d12h", timedelta(hours=36)),
        ("1.5 h", timedelta(minutes=90)),
        ("2w", timedelta(weeks=2)),
        ("90m", timedelta(minutes=90)),
        ("30s", timedelta(seconds=30)),
    ],
)
def test_parse_gap_reads_durations(text: str, expected: timedelta) -> None:
    assert parse_gap(text) == expected
    assert parse_gap(None) == timedelta(0) and parse_gap(expected) == expected


def _yearly() -> pl.DataFrame:
    years = [2010, 2011, 2012, 2013, 2014] * 4
    return pl.DataFrame({"year": years, "y": [i % 2 for i in range(20)]}).with_columns(
        pl.date(pl.col("year"), 3, 1).alias("day")
    )


def test_time_split_on_an_integer_year() -> None:
    """A year held as a number is a time column: number boundaries, and a gap in years."""
    parts = split_table(_yearly(), method="time", target="y", time_column="year", valid_from=2013, test_from=2014)
    assert {name: sorted(set(part["year"])) for name, part in parts.items()} == {
        "train": [2010, 2011, 2012],
        "valid": [2013],
        "test": [2014],
    }
    gapped = split_table(_yearly(), method="time", target="y", time_column="year", valid_from=2013, gap=1)
    assert sorted(set(gapped["train"]["year"])) == [2010, 2011]


def test_time_split_on_a_date_column_with_date_boundaries() -> None:
    parts = split_table(
        _yearly(), method="time", target="y", time_column="day", valid_from=date(2013, 1, 1), test_from="2014-01-01"
    )
    assert [part.height for part in parts.values()] == [12, 4, 4]


def test_time_boundaries_of_the_other_kind_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"valid_from '2013-01-01' is not a number.*'year' holds numbers.*2014"):
        split_table(_yearly(), method="time", target="y", time_column="year", valid_from="2013-01-01")
    with pytest.raises(ConfigError, match=r"valid_from 2013 is a number, but time column 'day' holds times"):
        split_table(_yearly(), method="time", target="y", time_column="day", valid_from=2013)
    with pytest.raises(ConfigError, match=r"gap '7d' is a duration.*gap: 1 for one year"):
        split_table(_yearly(), method="time", target="y", time_column="year", valid_from=2013, gap="7d")
    with pytest.raises(ConfigError, match=r"gap 2 is a number, but time column 'day' holds times"):
        split_table(_yearly(), method="time", target="y", time_column="day", valid_from=date(2013, 1, 1), gap=2)
