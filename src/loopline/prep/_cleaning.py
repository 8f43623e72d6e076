"""Cleaning transforms: choose and rename columns, tidy text, clip outliers, and remove bad training rows.

Row removal (``dedupe``, ``filter``, ``drop_missing``, and ``outliers`` with ``action: drop``) happens to the
training rows only, in ``fit_transform``: validation, test and live rows are never removed (a model must answer
for every row it is given), so on them these transforms are the identity. Types and dates are in ``_parsing``.
"""

from __future__ import annotations

import re
import sys

import polars as pl

from loopline.core.errors import ConfigError, DataError
from loopline.prep import _unicode
from loopline.prep._expr import Compiled, compile_expression
from loopline.prep._scaling import _as_float, _choice, _require_numeric
from loopline.prep._transform import Record, Transform

_RENAME_RULES = ("snake_case", "lower", "prefix", "suffix")
_CASES = ("lower", "upper")
_KEEP = ("first", "last")
_HOW = ("any", "all")
_OUTLIER_METHODS = ("iqr", "quantile")
_OUTLIER_ACTIONS = ("clip", "drop")


class Keep(Transform):
    """Keep only these columns, in this order."""

    type_name = "keep"
    stateful = False

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.require_columns(frame, self.columns)
        return frame.select(self.columns)

    def transform_record(self, record: Record) -> Record:
        return {name: record.get(name) for name in self.columns}


class Drop(Transform):
    """Drop these columns (absent ones are fine: they are gone already)."""

    type_name = "drop"
    stateful = False

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.drop(self.columns, strict=False)

    def transform_record(self, record: Record) -> Record:
        return {k: v for k, v in record.items() if k not in self.columns}


# -- renaming ----------------------------------------------------------------------------------------


def snake_case(name: str) -> str:
    """``"Unit Price"`` -> ``"unit_price"``, ``"orderDate"`` -> ``"order_date"``, ``"HTTPCode"`` -> ``"http_code"``."""
    text = re.sub(r"([^\W_])([A-Z][a-z])", r"\1_\2", name)
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"[\W_]+", "_", text).strip("_").lower()
    return text or name


class Rename(Transform):
    """Rename columns, by name or by a rule.

    - ``columns: {old: new}`` renames those columns;
    - ``rule: snake_case`` (``"Unit Price"`` -> ``unit_price``, ``orderDate`` -> ``order_date``), ``lower``,
      ``prefix`` or ``suffix`` (adds ``text``) renames every column, or only those of ``columns: [...]``.

    The new names are fixed at fit from the training columns: the target column keeps its name, and two columns
    that would end with the same name are an error. At serving, a column that training did not have keeps its
    name, and a renamed column that is absent is simply absent.
    """

    type_name = "rename"

    def __init__(
        self, columns: dict[str, str] | list[str] | None = None, rule: str | None = None, text: str = ""
    ) -> None:
        self.columns = columns
        self.rule = rule
        self.text = text

    def check_params(self) -> None:
        if isinstance(self.columns, dict):
            if self.rule is not None:
                raise ConfigError(
                    "rename: give either columns: {old: new} or a rule, not both.",
                    key="rule",
                    hint="Drop rule, or give columns as a list of the columns the rule applies to.",
                )
            bad = [old for old, new in self.columns.items() if not isinstance(new, str) or not new]
            if bad:
                raise ConfigError(
                    f"rename: column {bad[0]!r} has no new name.", key="columns", hint="Write columns: {old: new}."
                )
            return
        if self.rule is None:
            raise ConfigError(
                "rename: nothing to rename.", key="columns", hint="Add columns: {old: new}, or rule: snake_case."
            )
        _choice(self.type_name, "rule", self.rule, _RENAME_RULES)
        if self.rule in ("prefix", "suffix") and not self.text:
            raise ConfigError(
                f"rename: rule {self.rule!r} needs the text to add.",
                key="text",
                hint=f"Add text: 'raw_' to the {self.rule} rule.",
            )

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> Rename:
        self.check_params()
        if isinstance(self.columns, dict):
            self.require_columns(frame, self.columns)
            if target is not None and target in self.columns:
                raise DataError(
                    f"rename: {target!r} is the target column; the preprocessing chain cannot rename it.",
                    column=target,
                    hint="Rename the label before the split and train steps, or leave it out of columns.",
                )
            mapping = dict(self.columns)
        else:
            if self.columns is not None:
                self.require_columns(frame, self.columns)
            chosen = self.columns if self.columns is not None else frame.columns
            mapping = {name: self._apply_rule(name) for name in chosen if name != target}
        self.mapping_ = {old: new for old, new in mapping.items() if old != new}
        self._check_unique(frame.columns)
        return self

    def _apply_rule(self, name: str) -> str:
        if self.rule == "snake_case":
            return snake_case(name)
        if self.rule == "lower":
            return name.lower()
        return f"{self.text}{name}" if self.rule == "prefix" else f"{name}{self.text}"

    def _check_unique(self, names: list[str]) -> None:
        seen: dict[str, str] = {}
        for name in names:
            new = self.mapping_.get(name, name)
            if new in seen:
                raise DataError(
                    f"rename: columns {seen[new]!r} and {name!r} would both be named {new!r}.",
                    column=name,
                    hint="Rename one of them explicitly (columns: {old: new}), or drop it before this step.",
                )
            seen[new] = name

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        self._check_unique(frame.columns)
        return frame.rename({old: new for old, new in self.mapping_.items() if old in frame.columns})

    def transform_record(self, record: Record) -> Record:
        out = {self.mapping_.get(name, name): value for name, value in record.items()}
        if len(out) != len(record):
            self._check_unique(list(record))
        return out

    def lineage(self) -> dict[str, list[str]]:
        return {new: [old] for old, new in self.mapping_.items()}


# -- text ----------------------------------------------------------------------------------------------


class Strings(Transform):
    """Tidy text columns, in this order: ``normalize`` (Unicode NFKC: full-width and compatibility characters
    become their plain form, "ﬁ" -> "fi"), ``collapse_spaces`` (every run of whitespace becomes one space),
    ``trim`` (whitespace off both ends), ``case`` (``lower``, ``upper`` or null to keep it), and
    ``empty_to_null`` (an empty string becomes null). Defaults: all on but ``case``.

    Whitespace is the Unicode White_Space set. A column that is not text is an error: cast it first.
    """

    type_name = "strings"
    stateful = False

    def __init__(
        self,
        columns: list[str],
        trim: bool = True,
        case: str | None = None,
        normalize: bool = True,
        collapse_spaces: bool = True,
        empty_to_null: bool = True,
    ) -> None:
        self.columns = columns
        self.trim = trim
        self.case = case
        self.normalize = normalize
        self.collapse_spaces = collapse_spaces
        self.empty_to_null = empty_to_null

    def check_params(self) -> None:
        if self.case is not None:
            _choice(self.type_name, "case", self.case, _CASES)

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.require_columns(frame, self.columns)
        return frame.with_columns(self._expr(frame, name).alias(name) for name in self.columns)

    def _expr(self, frame: pl.DataFrame, name: str) -> pl.Expr:
        dtype = frame.schema[name]
        if dtype not in (pl.String, pl.Null):
            raise self._not_text(name, str(dtype))
        text = pl.col(name).cast(pl.String)
        if self.normalize:
            text = text.str.normalize("NFKC")
        if self.collapse_spaces:
            text = text.str.replace_all(_unicode.WHITESPACE_RUN, " ")
        if self.trim:
            text = text.str.strip_chars(_unicode.WHITESPACE)
        if self.case == "lower":
            text = text.str.to_lowercase()
        elif self.case == "upper":
            text = text.str.to_uppercase()
        if self.empty_to_null:
            text = pl.when(text.str.len_bytes() == 0).then(pl.lit(None, dtype=pl.String)).otherwise(text)
        return text

    def transform_record(self, record: Record) -> Record:
        out = dict(record)
        for name in self.columns:
            value = out.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise self._not_text(name, type(value).__name__)
            out[name] = self._clean(value)
        return out

    def _clean(self, text: str) -> str | None:
        if self.normalize:
            text = _unicode.nfkc(text)
        if self.collapse_spaces:
            text = _unicode.collapse_whitespace(text)
        if self.trim:
            text = text.strip(_unicode.WHITESPACE)
        if self.case == "lower":
            text = _unicode.lower(text)
        elif self.case == "upper":
            text = _unicode.upper(text)
        return None if self.empty_to_null and not text else text

    def _not_text(self, name: str, kind: str) -> DataError:
        return DataError(
            f"strings: column {name!r} is {kind}, not text.",
            column=name,
            hint=f"Cast it first ({{type: cast, columns: {{{name}: str}}}}), or leave it out of columns.",
        )

    def lineage(self) -> dict[str, list[str]]:
        return {name: [name] for name in self.columns}


# -- removing training rows ---------------------------------------------------------------------------


class _RowFilter(Transform):
    """Removes training rows in :meth:`fit_transform`; the identity everywhere else."""

    train_only = True
    stateful = False

    def fit_transform(self, frame: pl.DataFrame, target: str | None = None) -> pl.DataFrame:
        self.fit(frame, target)
        return self._kept(frame, target)

    def _kept(self, frame: pl.DataFrame, target: str | None) -> pl.DataFrame:
        raise NotImplementedError

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame

    def transform_record(self, record: Record) -> Record:
        return record


class Dedupe(_RowFilter):
    """Remove duplicate training rows: rows equal on ``columns`` (default: all columns, the target included);
    ``keep`` the ``first`` (default) or ``last`` of each group. Order is kept. Other rows are never removed."""

    type_name = "dedupe"

    def __init__(self, columns: list[str] | None = None, keep: str = "first") -> None:
        self.columns = columns
        self.keep = keep

    def check_params(self) -> None:
        _choice(self.type_name, "keep", self.keep, _KEEP)

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> Dedupe:
        self.check_params()
        if self.columns is not None:
            self.require_columns(frame, self.columns)
        return self

    def _kept(self, frame: pl.DataFrame, target: str | None) -> pl.DataFrame:
        return frame.unique(subset=self.columns, keep="first" if self.keep == "first" else "last", maintain_order=True)


class Filter(_RowFilter):
    """Keep the training rows where ``expr`` is true (an expression as in ``derive``: ``amount > 0 and qty < 100``);
    rows where it is false or null are removed. Other rows are never removed."""

    type_name = "filter"

    def __init__(self, expr: str) -> None:
        self.expr = expr

    def check_params(self) -> None:
        if not isinstance(self.expr, str) or not self.expr.strip():
            raise ConfigError("filter: no expression given.", key="expr", hint="Add expr: amount > 0.")
        self._compiled()

    def _compiled(self) -> Compiled:
        compiled: Compiled | None = self.__dict__.get("_cache")
        if compiled is None:
            compiled = self.__dict__["_cache"] = compile_expression(self.expr)
        return compiled

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> Filter:
        self.check_params()
        self.require_columns(frame, self._compiled().columns)
        return self

    def _kept(self, frame: pl.DataFrame, target: str | None) -> pl.DataFrame:
        keep = frame.select(self._compiled().polars.alias("keep")).to_series()
        if keep.dtype not in (pl.Boolean, pl.Null):
            raise DataError(
                f"filter: expression {self.expr!r} gives {keep.dtype}, not true/false.",
                hint="Write a condition, e.g. amount > 0.",
            )
        return frame.filter(keep.fill_null(False))


class DropMissing(_RowFilter):
    """Remove training rows with a missing value in ``columns`` (default: every column but the target), as
    ``impute`` sees it: null, or NaN/±inf in a float column. ``how: any`` (default) removes a row missing any of
    them, ``how: all`` one missing all of them. Other rows are never removed: impute them for serving."""

    type_name = "drop_missing"

    def __init__(self, columns: list[str] | None = None, how: str = "any") -> None:
        self.columns = columns
        self.how = how

    def check_params(self) -> None:
        _choice(self.type_name, "how", self.how, _HOW)

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> DropMissing:
        self.check_params()
        if self.columns is not None:
            self.require_columns(frame, self.columns)
        return self

    def _kept(self, frame: pl.DataFrame, target: str | None) -> pl.DataFrame:
        names = self.columns if self.columns is not None else [c for c in frame.columns if c != target]
        if not names:
            return frame
        missing = [_is_missing(frame, name) for name in names]
        drop = pl.any_horizontal(missing) if self.how == "any" else pl.all_horizontal(missing)
        return frame.filter(~drop)


def _is_missing(frame: pl.DataFrame, name: str) -> pl.Expr:
    column = pl.col(name)
    if frame.schema[name].is_float():
        return column.is_null() | ~column.is_finite().fill_null(True)
    return column.is_null()


# -- outliers ------------------------------------------------------------------------------------------


class Outliers(Transform):
    """Fences learned on the training rows, per numeric column: ``method: iqr`` (default) puts them ``factor``
    (1.5) interquartile ranges beyond the quartiles; ``method: quantile`` at the ``lower`` (0.01) and ``upper``
    (0.99) quantiles. NaN and nulls are never outliers; ±inf are.

    ``action: clip`` (default) clips values to the fences everywhere (training, validation, test, serving); the
    output is Float64 and every value clipped after fitting is counted (``"<column>: clipped"``).

    ``action: drop`` removes the training rows with a value beyond a fence (in ``fit_transform``), like the
    other row filters; everywhere else the values pass unchanged — no row is removed and no value is altered,
    so the model is evaluated and served on data as it comes — and each value beyond a fence is counted
    (``"<column>: beyond the fences"``) so monitoring sees how often it meets what training left out. To clip at
    serving as well, follow it with an ``outliers`` step with ``action: clip`` (fitted on the rows kept).
    """

    type_name = "outliers"

    def __init__(
        self,
        columns: list[str],
        method: str = "iqr",
        factor: float = 1.5,
        lower: float = 0.01,
        upper: float = 0.99,
        action: str = "clip",
    ) -> None:
        self.columns = columns
        self.method = method
        self.factor = factor
        self.lower = lower
        self.upper = upper
        self.action = action

    def check_params(self) -> None:
        _choice(self.type_name, "method", self.method, _OUTLIER_METHODS)
        _choice(self.type_name, "action", self.action, _OUTLIER_ACTIONS)
        if not isinstance(self.factor, int | float) or not self.factor >= 0:
            raise ConfigError(
                f"outliers: factor must be a number >= 0, got {self.factor!r}.", key="factor", hint="Use factor: 1.5."
            )
        if not all(isinstance(q, int | float) for q in (self.lower, self.upper)) or not (
            0 <= self.lower < self.upper <= 1
        ):
            raise ConfigError(
                f"outliers: quantiles must satisfy 0 <= lower < upper <= 1, got {self.lower!r} and {self.upper!r}.",
                key="lower",
                hint="Use lower: 0.01 and upper: 0.99.",
            )

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> Outliers:
        self.check_params()
        self.require_columns(frame, self.columns)
        self.fences_: dict[str, list[float] | None] = {}
        for name in self.columns:
            _require_numeric(self.type_name, frame, name)
            values = frame.get_column(name).cast(pl.Float64)
            self.fences_[name] = self._fences(values.filter(values.is_finite()))
        return self

    def _fences(self, values: pl.Series) -> list[float] | None:
        if values.len() == 0:
            return None
        if self.method == "quantile":
            low, high = values.quantile(self.lower, "linear"), values.quantile(self.upper, "linear")
            return [float(low), float(high)]  # type: ignore[arg-type]
        q1, q3 = float(values.quantile(0.25, "linear")), float(values.quantile(0.75, "linear"))  # type: ignore[arg-type]
        reach = self.factor * (q3 - q1) if self.factor else 0.0  # (0 * an overflowed spread would be NaN)
        low, high = q1 - reach, q3 + reach
        return [max(low, -sys.float_info.max), min(high, sys.float_info.max)]  # finite, for the JSON state

    def _beyond(self, name: str) -> pl.Expr:
        low, high = self.fences_[name] or (None, None)
        value = pl.col(name).cast(pl.Float64)
        if low is None:
            return pl.lit(False)
        return value.is_not_nan() & ((value < low) | (value > high))

    def fit_transform(self, frame: pl.DataFrame, target: str | None = None) -> pl.DataFrame:
        if self.action == "clip":
            return super().fit_transform(frame, target)
        self.fit(frame, target)
        return frame.filter(~pl.any_horizontal(self._beyond(n).fill_null(False) for n in self.columns))

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.require_columns(frame, self.columns)
        for name in self.columns:
            _require_numeric(self.type_name, frame, name)
        beyond = frame.select(self._beyond(n).sum().alias(n) for n in self.columns).row(0, named=True)
        event = "clipped" if self.action == "clip" else "beyond the fences"
        for name in self.columns:
            self.count(f"{name}: {event}", int(beyond[name]))
        if self.action == "drop":
            return frame
        return frame.with_columns(self._clip(name).alias(name) for name in self.columns)

    def _clip(self, name: str) -> pl.Expr:
        value = pl.col(name).cast(pl.Float64)
        fences = self.fences_[name]
        return value if fences is None else value.clip(fences[0], fences[1])

    def transform_record(self, record: Record) -> Record:
        out = dict(record)
        for name in self.columns:
            value, fences = out.get(name), self.fences_[name]
            if value is None:
                continue
            number = _as_float(self.type_name, name, value)
            if fences is None:
                out[name] = number if self.action == "clip" else value
                continue
            low, high = fences
            if number < low or number > high:  # NaN is neither
                self.count(f"{name}: clipped" if self.action == "clip" else f"{name}: beyond the fences")
            if self.action == "clip":
                out[name] = low if number < low else high if number > high else number
        return out

    def lineage(self) -> dict[str, list[str]]:
        return {name: [name] for name in self.columns} if self.action == "clip" else {}
