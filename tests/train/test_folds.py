from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from loopline.core.errors import ConfigError, DataError
from loopline.train import kfold_indices, time_series_folds


def _table(n: int = 103) -> pl.DataFrame:
    rng = np.random.default_rng(7)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "y": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]),
            "g": rng.integers(0, 20, n),
            "t": [start + timedelta(hours=int(h)) for h in rng.permutation(n) // 2],  # shuffled, pairs share a time
        }
    )


def _check_partition(folds: list[tuple[np.ndarray, np.ndarray]], n: int) -> None:
    valid = np.concatenate([v for _, v in folds])
    assert np.array_equal(np.sort(valid), np.arange(n))  # every row validates exactly once
    for train, fold_valid in folds:
        assert (
            np.array_equal(np.union1d(train, fold_valid), np.arange(n)) and not np.intersect1d(train, fold_valid).size
        )
        assert train.dtype == np.int64 and np.all(np.diff(train) > 0)


@pytest.mark.parametrize("option", [{}, {"stratify": "y"}, {"group": "g"}])
def test_kfold_covers_every_row_once_and_is_seeded(option: dict[str, str]) -> None:
    df = _table()
    folds = kfold_indices(df, 5, seed=3, **option)
    assert len(folds) == 5
    _check_partition(folds, df.height)
    again, other = kfold_indices(df, 5, seed=3, **option), kfold_indices(df, 5, seed=4, **option)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other, strict=True))


def test_kfold_plain_sizes_stratified_shares_and_group_integrity() -> None:
    df = _table()
    assert sorted(v.size for _, v in kfold_indices(df, 5)) == [20, 20, 21, 21, 21]
    counts = df["y"].value_counts().sort("y")["count"].to_numpy()
    for _, valid in kfold_indices(df, 5, stratify="y", seed=1):
        fold_counts = df[valid]["y"].value_counts().sort("y")["count"].to_numpy()
        assert np.all(np.abs(fold_counts - counts / 5) <= 1)
    for train, valid in kfold_indices(df, 4, group="g", seed=2):
        assert not set(df[train]["g"].to_list()) & set(df[valid]["g"].to_list())


def test_kfold_refusals_name_the_fix() -> None:
    df = _table(6)
    with pytest.raises(ConfigError, match="k=1 folds cannot cross-validate.*k >= 2"):
        kfold_indices(df, 1)
    with pytest.raises(DataError, match="7 folds need at least 7 rows.*k <= 6"):
        kfold_indices(df, 7)
    few = df.with_columns(pl.Series("g", [1, 1, 2, 2, 3, 3]))
    with pytest.raises(DataError, match="'g' has 3 distinct value.*fewer than the 4 folds.*k <= 3"):
        kfold_indices(few, 4, group="g")
    with pytest.raises(ConfigError, match="stratify or group, not both"):
        kfold_indices(df, 2, stratify="y", group="g")
    with pytest.raises(DataError, match="'gg' is missing.*Did you mean 'g'"):
        kfold_indices(df, 2, group="gg")


def test_time_series_folds_expand_and_train_strictly_before_validating() -> None:
    df = _table()
    times = df["t"].to_numpy()
    folds = time_series_folds(df, "t", 4)
    assert len(folds) == 4
    valid = np.concatenate([v for _, v in folds])
    assert valid.size == np.unique(valid).size  # validation blocks do not overlap
    for i, (train, fold_valid) in enumerate(folds):
        assert times[train].max() < times[fold_valid].min()
        if i:
            assert np.isin(folds[i - 1][0], train).all() and train.size > folds[i - 1][0].size  # expanding
    assert times[folds[-1][1]].max() == times.max()  # the last block runs to the end
    assert [f[1].tolist() for f in folds] == [f[1].tolist() for f in time_series_folds(df, "t", 4)]


def test_time_series_gap_and_refusals() -> None:
    df = _table()
    times = df["t"].to_numpy()
    for train, valid in time_series_folds(df, "t", 3, gap="5h"):
        assert times[valid].min() - times[train].max() > np.timedelta64(5, "h")
    with pytest.raises(ConfigError, match="n_splits=0 makes no fold"):
        time_series_folds(df, "t", 0)
    with pytest.raises(DataError, match="need at least 104 rows.*n_splits <= 102"):
        time_series_folds(df, "t", 103)
    with pytest.raises(DataError, match="fold 0 has no training rows.*Shorten the gap"):
        time_series_folds(df, "t", 3, gap="30d")
    tied = df.with_columns(pl.lit(datetime(2024, 1, 1, tzinfo=UTC)).alias("t"))
    with pytest.raises(DataError, match="no validation rows: too many rows share a time.*fewer n_splits"):
        time_series_folds(tied, "t", 2)
    with pytest.raises(DataError, match="time column 'tt' is missing"):
        time_series_folds(df, "tt", 2)


def test_time_series_folds_on_an_integer_year() -> None:
    df = pl.DataFrame({"year": [2014, 2010, 2011, 2012, 2013] * 4, "x": range(20)})
    years = df["year"].to_numpy()
    folds = time_series_folds(df, "year", 3)
    assert [sorted(set(years[valid])) for _, valid in folds] == [[2011], [2012], [2013, 2014]]
    for train, valid in time_series_folds(df, "year", 1, gap=1):
        assert years[valid].min() - years[train].max() > 1
    with pytest.raises(ConfigError, match="gap '7d' is a duration, but time column 'year' holds numbers"):
        time_series_folds(df, "year", 2, gap="7d")
