"""Augmentation transforms (training rows only): over/under-sampling, SMOTE and variants, Gaussian noise.

All are ``train_only``: a chain applies them in ``fit_transform`` to the training rows and nowhere else, so
validation, test and live data are never resampled (their ``transform`` and ``transform_record`` are the
identity). All are seeded: the same seed and training rows give the same rows. Their state reports what they
did: ``rows_`` (before / after) and, for the class-balancing ones, ``classes_`` (label -> [before, after]).

The class column is the target (or ``column``). ``ratio`` is the share of the largest class that each class
is brought to (oversample, smote) or the share of the others that the smallest class then makes
(undersample); 1.0, the default, balances the classes exactly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from loopline.core.errors import ConfigError, DataError, MissingExtraError
from loopline.prep._fitting import (
    Resampler,
    check_choice,
    check_columns,
    check_number,
    check_seed,
    feature_columns,
    groups,
    label_column,
    matrix,
    take,
)

METHODS = ("smote", "borderline", "svm", "adasyn")
_CATEGORICAL = (pl.String, pl.Categorical, pl.Enum, pl.Boolean)


class _Balance(Resampler):
    """Shared: the class column, the ratio, the seed."""

    def __init__(self, column: str | None = None, ratio: float = 1.0, seed: int = 0) -> None:
        self.column = column
        self.ratio = ratio
        self.seed = seed

    def check_params(self) -> None:
        _check_label(self.type_name, self.column)
        check_number(self.type_name, "ratio", self.ratio, low=0, high=1, above=True)
        check_seed(self.type_name, self.seed)


class Oversample(_Balance):
    """Random oversampling: rows of the smaller classes are drawn again (with replacement) until each class
    has at least ``ratio`` times as many rows as the largest one. Drawn rows follow the original ones."""

    type_name = "oversample"

    def resample(self, frame: pl.DataFrame, target: str | None) -> pl.DataFrame:
        label = label_column(self, frame, self.column, target)
        classes = groups(frame, label)
        goal = round(self.ratio * max(len(rows) for _, rows in classes))
        rng = np.random.default_rng(self.seed)
        drawn = [rng.choice(rows, goal - len(rows), replace=True) for _, rows in classes if len(rows) < goal]
        out = take(frame, np.concatenate([np.arange(frame.height), *drawn]))
        self.record_classes(frame.get_column(label), out.get_column(label))
        return out


class Undersample(_Balance):
    """Random undersampling: the larger classes keep a random subset of their rows (without replacement), at
    most the smallest class's count divided by ``ratio``. Kept rows stay in their original order."""

    type_name = "undersample"

    def resample(self, frame: pl.DataFrame, target: str | None) -> pl.DataFrame:
        label = label_column(self, frame, self.column, target)
        classes = groups(frame, label)
        goal = round(min(len(rows) for _, rows in classes) / self.ratio)
        rng = np.random.default_rng(self.seed)
        kept = [rows if len(rows) <= goal else rng.choice(rows, goal, replace=False) for _, rows in classes]
        out = take(frame, np.sort(np.concatenate(kept)))
        self.record_classes(frame.get_column(label), out.get_column(label))
        return out


class SMOTE(Resampler):
    """Synthetic minority rows, interpolated between a row and its nearest neighbours of the same class
    (imbalanced-learn; install ``loopline[imbalanced]``). Synthetic rows follow the original ones.

    - ``columns``: the numeric columns to interpolate (default: every numeric column but the target); they
      must hold no missing value (impute first). Integer columns are rounded back to integers.
    - ``categorical``: columns whose synthetic value is the most frequent among the neighbours (SMOTE-NC;
      SMOTE-N when there is no numeric column). Default: every text, categorical and boolean column. A
      missing value is a category of its own.
    - Any other column (dates, ...) is missing in the synthetic rows.
    - ``method``: ``smote``; ``borderline`` (Borderline-SMOTE 1), ``svm`` (SVM-SMOTE) and ``adasyn``
      (ADASYN: more rows where the class is harder to learn) handle numeric columns only: set
      ``categorical: []`` to use them with text columns present.
    - ``k_neighbors`` (5): each class to grow needs more rows than this. ``ratio``, ``column``, ``seed``: as
      for oversample.
    """

    type_name = "smote"

    def __init__(
        self,
        columns: list[str] | None = None,
        categorical: list[str] | None = None,
        column: str | None = None,
        method: str = "smote",
        ratio: float = 1.0,
        k_neighbors: int = 5,
        seed: int = 0,
    ) -> None:
        self.columns = columns
        self.categorical = categorical
        self.column = column
        self.method = method
        self.ratio = ratio
        self.k_neighbors = k_neighbors
        self.seed = seed

    def check_params(self) -> None:
        check_columns(self.type_name, "columns", self.columns)
        if self.categorical is not None and self.categorical != []:
            check_columns(self.type_name, "categorical", self.categorical)
        _check_label(self.type_name, self.column)
        check_choice(self.type_name, "method", self.method, METHODS)
        check_number(self.type_name, "ratio", self.ratio, low=0, high=1, above=True)
        check_number(self.type_name, "k_neighbors", self.k_neighbors, low=1, integer=True)
        check_seed(self.type_name, self.seed)
        _over_sampling()

    def resample(self, frame: pl.DataFrame, target: str | None) -> pl.DataFrame:
        label = label_column(self, frame, self.column, target)
        numbers = feature_columns(self, frame, self.columns, label)
        categorical = self._categorical(frame, label, numbers)
        if not numbers and not categorical:
            raise DataError(
                "smote: there is no column to interpolate.", hint="Set columns: [numeric columns to interpolate]."
            )
        classes, y = _codes(frame.get_column(label))
        strategy = self._strategy(np.bincount(y, minlength=len(classes)), classes)
        if not strategy:
            self.record_classes(frame.get_column(label), frame.get_column(label))
            return frame
        encoded = [_codes(frame.get_column(n)) for n in categorical]
        values = np.column_stack([*([matrix(self, frame, numbers)] if numbers else []), *(c for _, c in encoded)])
        sampler = self._sampler(strategy, numbers, categorical)
        try:
            new, new_y = (part[frame.height :] for part in sampler.fit_resample(values, y))
        except (ValueError, RuntimeError) as exc:
            raise DataError(
                f"smote: {self.method} could not resample: {exc}", hint="Lower k_neighbors, or use oversample."
            ) from None
        made: dict[str, list[Any]] = {label: [classes[i] for i in new_y]}
        for i, (name, (distinct, _)) in enumerate(zip(categorical, encoded, strict=True)):
            made[name] = [distinct[int(code)] for code in new[:, len(numbers) + i]]
        numeric = {name: new[:, i].astype(float) for i, name in enumerate(numbers)}
        out = pl.concat([frame, _frame(frame.schema, numeric, made, len(new_y))])
        self.record_classes(frame.get_column(label), out.get_column(label))
        return out

    def _categorical(self, frame: pl.DataFrame, label: str, numbers: list[str]) -> list[str]:
        if self.categorical is None:
            names = [
                n for n, t in frame.schema.items() if n not in numbers and n != label and t.base_type() in _CATEGORICAL
            ]
        else:
            names = list(self.categorical)
            self.require_columns(frame, names)
        if names and self.method != "smote":
            raise DataError(
                f"smote: method {self.method!r} interpolates numeric columns only, and {names[0]!r} is categorical.",
                column=names[0],
                hint="Use method: smote (SMOTE-NC handles categorical columns), or set categorical: [] "
                "(synthetic rows then have no value there).",
            )
        return names

    def _strategy(self, counts: np.ndarray[Any, Any], classes: list[Any]) -> dict[int, int]:
        goal = round(self.ratio * int(counts.max()))
        strategy = {i: goal for i, n in enumerate(counts) if n < goal}
        for i in strategy:
            if counts[i] <= self.k_neighbors:
                fewer = f"Set k_neighbors: {counts[i] - 1} or less, or use" if counts[i] > 1 else "Use"
                raise DataError(
                    f"smote: class {classes[i]!r} has {counts[i]} rows, too few for k_neighbors {self.k_neighbors}.",
                    hint=f"{fewer} oversample (it copies rows instead of interpolating).",
                )
        return strategy

    def _sampler(self, strategy: dict[int, int], numbers: list[str], categorical: list[str]) -> Any:
        over = _over_sampling()
        common: dict[str, Any] = {"sampling_strategy": strategy, "random_state": self.seed}
        if categorical and numbers:
            first = len(numbers)
            indices = list(range(first, first + len(categorical)))
            return over.SMOTENC(categorical_features=indices, k_neighbors=self.k_neighbors, **common)
        if categorical:
            return over.SMOTEN(k_neighbors=self.k_neighbors, **common)
        if self.method == "adasyn":
            return over.ADASYN(n_neighbors=self.k_neighbors, **common)
        cls = {"smote": over.SMOTE, "borderline": over.BorderlineSMOTE, "svm": over.SVMSMOTE}[self.method]
        return cls(k_neighbors=self.k_neighbors, **common)


class Noise(Resampler):
    """Gaussian noise on numeric columns: ``copies`` noisy copies of the training rows (1), after the original
    rows (or instead of them with ``keep_original: false``).

    Each value gets noise with standard deviation ``scale`` (0.1) times its column's training standard
    deviation (``std_``). ``columns`` defaults to the float columns but the target; integer columns named there
    are rounded back to integers. Missing values stay missing.
    """

    type_name = "noise"

    def __init__(
        self,
        columns: list[str] | None = None,
        scale: float = 0.1,
        copies: int = 1,
        keep_original: bool = True,
        seed: int = 0,
    ) -> None:
        self.columns = columns
        self.scale = scale
        self.copies = copies
        self.keep_original = keep_original
        self.seed = seed

    def check_params(self) -> None:
        check_columns(self.type_name, "columns", self.columns)
        check_number(self.type_name, "scale", self.scale, low=0, above=True)
        check_number(self.type_name, "copies", self.copies, low=1, integer=True)
        if not isinstance(self.keep_original, bool):
            raise ConfigError(
                f"noise: keep_original must be true or false, not {self.keep_original!r}.",
                key="keep_original",
                hint="Set keep_original: true.",
            )
        check_seed(self.type_name, self.seed)

    def resample(self, frame: pl.DataFrame, target: str | None) -> pl.DataFrame:
        if self.columns is None:
            names = [n for n, t in frame.schema.items() if n != target and t.is_float()]
        else:
            names = feature_columns(self, frame, self.columns, target)
        self.std_ = {n: _std(frame.get_column(n)) for n in names}
        rng = np.random.default_rng(self.seed)
        parts = [frame] if self.keep_original else []
        for _ in range(self.copies):
            parts.append(frame.with_columns(self._noisy(frame.get_column(n), rng) for n in names))
        return pl.concat(parts)

    def _noisy(self, series: pl.Series, rng: np.random.Generator) -> pl.Series:
        noise = pl.Series(rng.normal(0.0, self.scale * self.std_[str(series.name)], series.len()))
        noisy = series.cast(pl.Float64) + noise
        if series.dtype.is_integer():
            noisy = noisy.round(0)
            noisy = noisy.clip(lower_bound=0) if series.dtype.is_unsigned_integer() else noisy
        return noisy.cast(series.dtype).alias(str(series.name))


def _check_label(transform: str, column: Any) -> None:
    if column is not None and not (isinstance(column, str) and column):
        raise ConfigError(
            f"{transform}: column must be a column name, not {column!r}.",
            key="column",
            hint="Leave it out to use the target, or set column: <label column>.",
        )


def _over_sampling() -> Any:
    """imbalanced-learn's over-sampling module, or the extra to install."""
    try:
        from imblearn import over_sampling
    except ImportError:
        raise MissingExtraError("imblearn", "imbalanced") from None
    return over_sampling


def _codes(series: pl.Series) -> tuple[list[Any], np.ndarray[Any, Any]]:
    """(distinct values ordered as text with missing last, each row's index into them)."""
    values = series.to_list()
    distinct = sorted(set(values), key=lambda v: (v is None, str(v)))
    index = {v: i for i, v in enumerate(distinct)}
    return distinct, np.fromiter((index[v] for v in values), dtype=np.int64, count=len(values))


def _frame(
    schema: pl.Schema, numeric: dict[str, np.ndarray[Any, Any]], made: dict[str, list[Any]], height: int
) -> pl.DataFrame:
    """Synthetic rows with the training schema: integer (and boolean) columns rounded, others left missing."""
    columns = []
    for name, dtype in schema.items():
        if name in numeric:
            rounded = dtype.is_integer() or dtype == pl.Boolean
            columns.append(pl.Series(name, np.rint(numeric[name]) if rounded else numeric[name]).cast(dtype))
        else:
            columns.append(pl.Series(name, made.get(name, [None] * height), dtype=dtype))
    return pl.DataFrame(columns)


def _std(series: pl.Series) -> float:
    """The standard deviation of the finite values; 0.0 when there are fewer than two."""
    values = series.cast(pl.Float64)
    spread: Any = values.filter(values.is_finite()).std()
    return float(spread) if spread is not None and math.isfinite(spread) else 0.0
