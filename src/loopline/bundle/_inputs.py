"""The input policy: the one rule every path that feeds a model applies to the values it is given.

The service's requests (plain JSON, the Open Inference Protocol, MLflow's JSON and CSV) go through
:func:`conform_records`; batch scoring (files and dataset versions) through :func:`plan_columns` and
:func:`conform_table`. Both read the model's input schema: one entry per input column, recorded at training
(``name``; ``dtype``: number, string, boolean or datetime; ``nullable``; ``train_dtype``: the training column's
type, e.g. ``Int64``; ``max_length``: optional). The rules, per field:

- **Types.** A value of the training column's type, or one that converts to it without loss, is accepted and
  converted; anything else is refused, naming the field, the record (or row) and the fix.

  ========================  ===============================================================================
  trained as                accepted
  ========================  ===============================================================================
  integers (``Int64``...)   integers in the type's range; whole floats (``3.0``); numeric text (``"3"``,
                            ``"3.0"``). Not ``2.5``, not ``true``.
  floats (``Float64``...)   finite numbers; numeric text (``"2.5"``, ``"1e3"``). Not ``true``, not ``"nan"``.
  text (``String``...)      text; integers, written in decimal (``7`` is ``"7"``). Not ``1.5``, not ``true``.
  booleans                  ``true``/``false``; ``0`` and ``1``; the text ``"true"``/``"false"`` (any case),
                            ``"1"``/``"0"``.
  date-times                ISO-8601 text (``2024-03-10T17:45:00Z``); date-time columns of a table.
  ========================  ===============================================================================

  Numeric text is plain decimal notation: digits, an optional sign, point and exponent; no spaces, no
  ``nan``/``inf``. A model stored before the training type was recorded converts by ``dtype`` (number: the
  float rule; string: the text rule). In a table (batch scoring), NaN in a float column is a missing value, as
  it was in training; a JSON request sends ``null`` (the ``NaN``/``Infinity`` literals are refused).
- **Extra fields** (the label, an id, anything the model does not read) are ignored: dropped before the model
  and the prediction log, and counted (``loopline_input_extra_fields_total`` in the service's metrics,
  ``ignored_columns`` in a batch report).
- **Missing fields** are null when the field is ``nullable`` (the model's preprocessing imputes it) and
  :attr:`InputPolicy.missing_as_null` is on (the default), and counted (``loopline_input_missing_fields_total``,
  ``missing_columns``); otherwise refused. A missing field is always refused when the record (or file) holds a
  field of a close name, which is taken for a typo (``grup`` for ``group``).
- **Text length**: at most the field's ``max_length`` characters, or :attr:`InputPolicy.max_string_length`
  (1024) for a field without one; longer text is refused (and never reaches the prediction log).
- **Null** is accepted where the field is nullable.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from loopline.core.dtypes import polars_dtype
from loopline.core.errors import ConfigError, DataError, SchemaValidationError, did_you_mean

DEFAULT_MAX_STRING_LENGTH = 1024
"""Characters a text value may hold when its field names no ``max_length``."""
MAX_FIELD_ERRORS = 20
"""Field errors reported for one request (the first ones, in record order)."""

_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INT_BOUNDS = {
    "Int8": (-(2**7), 2**7 - 1),
    "Int16": (-(2**15), 2**15 - 1),
    "Int32": (-(2**31), 2**31 - 1),
    "Int64": (-(2**63), 2**63 - 1),
    "UInt8": (0, 2**8 - 1),
    "UInt16": (0, 2**16 - 1),
    "UInt32": (0, 2**32 - 1),
    "UInt64": (0, 2**64 - 1),
}
_MAX_INT_DIGITS = 4000  # Python's int() refuses text beyond 4300 digits; no integer type holds 40
_EXACT_FLOAT = 2**53  # whole floats above this may not be the integer that was meant
_BOOL_TEXT = {"true": True, "false": False, "1": True, "0": False}
_MISSING = object()


@dataclass(frozen=True)
class InputPolicy:
    """The settings of the input policy (see the module docstring); the defaults are every path's defaults.

    ``max_string_length``: characters a text value may hold when its field has no ``max_length`` of its own.
    ``missing_as_null``: a missing nullable field is null (True), or refused (False).
    """

    max_string_length: int = DEFAULT_MAX_STRING_LENGTH
    missing_as_null: bool = True

    def check(self) -> None:
        """ConfigError for a setting no policy can work with."""
        if self.max_string_length < 1:
            raise ConfigError(
                f"max_string_length is {self.max_string_length}; it must be at least 1.",
                key="max_string_length",
                hint=f"Use e.g. {DEFAULT_MAX_STRING_LENGTH}.",
            )


@dataclass(frozen=True)
class FieldRule:
    """What one input field accepts: its ``kind`` (integer, float, string, boolean, datetime or any)."""

    name: str
    kind: str
    nullable: bool
    max_length: int
    train_dtype: str | None

    @property
    def expected(self) -> str:
        """The values the field takes, in words (for messages)."""
        trained = f" (the model was trained on {self.train_dtype})" if self.train_dtype else ""
        words = {
            "integer": "a whole number",
            "float": "a number",
            "string": "text",
            "boolean": "true or false",
            "datetime": "an ISO-8601 date-time",
            "any": "a single value",
        }
        return f"{words[self.kind]}{trained}"


@dataclass(frozen=True)
class ConformedRecords:
    """Records ready for the model (the schema's fields only, converted), and what was ignored or filled."""

    records: list[dict[str, Any]]
    extra_fields: int = 0
    """Fields ignored, counted once per record that held them."""
    missing_fields: dict[str, int] = field(default_factory=dict)
    """Field -> records that lacked it (taken as null)."""


@dataclass(frozen=True)
class ColumnPlan:
    """How a table's columns meet the schema: those to read, the missing ones (null) and the ignored ones."""

    read: list[str]
    missing: list[str]
    ignored: list[str]


# -- the schema ------------------------------------------------------------------------------------


def field_rules(schema: Sequence[Mapping[str, Any]], policy: InputPolicy | None = None) -> list[FieldRule]:
    """One rule per entry of an input schema, in its order."""
    policy = policy or InputPolicy()
    return [
        FieldRule(
            name=str(entry["name"]),
            kind=_kind(entry),
            nullable=bool(entry.get("nullable", True)),
            max_length=int(entry.get("max_length") or policy.max_string_length),
            train_dtype=str(entry["train_dtype"]) if entry.get("train_dtype") else None,
        )
        for entry in schema
    ]


def with_training_types(
    schema: Sequence[Mapping[str, Any]], dtypes: Mapping[str, str], max_lengths: Mapping[str, int] | None = None
) -> list[dict[str, Any]]:
    """``schema`` with each field's training type (``train_dtype``) and ``max_length`` (where one is given).

    ConfigError when ``max_lengths`` names a field the schema lacks or a length below 1.
    """
    max_lengths = dict(max_lengths or {})
    names = [str(entry["name"]) for entry in schema]
    for name, length in max_lengths.items():
        if name not in names:
            hint = did_you_mean(name, names) or f"The model's input fields: {', '.join(names)}."
            raise ConfigError(f"max_lengths names {name!r}, which is not an input field.", key="max_lengths", hint=hint)
        if not isinstance(length, int) or isinstance(length, bool) or length < 1:
            raise ConfigError(
                f"max_lengths[{name!r}] is {length!r}; it must be a whole number of characters, at least 1.",
                key="max_lengths",
                hint="Use e.g. 256.",
            )
    out = []
    for entry in schema:
        name = str(entry["name"])
        extra: dict[str, Any] = {"train_dtype": dtypes[name]} if name in dtypes else {}
        if name in max_lengths:
            extra["max_length"] = max_lengths[name]
        out.append({**entry, **extra})
    return out


def _kind(entry: Mapping[str, Any]) -> str:
    trained = entry.get("train_dtype")
    if trained:
        text = str(trained)
        if text.startswith(("Int", "UInt")):
            return "integer"
        if text.startswith(("Float", "Decimal")):
            return "float"
        if text == "Boolean":
            return "boolean"
        if text.startswith(("Datetime", "Date")):
            return "datetime"
        if text in ("String", "Utf8", "Categorical") or text.startswith(("Categorical", "Enum")):
            return "string"
        return "any"
    return {"number": "float", "string": "string", "boolean": "boolean", "datetime": "datetime"}.get(
        str(entry.get("dtype")), "any"
    )


# -- records (the service) -------------------------------------------------------------------------


def conform_records(
    records: Sequence[Mapping[str, Any]], rules: Sequence[FieldRule], policy: InputPolicy | None = None
) -> ConformedRecords:
    """The records converted by the policy; SchemaValidationError listing the first bad fields.

    Each error is ``{"field", "record", "reason"}``; the reason ends with the fix. ``records`` are mappings
    (the shape of a request is its protocol's to check).
    """
    policy = policy or InputPolicy()
    out: list[dict[str, Any]] = []
    errors: list[dict[str, object]] = []
    extra = 0
    missing: dict[str, int] = {}
    names = {rule.name for rule in rules}
    for index, record in enumerate(records):
        unknown = [key for key in record if key not in names]
        extra += len(unknown)
        row: dict[str, Any] = {}
        for rule in rules:
            value = record.get(rule.name, _MISSING)
            if value is _MISSING:
                reason = _missing_problem(rule, unknown, policy)
                if reason is None:
                    missing[rule.name] = missing.get(rule.name, 0) + 1
                    row[rule.name] = None
                else:
                    errors.append({"field": rule.name, "reason": reason, "record": index})
                continue
            converted, reason = convert_value(value, rule)
            if reason is not None:
                errors.append({"field": rule.name, "reason": reason, "record": index})
            row[rule.name] = converted
        out.append(row)
        if len(errors) >= MAX_FIELD_ERRORS:
            break
    if errors:
        raise SchemaValidationError(errors[:MAX_FIELD_ERRORS])
    return ConformedRecords(out, extra, missing)


def _missing_problem(rule: FieldRule, present: Iterable[str], policy: InputPolicy) -> str | None:
    typo = did_you_mean(rule.name, present)
    if typo:
        return f"missing field; the record has a field of a close name. {typo} Name it {rule.name!r}."
    if not rule.nullable:
        return f"missing field; the model needs it (it cannot impute it). Send {rule.expected}."
    if not policy.missing_as_null:
        return "missing field; send null for a missing value."
    return None


def convert_value(value: Any, rule: FieldRule) -> tuple[Any, str | None]:
    """``(value as the model takes it, None)``, or ``(value, reason it is refused)``."""
    if value is None:
        return None, None if rule.nullable else f"null is not allowed; send {rule.expected}."
    if isinstance(value, str) and len(value) > rule.max_length:
        return None, (
            f"text of {len(value)} characters; the limit is {rule.max_length} characters. Send at most "
            f"{rule.max_length}, or raise the field's max_length (or the max_string_length setting)."
        )
    if isinstance(value, float) and not math.isfinite(value):
        return value, f"expected a finite number, got {value}; send null for a missing value."
    if isinstance(value, list | dict | tuple):
        return value, f"expected {rule.expected}, got {_describe(value)}; send one value per field and record."
    converted = _CONVERTERS[rule.kind](value, rule)
    if converted is _REFUSED:
        return value, f"expected {rule.expected}, got {_describe(value)}; {_FIXES[rule.kind]}"
    return converted, None


_REFUSED = object()


def _to_integer(value: Any, rule: FieldRule) -> Any:
    if isinstance(value, str):
        value = _number_text(value, integer=True)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) <= _EXACT_FLOAT:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return _REFUSED
    low, high = _INT_BOUNDS.get(rule.train_dtype or "Int64", _INT_BOUNDS["Int64"])
    return value if low <= value <= high else _REFUSED


def _to_float(value: Any, rule: FieldRule) -> Any:
    if isinstance(value, str):
        value = _number_text(value, integer=False)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _REFUSED
    try:
        number = float(value)
    except OverflowError:
        return _REFUSED
    return number if math.isfinite(number) else _REFUSED


def _to_string(value: Any, rule: FieldRule) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _REFUSED


def _to_boolean(value: Any, rule: FieldRule) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _BOOL_TEXT.get(value.lower(), _REFUSED)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return _REFUSED


def _to_datetime(value: Any, rule: FieldRule) -> Any:
    if not isinstance(value, str):
        return _REFUSED
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return _REFUSED
    return value


def _to_any(value: Any, rule: FieldRule) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return _REFUSED
    return value if isinstance(value, str | int | float | bool) else _REFUSED


_CONVERTERS = {
    "integer": _to_integer,
    "float": _to_float,
    "string": _to_string,
    "boolean": _to_boolean,
    "datetime": _to_datetime,
    "any": _to_any,
}
_FIXES = {
    "integer": "send an integer such as 3 (or the text '3').",
    "float": "send a finite number such as 2.5 (or the text '2.5'); null for a missing value.",
    "string": "send the value as text, e.g. '1.5'.",
    "boolean": "send true or false.",
    "datetime": "send ISO-8601 text, e.g. 2024-03-10T17:45:00Z.",
    "any": "send a string, a number or a boolean.",
}


def _number_text(text: str, *, integer: bool) -> Any:
    """The number plain decimal ``text`` spells (an int where it is one), else ``text`` unchanged."""
    if _INTEGER.fullmatch(text) and len(text) <= _MAX_INT_DIGITS:
        return int(text)
    if _DECIMAL.fullmatch(text):
        return float(text)
    return text


def _describe(value: Any) -> str:
    if isinstance(value, str):
        shown = value if len(value) <= 40 else f"{value[:40]}…"
        return f"the text {shown!r}"
    names = {dict: "an object", list: "an array", tuple: "an array", bool: "a boolean"}
    kind = names.get(type(value))
    if kind is not None:
        return kind
    return repr(value) if isinstance(value, int | float) else type(value).__name__


# -- tables (batch scoring) ------------------------------------------------------------------------


def plan_columns(
    rules: Sequence[FieldRule], present: Sequence[str], policy: InputPolicy | None = None, *, label: str = "input"
) -> ColumnPlan:
    """Which of a table's columns the model reads; DataError naming a missing column the policy refuses."""
    policy = policy or InputPolicy()
    names = [rule.name for rule in rules]
    ignored = [c for c in present if c not in names]
    missing = []
    for rule in rules:
        if rule.name in present:
            continue
        if _missing_problem(rule, ignored, policy) is not None:
            typo = did_you_mean(rule.name, ignored)
            raise DataError(
                f"the input has no column {rule.name!r}, which the model needs.",
                file=label,
                column=rule.name,
                hint=f"{typo} Rename it to {rule.name!r} in the input."
                if typo
                else f"The model reads: {', '.join(names)}; add the column (empty where a value is missing).",
            )
        missing.append(rule.name)
    return ColumnPlan([n for n in names if n in present], missing, ignored)


def conform_table(frame: pl.DataFrame, rules: Sequence[FieldRule], *, first_row: int = 0) -> pl.DataFrame:
    """``frame`` with the model's columns converted by the policy (missing ones added as nulls).

    Other columns are kept as they are. DataError names the first bad row (``first_row`` is the frame's first
    row in the whole input, counted from 0), the column and the fix.
    """
    columns = []
    for rule in rules:
        if rule.name not in frame.columns:
            columns.append(pl.Series(rule.name, [None] * frame.height, dtype=_polars_type(rule)))
            continue
        series = frame.get_column(rule.name)
        _check_lengths(series, rule, first_row)
        converted, bad = _convert_column(series, rule)
        if bad is not None and bad.any():
            at = int(bad.arg_true()[0])
            count = int(bad.sum())
            raise DataError(
                f"row {first_row + at + 1}, column {rule.name!r}: expected {rule.expected}, got "
                f"{_describe(series[at])} ({count} such row{'s' if count > 1 else ''} in rows {first_row + 1}–"
                f"{first_row + frame.height}).",
                column=rule.name,
                row=first_row + at + 1,
                hint=f"Fix those values: {_FIXES[rule.kind]}",
            )
        columns.append(converted.alias(rule.name))
    return frame.with_columns(columns) if columns else frame


def _check_lengths(series: pl.Series, rule: FieldRule, first_row: int) -> None:
    if series.dtype != pl.String:
        return
    long = series.str.len_chars() > rule.max_length
    if long.any():
        at = int(long.arg_true()[0])
        raise DataError(
            f"row {first_row + at + 1}, column {rule.name!r}: text of {len(series[at])} characters; the limit is "
            f"{rule.max_length} characters.",
            column=rule.name,
            row=first_row + at + 1,
            hint="Shorten the value, or raise the field's max_length (or --max-string-length).",
        )


def _polars_type(rule: FieldRule) -> Any:
    if rule.train_dtype:
        return polars_dtype(rule.train_dtype)
    return {"float": pl.Float64, "boolean": pl.Boolean, "integer": pl.Int64}.get(rule.kind, pl.String)


def _convert_column(series: pl.Series, rule: FieldRule) -> tuple[pl.Series, pl.Series | None]:
    """The column in the training type, and a mask of the values refused (None: none can be)."""
    dtype, target = series.dtype, _polars_type(rule)
    if dtype == pl.Null:
        return series.cast(target), None
    if rule.kind in ("integer", "float"):
        return _numeric_column(series, rule, target)
    if rule.kind == "string":
        if dtype == pl.String:
            return series, None
        if isinstance(dtype, pl.Categorical | pl.Enum) or dtype.is_integer():
            return series.cast(pl.String), None
        return series, series.is_not_null()
    if rule.kind == "boolean":
        return _boolean_column(series)
    if rule.kind == "datetime":
        return _datetime_column(series, target)
    return series, None


def _numeric_column(series: pl.Series, rule: FieldRule, target: Any) -> tuple[pl.Series, pl.Series | None]:
    if series.dtype == pl.String:
        bad = series.is_not_null() & ~series.str.contains(f"^{_DECIMAL.pattern}$").fill_null(False)
        if bad.any():
            return series, bad
        if rule.kind == "integer":
            return _whole_column(series, rule, target)
        numbers = series.cast(pl.Float64, strict=False)
        return numbers.cast(target), numbers.is_not_null() & ~numbers.is_finite()
    if not series.dtype.is_numeric():
        return series, series.is_not_null()
    if rule.kind == "float":
        return series.cast(target), None  # NaN and inf in a float column are missing values, as in training
    return _whole_column(series, rule, target)


def _whole_column(series: pl.Series, rule: FieldRule, target: Any) -> tuple[pl.Series, pl.Series | None]:
    """Integers (or numeric text) as ``target``: whole values within its range only."""
    if series.dtype == pl.String:
        ints = series.str.to_integer(strict=False)  # null for decimal text ("3.0") and beyond Int64
        floats = series.cast(pl.Float64, strict=False)
    elif series.dtype.is_float():
        ints, floats = pl.Series(series.name, [None] * len(series), dtype=pl.Int64), series.fill_nan(None)
    else:
        ints, floats = series, None
    if floats is not None:
        rest = floats.is_not_null() & ints.is_null()
        whole = (floats == floats.floor()) & (floats.abs() <= _EXACT_FLOAT)
        bad = rest & ~whole.fill_null(False)
        if bad.any():
            return series, bad
        ints = ints.zip_with(ints.is_not_null(), floats.cast(pl.Int64, strict=False))
    low, high = _INT_BOUNDS.get(rule.train_dtype or "Int64", _INT_BOUNDS["Int64"])
    inside = ints <= high if ints.dtype.is_unsigned_integer() else (ints >= low) & (ints <= high)
    bad = ints.is_not_null() & ~inside.fill_null(False)
    return (series, bad) if bad.any() else (ints.cast(target), None)


def _boolean_column(series: pl.Series) -> tuple[pl.Series, pl.Series | None]:
    dtype = series.dtype
    if dtype == pl.Boolean:
        return series, None
    if dtype == pl.String:
        mapped = series.str.to_lowercase().replace_strict(_BOOL_TEXT, default=None, return_dtype=pl.Boolean)
    elif dtype.is_integer():
        mapped = series.replace_strict({0: False, 1: True}, default=None, return_dtype=pl.Boolean)
    else:
        return series, series.is_not_null()
    return mapped, series.is_not_null() & mapped.is_null()


def _datetime_column(series: pl.Series, target: Any) -> tuple[pl.Series, pl.Series | None]:
    dtype = series.dtype
    if dtype == pl.String:
        if target == pl.Date:
            parsed = series.str.to_date(strict=False)
        elif isinstance(target, pl.Datetime):
            parsed = series.str.to_datetime(time_unit=target.time_unit, time_zone=target.time_zone, strict=False)
        else:
            parsed = series.str.to_datetime(strict=False)
        return parsed, series.is_not_null() & parsed.is_null()
    if isinstance(dtype, pl.Datetime | pl.Date):
        return (series.cast(target) if target != dtype else series), None
    return series, series.is_not_null()
