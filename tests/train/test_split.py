from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from loopline.core.errors import ConfigError, DataError
from loopline.train import split_table


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
    with pytest.raises(DataError, match="time column 'y' cannot be read as times"):
        split_table(df, method="time", target="y", time_column="y", valid_from="2013-01-10")
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
