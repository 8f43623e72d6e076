"""The fitted preprocessing of a model: imputation, scaling and categorical encoding.

Its learned state is plain JSON (fill values, centres, scales, category lists), so a
model bundle stores it without pickle. Tables (``transform``) and serving records
(``transform_records``) go through the same numpy code once the raw values are
gathered, so both give bit-identical floats.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from loopline.core.errors import ConfigError, DataError, SchemaValidationError, did_you_mean

STATE_VERSION = 1
MISSING_CATEGORY = "(missing)"
"""Category that stands for null values when ``impute_categorical="constant"``."""

_CHOICES: dict[str, tuple[str | None, ...]] = {
    "impute_numeric": ("median", "mean", "constant"),
    "impute_categorical": ("most_frequent", "constant"),
    "scale": ("standard", "minmax", None),
    "encode": ("onehot", "ordinal"),
}
_STRING_DTYPES = (pl.String, pl.Categorical, pl.Enum)


class Preprocessor:
    """Imputes, scales and encodes the feature columns of a table.

    Numeric columns: null, NaN and infinite values are replaced by the fill value
    (median, mean or ``fill_value``), then standardised or min-max scaled. Booleans
    count as 0/1. Categorical columns: values are compared as ``str(value)``; nulls
    become the most frequent category or :data:`MISSING_CATEGORY`. Only the
    ``max_categories`` most frequent categories seen at least ``min_frequency``
    times are kept. A category not kept (unseen, or too rare) encodes as an
    all-zero one-hot row, or as ``-1.0`` with ordinal encoding.

    Every statistic is learned in :meth:`fit` only; transforming other data never
    changes the state.
    """

    def __init__(
        self,
        numeric: list[str],
        categorical: list[str],
        *,
        impute_numeric: str = "median",
        impute_categorical: str = "most_frequent",
        fill_value: float = 0.0,
        scale: str | None = "standard",
        encode: str = "onehot",
        max_categories: int = 30,
        min_frequency: int = 1,
    ) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.impute_numeric = impute_numeric
        self.impute_categorical = impute_categorical
        self.fill_value = fill_value
        self.scale = scale
        self.encode = encode
        self.max_categories = max_categories
        self.min_frequency = min_frequency

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, as given."""
        return {
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "impute_numeric": self.impute_numeric,
            "impute_categorical": self.impute_categorical,
            "fill_value": self.fill_value,
            "scale": self.scale,
            "encode": self.encode,
            "max_categories": self.max_categories,
            "min_frequency": self.min_frequency,
        }

    # -- fitting ---------------------------------------------------------------------------------

    def fit(self, df: pl.DataFrame) -> Preprocessor:
        """Learn fill values, scales and categories from ``df`` (the training split)."""
        self._check_params()
        _require_columns(df, [*self.numeric, *self.categorical])
        if df.height == 0:
            raise DataError("cannot fit preprocessing on an empty table.", hint="Pass the training rows.")
        raw = _numeric_raw_from_frame(df, self.numeric)
        self.fill_ = [self._numeric_fill(raw[:, j]) for j in range(raw.shape[1])]
        imputed = _impute(raw, np.asarray(self.fill_, dtype=np.float64))
        self.center_, self.scale_ = self._scaling(imputed)
        self.category_fill_ = []
        self.categories_ = []
        for name in self.categorical:
            fill, kept = self._fit_categories(*_category_counts(df.get_column(name)))
            self.category_fill_.append(fill)
            self.categories_.append(kept)
        self.feature_names_ = self._feature_names()
        return self

    def _check_params(self) -> None:
        for key, choices in _CHOICES.items():
            value = getattr(self, key)
            if value not in choices:
                named = [c for c in choices if c is not None]
                hint = did_you_mean(str(value), named) or f"Use one of: {', '.join(map(str, choices))}."
                raise ConfigError(f"invalid {key} {value!r}.", key=key, hint=hint)
        if self.max_categories < 1 or self.min_frequency < 1:
            raise ConfigError(
                "max_categories and min_frequency must be at least 1.",
                key="max_categories",
                hint="Set them to positive integers.",
            )
        both = sorted(set(self.numeric) & set(self.categorical))
        if both:
            raise ConfigError(
                f"column {both[0]!r} is listed as both numeric and categorical.",
                key="numeric",
                hint="List each column once.",
            )
        names = [*self.numeric, *self.categorical]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise ConfigError(f"column {dup!r} is listed twice.", key="numeric", hint="List each column once.")

    def _numeric_fill(self, column: np.ndarray) -> float:
        finite = column[np.isfinite(column)]
        if self.impute_numeric == "constant" or finite.size == 0:
            return float(self.fill_value)
        if self.impute_numeric == "mean":
            return float(np.mean(finite))
        return float(np.median(finite))

    def _scaling(self, imputed: np.ndarray) -> tuple[list[float], list[float]]:
        width = imputed.shape[1]
        if self.scale is None or width == 0:
            return [0.0] * width, [1.0] * width
        if self.scale == "standard":
            center, spread = imputed.mean(axis=0), imputed.std(axis=0)
        else:
            center = imputed.min(axis=0)
            spread = imputed.max(axis=0) - center
        # a spread within rounding noise of the centre (zero, or denormal like 5e-324) would blow values up to inf
        tiny = 10 * np.finfo(np.float64).eps * np.maximum(np.abs(center), 1.0)
        spread = np.where((spread > tiny) & np.isfinite(spread), spread, 1.0)
        return [float(v) for v in center], [float(v) for v in spread]

    def _fit_categories(self, counts: Counter[str], n_missing: int) -> tuple[str, list[str]]:
        if self.impute_categorical == "most_frequent" and counts:
            fill = min(counts, key=lambda c: (-counts[c], c))
        else:
            fill = MISSING_CATEGORY
        if n_missing:
            counts[fill] += n_missing
        ranked = sorted(counts, key=lambda c: (-counts[c], c))
        kept = [c for c in ranked if counts[c] >= self.min_frequency][: self.max_categories]
        return fill, sorted(kept)

    def _feature_names(self) -> list[str]:
        names = list(self.numeric)
        for name, categories in zip(self.categorical, self.categories_, strict=True):
            if self.encode == "onehot":
                names.extend(f"{name}={c}" for c in categories)
            else:
                names.append(name)
        return names

    # -- transforming ----------------------------------------------------------------------------

    def transform(self, df: pl.DataFrame) -> np.ndarray:
        """Float64 matrix of shape (rows, len(feature_names_)) for a table."""
        self._check_fitted()
        _require_columns(df, [*self.numeric, *self.categorical])
        raw = _numeric_raw_from_frame(df, self.numeric)
        codes = [self._codes_from_series(df.get_column(name), i) for i, name in enumerate(self.categorical)]
        return self._assemble(raw, codes)

    def transform_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The same matrix as :meth:`transform`, from JSON-like records, without a DataFrame.

        A key absent from a record counts as null. Numeric values must be int, float,
        bool or None; categorical values are compared as ``str(value)``.
        """
        self._check_fitted()
        raw = np.array(
            [[_number(r.get(name), name) for name in self.numeric] for r in records],
            dtype=np.float64,
        ).reshape(len(records), len(self.numeric))
        codes = []
        for i, name in enumerate(self.categorical):
            index, fill = self._category_index(i), self.category_fill_[i]
            values = (r.get(name) for r in records)
            row = [index.get(fill if v is None else str(v), -1) for v in values]
            codes.append(np.array(row, dtype=np.int64))
        return self._assemble(raw, codes)

    def _codes_from_series(self, series: pl.Series, i: int) -> np.ndarray:
        categories, fill = self.categories_[i], self.category_fill_[i]
        if isinstance(series.dtype, _STRING_DTYPES):
            coded = (
                series.cast(pl.String)
                .fill_null(fill)
                .replace_strict(categories, list(range(len(categories))), default=-1, return_dtype=pl.Int64)
            )
            return coded.to_numpy().astype(np.int64, copy=False)
        index = self._category_index(i)
        values = _strings_from_series(series)
        return np.array([index.get(fill if v is None else v, -1) for v in values], dtype=np.int64)

    def _category_index(self, i: int) -> dict[str, int]:
        return {c: j for j, c in enumerate(self.categories_[i])}

    def _assemble(self, raw: np.ndarray, codes: list[np.ndarray]) -> np.ndarray:
        """The matrix, written in place column block by column block (no intermediate copies)."""
        out = np.empty((raw.shape[0], len(self.feature_names_)), dtype=np.float64)
        numeric = out[:, : raw.shape[1]]
        np.subtract(_impute(raw, np.asarray(self.fill_, dtype=np.float64)), np.asarray(self.center_), out=numeric)
        np.divide(numeric, np.asarray(self.scale_), out=numeric)
        start = raw.shape[1]
        for code, categories in zip(codes, self.categories_, strict=True):
            if self.encode == "ordinal":
                out[:, start] = code
                start += 1
                continue
            block = out[:, start : start + len(categories)]
            block.fill(0.0)
            seen = code >= 0
            block[np.flatnonzero(seen), code[seen]] = 1.0
            start += len(categories)
        return out

    def _check_fitted(self) -> None:
        if not hasattr(self, "feature_names_"):
            raise ConfigError("the preprocessor is not fitted.", hint="Call fit(train) first.")

    # -- schema and state ------------------------------------------------------------------------

    def input_schema(self) -> list[dict[str, Any]]:
        """One ``{"name", "dtype", "nullable"}`` entry per input column, numeric first."""
        numeric = [{"name": n, "dtype": "number", "nullable": True} for n in self.numeric]
        return numeric + [{"name": n, "dtype": "string", "nullable": True} for n in self.categorical]

    def to_state(self) -> dict[str, Any]:
        """JSON-able parameters and learned state; :meth:`from_state` rebuilds an equal object."""
        self._check_fitted()
        return {
            "version": STATE_VERSION,
            "params": self.get_params(),
            "fill": list(self.fill_),
            "center": list(self.center_),
            "scale": list(self.scale_),
            "category_fill": list(self.category_fill_),
            "categories": [list(c) for c in self.categories_],
            "feature_names": list(self.feature_names_),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Preprocessor:
        """Rebuild a fitted preprocessor from :meth:`to_state` output."""
        try:
            if state["version"] != STATE_VERSION:
                raise DataError(
                    f"preprocessor state version {state['version']!r} is not supported.",
                    hint="Re-train the model with this version of loopline.",
                )
            self = cls(**state["params"])
            self.fill_ = [float(v) for v in state["fill"]]
            self.center_ = [float(v) for v in state["center"]]
            self.scale_ = [float(v) for v in state["scale"]]
            self.category_fill_ = [str(v) for v in state["category_fill"]]
            self.categories_ = [[str(c) for c in cats] for cats in state["categories"]]
            self.feature_names_ = [str(v) for v in state["feature_names"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"preprocessor state is malformed ({type(exc).__name__}: {exc}).",
                hint="Re-train the model; the bundle was not written by loopline or is damaged.",
            ) from None
        self._check_state()
        return self

    def _check_state(self) -> None:
        widths = {len(self.fill_), len(self.center_), len(self.scale_), len(self.numeric)}
        cats = {len(self.category_fill_), len(self.categories_), len(self.categorical)}
        if len(widths) != 1 or len(cats) != 1 or self.feature_names_ != self._feature_names():
            raise DataError(
                "preprocessor state is inconsistent with its columns.",
                hint="Re-train the model; the bundle was not written by loopline or is damaged.",
            )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"Preprocessor({args})"


def _require_columns(df: pl.DataFrame, names: list[str]) -> None:
    for name in names:
        if name not in df.columns:
            raise DataError(
                f"column {name!r} is missing from the table.",
                column=name,
                hint=did_you_mean(name, df.columns) or f"Columns present: {', '.join(df.columns)}.",
            )


def _numeric_raw_from_frame(df: pl.DataFrame, names: list[str]) -> np.ndarray:
    """Float64 matrix of the numeric columns, NaN where null."""
    for name in names:
        dtype = df.schema[name]
        if not (dtype.is_numeric() or dtype in (pl.Boolean, pl.Null)):
            raise DataError(
                f"numeric column {name!r} has type {dtype}.",
                column=name,
                hint="Cast it to a number in an earlier step, or list it under categorical.",
            )
    if not names:
        return np.empty((df.height, 0), dtype=np.float64)
    frame = df.select(pl.col(n).cast(pl.Float64).fill_null(float("nan")) for n in names)
    return frame.to_numpy().astype(np.float64, copy=False).reshape(df.height, len(names))


def _impute(raw: np.ndarray, fill: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(raw), raw, fill)


def _category_counts(series: pl.Series) -> tuple[Counter[str], int]:
    """How often each present value occurs (as text), and the number of nulls."""
    if isinstance(series.dtype, _STRING_DTYPES):
        counted = series.cast(pl.String).drop_nulls().rename("value").value_counts(name="count")
        counts = dict(zip(counted["value"].to_list(), counted["count"].to_list(), strict=True))
        return Counter(counts), series.null_count()
    values = _strings_from_series(series)
    return Counter(v for v in values if v is not None), sum(v is None for v in values)


def _strings_from_series(series: pl.Series) -> list[str | None]:
    if isinstance(series.dtype, _STRING_DTYPES):
        return series.cast(pl.String).to_list()
    return [None if v is None else str(v) for v in series.to_list()]


def _number(value: Any, name: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool | int | float):
        try:
            return float(value)
        except OverflowError:
            reason = "number too large for a float"
    else:
        reason = f"expected a number, got {type(value).__name__}"
    raise SchemaValidationError([{"field": name, "reason": reason, "record": None}])
