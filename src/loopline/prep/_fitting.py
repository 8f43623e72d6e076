"""What the reduction, selection and augmentation transforms share.

Option checks (ConfigError with the fix), the training matrix and target (DataError naming the column), and
two bases: :class:`Resampler` for the ``train_only`` transforms that change the training rows, and
:class:`ColumnDrop` for the transforms whose fitting decides which columns to drop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from loopline.core.errors import ConfigError, DataError, did_you_mean
from loopline.prep._transform import Record, Transform

TASKS = ("classification", "regression")

# -- option checks ---------------------------------------------------------------------------------


def check_choice(transform: str, key: str, value: Any, choices: Sequence[str]) -> None:
    """ConfigError unless ``value`` is one of ``choices`` (with a did-you-mean)."""
    if value not in choices:
        hint = did_you_mean(str(value), choices) or f"Use one of: {', '.join(choices)}."
        raise ConfigError(f"{transform}: invalid {key} {value!r}.", key=key, hint=hint)


def check_number(
    transform: str,
    key: str,
    value: Any,
    *,
    low: float,
    high: float | None = None,
    above: bool = False,
    integer: bool = False,
    optional: bool = False,
) -> None:
    """ConfigError unless ``value`` is a number (an integer) ``>= low`` (``> low`` if ``above``), ``<= high``."""
    if value is None and optional:
        return
    kinds = (int,) if integer else (int, float)
    ok = isinstance(value, kinds) and not isinstance(value, bool) and bool(np.isfinite(value))
    ok = ok and (value > low if above else value >= low) and (high is None or value <= high)
    if not ok:
        bounds = f"{'>' if above else '>='} {low}" + (f" and <= {high}" if high is not None else "")
        kind = "an integer" if integer else "a number"
        example = low + 1 if high is None else high
        raise ConfigError(
            f"{transform}: {key} must be {kind} {bounds}, not {value!r}.",
            key=key,
            hint=f"Set {key}: {int(example) if integer else example}.",
        )


def check_columns(transform: str, key: str, value: Any, *, optional: bool = True) -> None:
    """ConfigError unless ``value`` is a non-empty list of column names (or None when ``optional``)."""
    if value is None and optional:
        return
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        hint = f"Set {key}: [a, b], a list of column names" + (" (or leave it out for all)." if optional else ".")
        raise ConfigError(f"{transform}: {key} must be a non-empty list of column names, not {value!r}.", hint=hint)


def check_seed(transform: str, value: Any) -> None:
    """ConfigError unless the seed is a non-negative integer."""
    check_number(transform, "seed", value, low=0, integer=True)


# -- the training rows -----------------------------------------------------------------------------


def numeric(dtype: pl.DataType) -> bool:
    """Numbers (booleans are not)."""
    return dtype.is_numeric()


def feature_columns(
    transform: Transform, frame: pl.DataFrame, columns: list[str] | None, target: str | None
) -> list[str]:
    """The given columns, checked present and numeric, or every numeric column but the target."""
    if columns is None:
        return [name for name, dtype in frame.schema.items() if name != target and numeric(dtype)]
    transform.require_columns(frame, columns)
    for name in columns:
        if name == target:
            raise ConfigError(
                f"{transform.type_name}: the target {name!r} cannot be one of the columns.",
                key="columns",
                hint=f"Remove {name!r} from columns.",
            )
        if not numeric(frame.schema[name]) and frame.schema[name] != pl.Boolean:
            raise DataError(
                f"{transform.type_name}: column {name!r} is {frame.schema[name]}, not numeric.",
                column=name,
                hint="Encode it first (type: onehot or ordinal), or leave it out of columns.",
            )
    return list(columns)


def matrix(transform: Transform, frame: pl.DataFrame, columns: Sequence[str]) -> np.ndarray[Any, Any]:
    """The columns as a float matrix; a DataError names the first column with a missing or infinite value."""
    values = frame.select(pl.col(name).cast(pl.Float64) for name in columns).to_numpy()
    bad = ~np.isfinite(values)
    if bad.any():
        position = int(np.flatnonzero(bad.any(axis=0))[0])
        name = columns[position]
        raise DataError(
            f"{transform.type_name}: column {name!r} has {int(bad[:, position].sum())} missing or infinite "
            "values in the training rows.",
            column=name,
            hint=f"Put an impute step before {transform.type_name} (type: impute), or leave {name!r} out.",
        )
    return values


def label_column(transform: Transform, frame: pl.DataFrame, column: str | None, target: str | None) -> str:
    """The column that holds the classes: ``column`` when given, else the target; it must be present."""
    name = column or target
    if name is None:
        also = ", or set column: <label column>" if "column" in transform.get_params() else ""
        raise DataError(
            f"{transform.type_name} needs the target column to learn from.",
            hint=f"Fit with target='label' (the pipeline's target: option){also}.",
        )
    transform.require_columns(frame, [name])
    nulls = frame.get_column(name).null_count()
    if nulls:
        raise DataError(
            f"{transform.type_name}: column {name!r} has {nulls} missing values in the training rows.",
            column=name,
            hint="Drop the rows without a label before this step.",
        )
    return name


def infer_task(frame: pl.DataFrame, target: str, task: str | None) -> str:
    """``task`` when given; else regression for a float target, classification for any other."""
    if task is not None:
        return task
    return "regression" if frame.schema[target].is_float() else "classification"


def target_vector(transform: Transform, frame: pl.DataFrame, target: str, task: str) -> np.ndarray[Any, Any]:
    """The target as a vector: class codes 0..k-1 for classification, floats for regression."""
    series = frame.get_column(target)
    if task == "regression":
        if not numeric(series.dtype):
            raise DataError(
                f"{transform.type_name}: the target {target!r} is {series.dtype}; regression needs numbers.",
                column=target,
                hint="Set task: classification.",
            )
        values = series.cast(pl.Float64).to_numpy()
        if not np.isfinite(values).all():
            raise DataError(
                f"{transform.type_name}: the target {target!r} has NaN or infinite values in the training rows.",
                column=target,
                hint="Drop those rows before this step.",
            )
        return values
    _, codes = np.unique(np.asarray(series.cast(pl.String).to_list(), dtype=object), return_inverse=True)
    return codes.astype(np.int64)


def groups(frame: pl.DataFrame, column: str) -> list[tuple[Any, np.ndarray[Any, Any]]]:
    """Row positions per distinct value of ``column``, ordered by value (as text, missing last)."""
    keyed = pl.DataFrame({"key": frame.get_column(column), "row": np.arange(frame.height, dtype=np.int64)})
    grouped = keyed.group_by("key").agg(pl.col("row")).iter_rows()
    items = [(key, np.sort(np.asarray(rows, dtype=np.int64))) for key, rows in grouped]
    return sorted(items, key=lambda item: (item[0] is None, str(item[0])))


def take(frame: pl.DataFrame, rows: np.ndarray[Any, Any]) -> pl.DataFrame:
    """The rows at these positions, in this order."""
    return frame.select(pl.all().gather(pl.Series(rows, dtype=pl.Int64)))


def plain(value: Any) -> Any:
    """A numpy or polars scalar as a JSON-able Python value (non-finite floats become None)."""
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


# -- bases -----------------------------------------------------------------------------------------


class Resampler(Transform):
    """A ``train_only`` transform: :meth:`fit_transform` changes the training rows; everything else is the identity.

    :meth:`fit` runs the resampling too (and discards it) so that its state reports what it did:
    ``rows_ = {"before": n, "after": m}`` and, for class-based ones, ``classes_ = {label: [before, after]}``.
    """

    train_only = True

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> Resampler:
        self.fit_transform(frame, target)
        return self

    def fit_transform(self, frame: pl.DataFrame, target: str | None = None) -> pl.DataFrame:
        self.check_params()
        out = self.resample(frame, target)
        self.rows_ = {"before": frame.height, "after": out.height}
        return out

    def resample(self, frame: pl.DataFrame, target: str | None) -> pl.DataFrame:
        """The new training rows."""
        raise NotImplementedError

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame

    def transform_record(self, record: Record) -> Record:
        return record

    def record_classes(self, before: pl.Series, after: pl.Series) -> None:
        """``classes_``: the row count per class before and after."""
        counts = {str(k): [n, 0] for k, n in before.value_counts().iter_rows()}
        for key, n in after.value_counts().iter_rows():
            counts.setdefault(str(key), [0, 0])[1] = n
        self.classes_ = dict(sorted(counts.items()))


class ColumnDrop(Transform):
    """A transform whose fitting chooses columns to drop (``dropped_``); every other column passes through.

    A dropped column absent at transform time is fine: it is gone already.
    """

    dropped_: list[str]

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.drop(self.dropped_, strict=False)

    def transform_record(self, record: Record) -> Record:
        dropped = set(self.dropped_)
        return {k: v for k, v in record.items() if k not in dropped}
