"""Categorical encodings: one-hot with a frequency cut-off and an "other" bucket, ordinal codes, and target
encoding fitted out-of-fold.

Values are compared as text (``str(value)``; a boolean is ``"true"``/``"false"`` as polars writes it). What the
training rows did not show follows ``unseen``: ``other`` (the "other" bucket, or all zeros when there is none),
``ignore`` (all zeros / code -1) or ``error``. Every value outside the kept categories (unseen, or cut as
rare) met after fitting is counted (``"<column>: other category"``) for monitoring. Target encoding sends an
unseen category to the training mean and counts it (``"<column>: unseen category"``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from loopline.core.errors import ConfigError, DataError
from loopline.prep._scaling import _choice
from loopline.prep._transform import Record, Transform

OTHER = "other"
MISSING = "(missing)"
_UNSEEN = ("other", "ignore", "error")


def _text(value: Any) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _as_text(frame: pl.DataFrame, name: str) -> pl.Expr:
    column = pl.col(name)
    if frame.schema[name] != pl.String:
        column = column.cast(pl.String)
    return column.fill_null(MISSING)


class _Categorical(Transform):
    """Shared fitting: the categories kept per column, by frequency."""

    def __init__(
        self, columns: list[str], min_frequency: int = 1, max_categories: int | None = None, unseen: str = "other"
    ) -> None:
        self.columns = columns
        self.min_frequency = min_frequency
        self.max_categories = max_categories
        self.unseen = unseen

    def check_params(self) -> None:
        _choice(self.type_name, "unseen", self.unseen, _UNSEEN)
        if self.min_frequency < 1 or (self.max_categories is not None and self.max_categories < 1):
            raise ConfigError(
                f"{self.type_name}: min_frequency and max_categories must be at least 1.",
                key="min_frequency",
                hint="Set them to positive integers (max_categories: null keeps all).",
            )

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> _Categorical:
        self.check_params()
        self.require_columns(frame, self.columns)
        for name in self.columns:  # polars and Python write floats as text differently (1e-7 vs 1e-07)
            if frame.schema[name].is_float():
                raise DataError(
                    f"{self.type_name}: column {name!r} holds floats ({frame.schema[name]}), not categories.",
                    column=name,
                    hint="Cast it to an integer or a string first (type: cast), or bin it (type: bin).",
                )
        self.categories_: dict[str, list[str]] = {}
        self.rare_: dict[str, bool] = {}
        for name in self.columns:
            counts = frame.select(_as_text(frame, name).alias("v")).get_column("v").value_counts()
            ranked = counts.sort(["count", "v"], descending=[True, False])
            kept = ranked.filter(pl.col("count") >= self.min_frequency).get_column("v").to_list()
            if self.max_categories is not None:
                kept = kept[: self.max_categories]
            self.categories_[name] = sorted(kept)
            self.rare_[name] = len(kept) < ranked.height
        return self

    def _unseen_error(self, name: str, value: str) -> DataError:
        return DataError(
            f"{self.type_name}: column {name!r} has category {value!r}, not seen in training.",
            column=name,
            hint="Set unseen: other (or ignore) to accept new categories.",
        )


class OneHot(_Categorical):
    """One Boolean column per kept category (``<column>=<category>``; a byte a cell), plus ``<column>=other`` when
    categories were cut (``min_frequency``, ``max_categories``) and ``unseen`` is ``other``. Replaces the source
    column. Each column is coded once (category index, -1 outside), then compared as integers."""

    type_name = "onehot"

    def _outputs(self, name: str) -> list[tuple[str, str]]:
        pairs = [(f"{name}={c}", c) for c in self.categories_[name]]
        if self.unseen == "other" and self.rare_[name] and OTHER not in self.categories_[name]:
            pairs.append((f"{name}={OTHER}", OTHER))
        return pairs

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.require_columns(frame, self.columns)
        codes = {name: f"__code__{name}" for name in self.columns}  # category index, -1 outside: one pass each
        frame = frame.with_columns(
            _as_text(frame, name)
            .replace_strict(self.categories_[name], list(range(len(self.categories_[name]))), default=-1)
            .cast(pl.Int32)
            .alias(codes[name])
            for name in self.columns
        )
        exprs: list[pl.Expr] = []
        for name in self.columns:
            code = pl.col(codes[name])
            other = int(frame.select((code == -1).sum()).item())
            self.count(f"{name}: other category", other)
            if other and self.unseen == "error":
                first = frame.filter(code == -1).select(_as_text(frame, name)).item(0, 0)
                raise self._unseen_error(name, first)
            known = self.categories_[name]
            for output, category in self._outputs(name):
                index = -1 if category == OTHER and category not in known else known.index(category)
                exprs.append((code == index).alias(output))
        return frame.with_columns(exprs).drop([*self.columns, *codes.values()])

    def transform_record(self, record: Record) -> Record:
        out = dict(record)
        for name in self.columns:
            value = _text(out.pop(name, None))
            known = self.categories_[name]
            seen = value in known
            if not seen:
                self.count(f"{name}: other category")
                if self.unseen == "error":
                    raise self._unseen_error(name, value)
            for output, category in self._outputs(name):
                hit = (not seen) if category == OTHER and category not in known else value == category
                out[output] = hit
        return out

    def lineage(self) -> dict[str, list[str]]:
        return {output: [name] for name in self.columns for output, _ in self._outputs(name)}


class Ordinal(_Categorical):
    """Each kept category becomes its index in sorted order (Float64); an unseen or cut one becomes -1."""

    type_name = "ordinal"

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.require_columns(frame, self.columns)
        exprs = []
        for name in self.columns:
            text, known = _as_text(frame, name), self.categories_[name]
            unseen = int(frame.select((~text.is_in(known)).sum()).item())
            self.count(f"{name}: other category", unseen)
            if unseen and self.unseen == "error":
                first = frame.filter(~frame.select(text.is_in(known)).to_series()).select(text).item(0, 0)
                raise self._unseen_error(name, first)
            codes = text.replace_strict(
                known, [float(i) for i in range(len(known))], default=-1.0, return_dtype=pl.Float64
            )
            exprs.append(codes.alias(name))
        return frame.with_columns(exprs)

    def transform_record(self, record: Record) -> Record:
        out = dict(record)
        for name in self.columns:
            value = _text(out.get(name))
            code = self._codes(name).get(value)
            if code is None:
                self.count(f"{name}: other category")
                if self.unseen == "error":
                    raise self._unseen_error(name, value)
                code = -1.0
            out[name] = code
        return out

    def _codes(self, name: str) -> dict[str, float]:
        cache: dict[str, dict[str, float]] = self.__dict__.setdefault("_code_cache", {})
        if name not in cache:
            cache[name] = {c: float(i) for i, c in enumerate(self.categories_[name])}
        return cache[name]

    def lineage(self) -> dict[str, list[str]]:
        return {name: [name] for name in self.columns}


_TARGET_TYPES = ("auto", "binary", "continuous", "multiclass")
_MAX_CLASSES = 50
_CAT, _FOLD = "__loopline_category", "__loopline_fold"


class TargetEncode(Transform):
    """Each category becomes the target's mean over the training rows of that category, smoothed toward the
    overall mean: ``(sum + smoothing * prior) / (count + smoothing)`` (``smoothing: 0`` is the plain mean).

    ``target_type``:

    - ``binary``: the share of the positive label, the larger of the two in sort order (1, true, "yes");
    - ``continuous``: the mean of a numeric target (regression);
    - ``multiclass``: one column ``<column>_<class>`` per class, the share of that class (at most 50 classes);
      the source column is dropped;
    - ``auto`` (default): boolean targets and targets with two values are binary, text targets with more are
      multiclass, other numeric targets continuous.

    Binary and continuous encodings replace the column in place (Float64).

    **Out-of-fold on the training rows.** :meth:`fit_transform` (what a chain runs at training) shuffles the
    rows into ``folds`` folds (``seed``) and encodes each fold's rows with statistics of the *other* folds
    only: a training row's encoding never depends on its own label, so the model cannot learn the leaked
    target. :meth:`fit` learns the statistics of all training rows, which :meth:`transform` and
    :meth:`transform_record` apply to new rows (identically).

    Rows with a null (or NaN) target do not count; an infinite target is an error. Categories compare as text
    (a null is a category of its own); float columns are refused (their text differs between paths). An unseen
    category gets the training mean and is counted (``"<column>: unseen category"``).
    """

    type_name = "target_encode"

    def __init__(
        self,
        columns: list[str],
        smoothing: float = 10.0,
        folds: int = 5,
        seed: int = 0,
        target_type: str = "auto",
    ) -> None:
        self.columns = columns
        self.smoothing = smoothing
        self.folds = folds
        self.seed = seed
        self.target_type = target_type

    def check_params(self) -> None:
        _choice(self.type_name, "target_type", self.target_type, _TARGET_TYPES)
        if not self.columns:
            raise ConfigError("target_encode: no columns given.", key="columns", hint="Add columns: [city].")
        smoothing = self.smoothing
        if isinstance(smoothing, bool) or not isinstance(smoothing, int | float) or not 0 <= smoothing < math.inf:
            raise ConfigError(
                f"target_encode: smoothing must be a number >= 0, got {smoothing!r}.",
                key="smoothing",
                hint="Use smoothing: 10 (0 gives the plain category mean).",
            )
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 2:
            raise ConfigError(
                f"target_encode: folds must be an integer >= 2, got {self.folds!r}.", key="folds", hint="Use folds: 5."
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"target_encode: seed must be an integer, got {self.seed!r}.", key="seed")

    # -- fitting -----------------------------------------------------------------------------------

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> TargetEncode:
        labels = self._labels(frame, target)
        valid = labels.filter(pl.col("_y0").is_not_null())
        if valid.height == 0:
            raise DataError(
                f"target_encode: the target {target!r} has no value in the training rows.",
                column=target,
                hint="Drop the rows with a null target, or train on rows that have one.",
            )
        self.prior_ = _means(valid)
        self.encodings_: dict[str, dict[str, list[float]]] = {}
        for name in self.columns:
            data = pl.concat([frame.select(_as_text(frame, name).alias(_CAT)), labels], how="horizontal")
            stats = _statistics(data.filter(pl.col("_y0").is_not_null()), self.prior_, float(self.smoothing))
            values = stats.drop(_CAT).rows()
            self.encodings_[name] = {c: list(v) for c, v in zip(stats.get_column(_CAT), values, strict=True)}
        return self

    def fit_transform(self, frame: pl.DataFrame, target: str | None = None) -> pl.DataFrame:
        """Fit on all rows, and encode the training rows out-of-fold (see the class docstring)."""
        self.fit(frame, target)
        if frame.height < self.folds:
            raise DataError(
                f"target_encode: {frame.height} training rows cannot make {self.folds} folds.",
                hint=f"Set folds: {max(2, frame.height)} or less, or train on more rows.",
            )
        labels = self._labels(frame, target)
        folds = pl.DataFrame({_FOLD: self._fold_ids(frame.height)})
        out = frame
        for name in self.columns:
            data = pl.concat([frame.select(_as_text(frame, name).alias(_CAT)), labels, folds], how="horizontal")
            encoded = self._out_of_fold(data)
            out = out.with_columns(
                encoded.get_column(f"_e{i}").alias(output) for i, output in enumerate(self._outputs(name))
            )
        self.__dict__.pop("_counts", None)
        return out.drop(self._dropped())

    def _fold_ids(self, height: int) -> np.ndarray[Any, Any]:
        order = np.random.default_rng(self.seed).permutation(height)
        folds = np.empty(height, dtype=np.int64)
        folds[order] = np.arange(height) % self.folds
        return folds

    def _out_of_fold(self, data: pl.DataFrame) -> pl.DataFrame:
        """``_e<i>`` per row of ``data``, from the statistics of the rows in the other folds."""
        valid = data.filter(pl.col("_y0").is_not_null())
        tables, priors = [], []
        for fold in range(self.folds):
            rest = valid.filter(pl.col(_FOLD) != fold)
            prior = _means(rest) if rest.height else self.prior_
            stats = _statistics(rest, prior, float(self.smoothing))
            tables.append(stats.with_columns(pl.lit(fold, dtype=pl.Int64).alias(_FOLD)))
            priors.append(prior)
        joined = data.select(_CAT, _FOLD).join(pl.concat(tables), on=[_FOLD, _CAT], how="left", maintain_order="left")
        return joined.select(
            pl.col(f"_e{i}").fill_null(
                pl.col(_FOLD).replace_strict(list(range(self.folds)), [p[i] for p in priors], return_dtype=pl.Float64)
            )
            for i in range(len(self.prior_))
        )

    def _labels(self, frame: pl.DataFrame, target: str | None) -> pl.DataFrame:
        """The target as Float64 columns ``_y0``, ``_y1``... (null where the label is missing); sets the kind."""
        self.check_params()
        if target is None:
            raise DataError(
                "target_encode learns from the label, and no target was given.",
                hint="Fit it with the target column: chain.fit_transform(train, target='label').",
            )
        self.require_columns(frame, [*self.columns, target])
        if target in self.columns:
            raise ConfigError(
                f"target_encode: the target {target!r} cannot encode itself.",
                key="columns",
                hint=f"Remove {target!r} from columns.",
            )
        for name in self.columns:
            if frame.schema[name].is_float():
                raise DataError(
                    f"target_encode: column {name!r} is {frame.schema[name]}; categories must be text, integers "
                    "or booleans.",
                    column=name,
                    hint=f"Cast {name!r} to an integer or a string first (or bin it).",
                )
        column = frame.get_column(target)
        if column.dtype.is_float():
            column = column.fill_nan(None)
        self.kind_ = self._kind(column)
        if self.kind_ == "continuous":
            return self._continuous(column)
        text = column.cast(pl.String)
        classes = [_text(v) for v in column.drop_nulls().unique().sort().to_list()]
        if self.kind_ == "binary":
            if len(classes) > 2:
                raise DataError(
                    f"target_encode: target_type binary, but the target {target!r} has {len(classes)} values.",
                    column=target,
                    hint="Use target_type: multiclass (or continuous for a numeric target).",
                )
            self.classes_ = classes
            return pl.DataFrame({"_y0": (text == classes[-1]).cast(pl.Float64)}) if classes else _nulls(column)
        if len(classes) > _MAX_CLASSES:
            raise DataError(
                f"target_encode: the target {target!r} has {len(classes)} classes; multiclass encoding makes one "
                f"column per class and stops at {_MAX_CLASSES}.",
                column=target,
                hint="Group rare classes first, or use target_type: continuous for an ordered numeric target.",
            )
        self.classes_ = classes
        return pl.DataFrame({f"_y{i}": (text == c).cast(pl.Float64) for i, c in enumerate(classes)})

    def _continuous(self, column: pl.Series) -> pl.DataFrame:
        if not column.dtype.is_numeric():
            raise DataError(
                f"target_encode: target {column.name!r} is {column.dtype}; a continuous target must be numeric.",
                column=str(column.name),
                hint="Use target_type: binary or multiclass for labels.",
            )
        values = column.cast(pl.Float64)
        if values.is_infinite().any():
            raise DataError(
                f"target_encode: target {column.name!r} holds infinite values.",
                column=str(column.name),
                hint="Clip or drop the rows with an infinite target first.",
            )
        self.classes_ = []
        return pl.DataFrame({"_y0": values})

    def _kind(self, column: pl.Series) -> str:
        if self.target_type != "auto":
            return str(self.target_type)
        present = column.drop_nulls()
        if column.dtype == pl.Boolean:
            return "binary"
        if column.dtype.is_numeric():
            whole = column.dtype.is_integer() or bool(present.is_in([0.0, 1.0]).all())
            return "binary" if whole and present.n_unique() <= 2 else "continuous"
        return "binary" if present.n_unique() <= 2 else "multiclass"

    # -- applying ----------------------------------------------------------------------------------

    def _outputs(self, name: str) -> list[str]:
        if self.kind_ == "multiclass":
            return [f"{name}_{c}" for c in self.classes_]
        return [name]

    def _dropped(self) -> list[str]:
        return list(self.columns) if self.kind_ == "multiclass" else []

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.require_columns(frame, self.columns)
        exprs: list[pl.Expr] = []
        for name in self.columns:
            text, table = _as_text(frame, name), self.encodings_[name]
            known = list(table)
            self.count(f"{name}: unseen category", int(frame.select((~text.is_in(known)).sum()).item()))
            for i, output in enumerate(self._outputs(name)):
                values = [table[c][i] for c in known]
                encoded = text.replace_strict(known, values, default=self.prior_[i], return_dtype=pl.Float64)
                exprs.append(encoded.alias(output))
        return frame.with_columns(exprs).drop(self._dropped())

    def transform_record(self, record: Record) -> Record:
        out = dict(record)
        for name in self.columns:
            row = self.encodings_[name].get(_text(out.get(name)))
            if row is None:
                self.count(f"{name}: unseen category")
                row = self.prior_
            if self.kind_ == "multiclass":
                out.pop(name, None)
            out.update(zip(self._outputs(name), row, strict=True))
        return out

    def lineage(self) -> dict[str, list[str]]:
        return {output: [name] for name in self.columns for output in self._outputs(name)}


def _means(labels: pl.DataFrame) -> list[float]:
    columns = [c for c in labels.columns if c.startswith("_y")]
    return [float(v) for v in labels.select(pl.col(c).mean() for c in columns).row(0)]


def _statistics(data: pl.DataFrame, prior: list[float], smoothing: float) -> pl.DataFrame:
    """Per category (``_CAT``): the smoothed means ``_e<i>`` of the label columns ``_y<i>``."""
    sums = [pl.col(f"_y{i}").sum().alias(f"_s{i}") for i in range(len(prior))]
    stats = data.group_by(_CAT).agg(pl.len().cast(pl.Float64).alias("_n"), *sums).sort(_CAT)
    return stats.select(
        _CAT,
        *[
            ((pl.col(f"_s{i}") + smoothing * p) / (pl.col("_n") + smoothing)).alias(f"_e{i}")
            for i, p in enumerate(prior)
        ],
    )


def _nulls(column: pl.Series) -> pl.DataFrame:
    return pl.DataFrame({"_y0": pl.Series([None] * column.len(), dtype=pl.Float64)})
