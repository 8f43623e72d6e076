"""Categorical encodings: one-hot with a frequency cut-off and an "other" bucket, and ordinal codes.

Values are compared as text (``str(value)``; a boolean is ``"true"``/``"false"`` as polars writes it). What the
training rows did not show follows ``unseen``: ``other`` (the "other" bucket, or all zeros when there is none),
``ignore`` (all zeros / code -1) or ``error``. Every value outside the kept categories (unseen, or cut as
rare) met after fitting is counted (``"<column>: other category"``) for monitoring.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from loopline.core.errors import ConfigError, DataError
from loopline.prep._scaling import _choice
from loopline.prep._transform import TRANSFORMS, Record, Transform

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
    """One column per kept category (``<column>=<category>``, 0.0/1.0), plus ``<column>=other`` when categories
    were cut (``min_frequency``, ``max_categories``) and ``unseen`` is ``other``. Replaces the source column."""

    type_name = "onehot"

    def _outputs(self, name: str) -> list[tuple[str, str]]:
        pairs = [(f"{name}={c}", c) for c in self.categories_[name]]
        if self.unseen == "other" and self.rare_[name] and OTHER not in self.categories_[name]:
            pairs.append((f"{name}={OTHER}", OTHER))
        return pairs

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.require_columns(frame, self.columns)
        exprs: list[pl.Expr] = []
        for name in self.columns:
            text = _as_text(frame, name)
            known = self.categories_[name]
            seen = text.is_in(known)
            unseen = int(frame.select((~seen).sum()).item())
            self.count(f"{name}: other category", unseen)
            if unseen and self.unseen == "error":
                first = frame.filter(~frame.select(seen).to_series()).select(text).item(0, 0)
                raise self._unseen_error(name, first)
            for output, category in self._outputs(name):
                hit = (~seen) if category == OTHER and category not in known else (text == category)
                exprs.append(hit.cast(pl.Float64).alias(output))
        return frame.with_columns(exprs).drop(self.columns)

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
                out[output] = 1.0 if hit else 0.0
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


TRANSFORMS.register(OneHot.type_name, OneHot)
TRANSFORMS.register(Ordinal.type_name, Ordinal)
