"""Cross-validation folds: k-fold (plain, stratified or group-aware) and expanding time-series folds.

A fold is ``(train_idx, valid_idx)``: int64 numpy arrays of row positions in the
table given, each sorted ascending, never overlapping.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from loopline.core.errors import ConfigError, DataError, did_you_mean
from loopline.train._split import Gap, gap_width, row_groups, time_keys

Fold = tuple[np.ndarray, np.ndarray]


def kfold_indices(
    df: pl.DataFrame,
    k: int,
    *,
    stratify: str | None = None,
    group: str | None = None,
    seed: int = 0,
) -> list[Fold]:
    """``k`` folds in which every row validates exactly once; the same ``seed`` gives the same folds.

    Plain: rows shuffled and dealt into ``k`` folds whose sizes differ by at most one.
    ``stratify`` (a column): each class's rows are shuffled and dealt round the folds
    in turn, so every fold keeps the class shares (a class with fewer than ``k`` rows
    is missing from some validation folds). ``group`` (a column): all rows of a
    value validate in the same fold; groups, shuffled, go largest first to the fold
    with the fewest rows so far. Null is one class or group. ``k < 2`` raises
    ConfigError; more folds than rows or than groups raises DataError.
    """
    _check_k(df, k, stratify, group)
    rng = np.random.default_rng(seed)
    if group is not None:
        fold_of = _group_folds(df, group, k, rng)
    else:
        blocks = row_groups(df, stratify) if stratify is not None else [np.arange(df.height)]
        dealt = np.concatenate([rng.permutation(rows) for rows in blocks])
        fold_of = np.empty(df.height, dtype=np.int64)
        fold_of[dealt] = np.arange(df.height) % k
    return [(np.flatnonzero(fold_of != i), np.flatnonzero(fold_of == i)) for i in range(k)]


def time_series_folds(
    df: pl.DataFrame,
    time_column: str,
    n_splits: int,
    *,
    gap: Gap = None,
) -> list[Fold]:
    """``n_splits`` expanding-window folds over time: each trains strictly before it validates.

    The rows, ordered by ``time_column`` (datetimes, dates, ISO 8601 strings, or numbers such as
    an integer year, with ``gap`` then in the column's units), are
    cut into ``n_splits + 1`` blocks of about equal rows; fold ``i`` validates block
    ``i + 1`` and trains on every earlier row at least ``gap`` before the block's
    first time. A cut never separates rows with the same time, so the validation
    blocks partition the rows after the first block. Too few rows or distinct
    times for ``n_splits``, or a gap that leaves a fold no training rows, raise
    DataError.
    """
    if n_splits < 1:
        raise ConfigError(
            f"n_splits={n_splits} makes no fold.", key="n_splits", hint="Use n_splits >= 1 (5 is common)."
        )
    times = time_keys(df, time_column)
    width = gap_width(gap, times, time_column)
    if n_splits + 1 > df.height:
        raise DataError(
            f"{n_splits} time-series folds need at least {n_splits + 1} rows; the table has {df.height}.",
            hint=f"Use n_splits <= {max(df.height - 1, 1)}, or more rows.",
        )
    order = np.argsort(times.to_numpy(), kind="stable")
    ordered = times.gather(order)
    cuts = [ordered[df.height * (i + 1) // (n_splits + 1)] for i in range(n_splits)]
    folds = []
    for i, start in enumerate(cuts):
        end = cuts[i + 1] if i + 1 < n_splits else None
        valid = (times >= start) if end is None else (times >= start) & (times < end)
        train = times < start - width
        folds.append(_time_fold(train.to_numpy(), valid.to_numpy(), i, time_column, width))
    return folds


def _time_fold(train: np.ndarray, valid: np.ndarray, i: int, time_column: str, gap: timedelta | int | float) -> Fold:
    if not valid.any():
        raise DataError(
            f"time-series fold {i} has no validation rows: too many rows share a time in {time_column!r}.",
            column=time_column,
            hint="Use fewer n_splits.",
        )
    if not train.any():
        raise DataError(
            f"time-series fold {i} has no training rows before its validation block"
            + (f" and the gap ({gap})." if gap else "."),
            column=time_column,
            hint="Shorten the gap or use fewer n_splits." if gap else "Use fewer n_splits.",
        )
    return np.flatnonzero(train), np.flatnonzero(valid)


def _check_k(df: pl.DataFrame, k: int, stratify: str | None, group: str | None) -> None:
    if k < 2:
        raise ConfigError(f"k={k} folds cannot cross-validate.", key="k", hint="Use k >= 2 (5 is common).")
    if stratify is not None and group is not None:
        raise ConfigError(
            "k-fold takes stratify or group, not both.",
            key="group",
            hint="Keep group when rows of one group must not be split across folds; otherwise keep stratify.",
        )
    if k > df.height:
        raise DataError(f"{k} folds need at least {k} rows; the table has {df.height}.", hint=f"Use k <= {df.height}.")
    for column in (stratify, group):
        if column is not None and column not in df.columns:
            raise DataError(
                f"column {column!r} is missing from the table.",
                column=column,
                hint=did_you_mean(column, df.columns) or f"Columns present: {', '.join(df.columns)}.",
            )


def _group_folds(df: pl.DataFrame, group: str, k: int, rng: np.random.Generator) -> np.ndarray:
    groups = row_groups(df, group)
    if len(groups) < k:
        raise DataError(
            f"group column {group!r} has {len(groups)} distinct value(s), fewer than the {k} folds asked for.",
            column=group,
            hint=f"Use k <= {len(groups)}, or a column with more groups.",
        )
    shuffled = [groups[i] for i in rng.permutation(len(groups))]
    shuffled.sort(key=lambda rows: -rows.size)  # stable: equal sizes keep the seeded order
    fold_of = np.empty(df.height, dtype=np.int64)
    filled = np.zeros(k, dtype=np.int64)
    for rows in shuffled:
        target = int(np.argmin(filled))
        fold_of[rows] = target
        filled[target] += rows.size
    return fold_of
