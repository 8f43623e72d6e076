"""Types from raw values: ``cast`` (to int, float, str or bool) and ``parse_dates`` (to UTC datetimes).

Both define exactly what they accept — a grammar of regular expressions that Python's ``re`` and polars read the
same way, and value rules written twice, once as polars expressions and once as Python — rather than leaning on
polars' and Python's own parsers, which disagree at the edges (``int(" 1")`` is 1, polars' cast of ``" 1"`` is
null; ``float("1_0")`` is 10.0). So a table and a record always get the same value.

A value that cannot be converted follows the ``errors`` policy of its column: ``fail`` (the default) raises a
DataError naming the column, the row and the value; ``null`` turns it into null and counts it for monitoring
(``"<column>: unconvertible"`` for cast, ``"<column>: unparseable"`` for dates). There is no keep-as-is policy:
a column holds one type, so a value left unconverted would have nowhere to go. Nulls stay null, never failures.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl

from loopline.core.errors import ConfigError, DataError
from loopline.prep._scaling import _choice
from loopline.prep._transform import Record, Transform

_ERRORS = ("fail", "null")
_TYPES: dict[str, pl.DataType] = {"int": pl.Int64(), "float": pl.Float64(), "str": pl.String(), "bool": pl.Boolean()}
#: stripped off text before it is parsed (ASCII whitespace)
_BLANKS = " \t\n\r\x0b\x0c"
_INT = "[+-]?[0-9]+"
_FLOAT = (
    "[+-]?(?:(?:[0-9]+(?:[.][0-9]*)?|[.][0-9]+)(?:[eE][+-]?[0-9]+)?|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN])"
)
_BOOLS = {"true": True, "t": True, "yes": True, "y": True, "1": True}
_BOOLS |= {"false": False, "f": False, "no": False, "n": False, "0": False}
_INT64 = (-(2**63), 2**63)


def _check_errors(type_name: str, errors: Any, columns: list[str]) -> None:
    policies = errors.values() if isinstance(errors, dict) else [errors]
    for policy in policies:
        _choice(type_name, "errors", policy, _ERRORS)
    if isinstance(errors, dict):
        for name in errors:
            if name not in columns:
                raise ConfigError(
                    f"{type_name}: errors names {name!r}, which is not in columns.",
                    key="errors",
                    hint="Give a policy for the converted columns only.",
                )


class _Converter(Transform):
    """Shared policy handling: a conversion gives (value, failed) per column, in both paths."""

    stateful = False
    #: what a failed value is counted as, and what it could not be converted to
    event: str = "unconvertible"
    what: str
    errors: str | dict[str, str]

    def _policy(self, name: str) -> str:
        return self.errors.get(name, "fail") if isinstance(self.errors, dict) else self.errors

    def _apply(self, frame: pl.DataFrame, converted: Mapping[str, pl.Expr | pl.Series]) -> pl.DataFrame:
        """The converted columns, with the failures (a value that became null) raised or counted."""
        out = frame.with_columns(value.alias(name) for name, value in converted.items())
        for name in converted:
            failed = frame.get_column(name).is_not_null() & out.get_column(name).is_null()
            if not failed.any():
                continue
            if self._policy(name) == "fail":
                row = int(failed.arg_true()[0])
                raise self._failure(name, frame.get_column(name)[row], row)
            self.count(f"{name}: {self.event}", int(failed.sum()))
        return out

    def _failed_record(self, name: str, value: Any) -> None:
        if self._policy(name) == "fail":
            raise self._failure(name, value, None)
        self.count(f"{name}: {self.event}")

    def _failure(self, name: str, value: Any, row: int | None) -> DataError:
        where = f"column {name!r}" + (f", row {row}" if row is not None else "")
        return DataError(
            f"{self.type_name}: {where}: cannot convert {value!r} to {self._target(name)}.",
            column=name,
            row=row,
            hint=f"Fix the data, or set errors: null (or errors: {{{name}: null}}) to turn such values into "
            "nulls, counted for monitoring.",
        )

    def _target(self, name: str) -> str:
        return self.what


class Cast(_Converter):
    """Convert columns to ``int`` (Int64), ``float`` (Float64), ``str`` or ``bool``: ``columns: {age: int}``.

    What converts (anything else is unconvertible, see ``errors``):

    - text, after ASCII whitespace is stripped from both ends: integers ``[+-]digits`` (within Int64); floats
      in decimal or exponent form, ``inf``/``infinity``/``nan`` in any case; booleans ``true/false``,
      ``t/f``, ``yes/no``, ``y/n``, ``1/0`` in any case;
    - numbers: an int to float, a float to int when it is whole and within Int64, 0 and 1 to bool;
    - booleans: to 1/0, 1.0/0.0 and ``"true"``/``"false"``; integers to their decimal text.

    A float is never cast to text (Python and polars write floats differently): cast it to int first, or
    keep it a number. ``errors``: ``fail`` (default) or ``null``, for all columns or per column
    (``errors: {age: null}``; unnamed columns fail).
    """

    type_name = "cast"

    def __init__(self, columns: dict[str, str], errors: str | dict[str, str] = "fail") -> None:
        self.columns = columns
        self.errors = errors

    def check_params(self) -> None:
        if not isinstance(self.columns, dict) or not self.columns:
            raise ConfigError("cast: no columns given.", key="columns", hint="Add columns: {column: int}.")
        for name, kind in self.columns.items():
            if kind not in _TYPES:
                _choice(f"cast: column {name!r}", "type", kind, tuple(_TYPES))
        _check_errors(self.type_name, self.errors, list(self.columns))

    def _target(self, name: str) -> str:
        return self.columns[name]

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.require_columns(frame, self.columns)
        converted: dict[str, pl.Expr] = {}
        for name, kind in self.columns.items():
            value = _cast_expr(pl.col(name), frame.schema[name], kind)
            converted[name] = value
        return self._apply(frame, converted)

    def transform_record(self, record: Record) -> Record:
        out = dict(record)
        for name, kind in self.columns.items():
            value = out.get(name)
            if value is None:
                continue
            converted = _cast_value(value, kind)
            if converted is None:
                self._failed_record(name, value)
            out[name] = converted
        return out

    def lineage(self) -> dict[str, list[str]]:
        return {name: [name] for name in self.columns}


def _cast_expr(column: pl.Expr, dtype: pl.DataType, kind: str) -> pl.Expr:
    """The converted column; null where the value does not convert."""
    target = _TYPES[kind]
    nothing = pl.lit(None, dtype=target)
    if dtype == pl.Null or dtype == target:
        return column.cast(target)
    if dtype == pl.String:
        text = column.str.strip_chars(_BLANKS)
        if kind == "str":
            return column
        if kind == "bool":
            return text.str.to_lowercase().replace_strict(_BOOLS, default=None, return_dtype=pl.Boolean)
        pattern = f"^{_INT if kind == 'int' else _FLOAT}$"
        return pl.when(text.str.contains(pattern)).then(text.cast(target, strict=False)).otherwise(nothing)
    if dtype == pl.Boolean:
        return column.cast(target)  # 1/0, 1.0/0.0, "true"/"false"
    if dtype.is_integer():
        if kind == "bool":
            return pl.when(column == 1).then(True).when(column == 0).then(False).otherwise(pl.lit(None, pl.Boolean))
        return column.cast(target, strict=False)
    if dtype.is_float():
        number = column.cast(pl.Float64)
        if kind == "float":
            return number
        if kind == "bool":
            return pl.when(number == 1.0).then(True).when(number == 0.0).then(False).otherwise(pl.lit(None, pl.Boolean))
        if kind == "int":
            whole = number.is_finite() & (number == number.floor())
            inside = (number >= float(_INT64[0])) & (number < float(_INT64[1]))
            return pl.when(whole & inside).then(number.cast(pl.Int64)).otherwise(nothing)
    return nothing


def _cast_value(value: Any, kind: str) -> Any:
    """One value converted as :func:`_cast_expr` converts a column; None when it does not convert."""
    if isinstance(value, str):
        return _cast_text(value, kind)
    if isinstance(value, bool):
        return {"int": int(value), "float": float(value), "str": "true" if value else "false", "bool": value}[kind]
    if isinstance(value, int):
        if kind == "int":
            return value if _INT64[0] <= value < _INT64[1] else None
        if kind == "bool":
            return {1: True, 0: False}.get(value)
        return float(value) if kind == "float" else str(value)
    if isinstance(value, float):
        if kind == "float":
            return value
        if kind == "bool":
            return True if value == 1.0 else False if value == 0.0 else None
        if kind == "int" and math.isfinite(value) and value == math.floor(value) and _INT64[0] <= value < _INT64[1]:
            return int(value)
    return None


def _cast_text(value: str, kind: str) -> Any:
    if kind == "str":
        return value
    text = value.strip(_BLANKS)
    if kind == "bool":
        return _BOOLS.get(text.lower())  # no other character lowercases into these words, in Python or polars
    if kind == "int":
        if not re.fullmatch(_INT, text) or len(text.lstrip("+-").lstrip("0")) > 19:
            return None  # (the length test spares int() its limit on digits)
        number = int(text)
        return number if _INT64[0] <= number < _INT64[1] else None
    return float(text) if re.fullmatch(_FLOAT, text) else None


# -- dates -------------------------------------------------------------------------------------------------

_OFFSET = "(?:(?P<zz>[Zz])|(?P<zs>[+-])(?P<zh>[0-9]{2})(?::?(?P<zm>[0-9]{2}))?)"
_ISO = (
    "(?P<Y>[0-9]{4})-(?P<m>[0-9]{2})-(?P<d>[0-9]{2})"
    "(?:[Tt ](?P<H>[0-9]{2}):(?P<M>[0-9]{2})(?::(?P<S>[0-9]{2})(?:[.,](?P<f>[0-9]{1,9}))?)?" + _OFFSET + "?)?"
)
_MONTHS = ["january", "february", "march", "april", "may", "june"]
_MONTHS += ["july", "august", "september", "october", "november", "december"]
_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def _letters(word: str) -> str:
    """A case-insensitive ASCII word without (?i): Unicode case folding would also match "ſ" for "s"."""
    return "".join(f"[{c.upper()}{c}]" for c in word)


_DIRECTIVES = {
    "Y": "(?P<Y>[0-9]{4})",
    "y": "(?P<y>[0-9]{2})",
    "m": "(?P<m>[0-9]{1,2})",
    "d": "(?P<d>[0-9]{1,2})",
    "H": "(?P<H>[0-9]{1,2})",
    "I": "(?P<I>[0-9]{1,2})",
    "p": "(?P<p>[AaPp][Mm])",
    "M": "(?P<M>[0-9]{1,2})",
    "S": "(?P<S>[0-9]{1,2})",
    "f": "(?P<f>[0-9]{1,9})",
    "z": _OFFSET,
    "b": "(?P<b>" + "|".join(_letters(m[:3]) for m in _MONTHS) + ")",
    "B": "(?P<B>" + "|".join(_letters(m) for m in _MONTHS) + ")",
    "a": "(?:" + "|".join(_letters(d[:3]) for d in _DAYS) + ")",
    "A": "(?:" + "|".join(_letters(d) for d in _DAYS) + ")",
    "%": "%",
}
_MONTH_NUMBERS = {m: i for i, m in enumerate(_MONTHS, start=1)} | {m[:3]: i for i, m in enumerate(_MONTHS, start=1)}


def _format_pattern(fmt: str) -> str:
    """A strftime-style format as a regular expression with named groups (a ConfigError for what is unsupported)."""
    parts, seen, i = [], set(), 0
    while i < len(fmt):
        char = fmt[i]
        if char != "%":
            parts.append(char if char.isascii() and char.isalnum() else f"\\U{ord(char):08X}")
            i += 1
            continue
        code = fmt[i + 1 : i + 2]
        if code not in _DIRECTIVES:
            raise ConfigError(
                f"parse_dates: format {fmt!r}: directive %{code} is not supported.",
                key="format",
                hint=f"Use %{', %'.join(_DIRECTIVES)} (or leave format out for ISO 8601 text).",
            )
        if code in seen and code != "%":
            raise ConfigError(
                f"parse_dates: format {fmt!r} has %{code} twice.", key="format", hint="Give each part once."
            )
        seen.add(code)
        parts.append(_DIRECTIVES[code] if code != "%" else "%")
        i += 2
    if not seen & {"Y", "y"} or ("I" in seen) != ("p" in seen) or ("b" in seen and "B" in seen):
        raise ConfigError(
            f"parse_dates: format {fmt!r} does not say the date plainly.",
            key="format",
            hint="It needs a year (%Y or %y); %I goes with %p; give %b or %B, not both.",
        )
    if {"m", "b", "B"} & seen and len({"m", "b", "B"} & seen) > 1:
        raise ConfigError(f"parse_dates: format {fmt!r} gives the month twice.", key="format", hint="Keep one.")
    return "".join(parts)


class ParseDates(_Converter):
    """Parse text into UTC datetimes (``Datetime("us", "UTC")``).

    Without ``format``, ISO 8601 text: ``2024-03-10``, ``2024-03-10T17:45``, ``2024-03-10 17:45:30.25``, with an
    optional offset ``Z``, ``+02:00``, ``+0200`` or ``+02``. With ``format``, strftime directives ``%Y %y %m %d
    %H %I %p %M %S %f %z %b %B %a %A %%`` (numbers may have one digit or two; ``%y`` 69-99 is 1969-1999, 00-68
    is 2000-2068; missing parts default to January 1st, midnight). Text with an offset is converted to UTC; text
    without one is taken as UTC. ASCII whitespace around the text is ignored.

    Datetime columns are converted to UTC too (naive ones taken as UTC), and dates become midnight UTC. Text that
    does not parse — or names a day that does not exist — follows ``errors``: ``fail`` (default) or ``null``.
    """

    type_name = "parse_dates"
    event = "unparseable"
    what = "a datetime"

    def __init__(self, columns: list[str], format: str | None = None, errors: str | dict[str, str] = "fail") -> None:
        self.columns = columns
        self.format = format
        self.errors = errors

    def check_params(self) -> None:
        if not self.columns:
            raise ConfigError("parse_dates: no columns given.", key="columns", hint="Add columns: [signup].")
        _check_errors(self.type_name, self.errors, list(self.columns))
        self._pattern()

    def _pattern(self) -> re.Pattern[str]:
        pattern: re.Pattern[str] | None = self.__dict__.get("_cache")
        if pattern is None:
            pattern = re.compile(_ISO if self.format is None else _format_pattern(self.format))
            self.__dict__["_cache"] = pattern
        return pattern

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.require_columns(frame, self.columns)
        converted: dict[str, pl.Expr | pl.Series] = {}
        for name in self.columns:
            dtype = frame.schema[name]
            if dtype == pl.String:
                converted[name] = _parse_text(frame.get_column(name), self._pattern())
            else:
                converted[name] = _as_datetime(pl.col(name), dtype)
        return self._apply(frame, converted)

    def transform_record(self, record: Record) -> Record:
        out = dict(record)
        for name in self.columns:
            value = out.get(name)
            if value is None:
                continue
            converted = self._datetime_value(value)
            if converted is None:
                self._failed_record(name, value)
            out[name] = converted
        return out

    def _datetime_value(self, value: Any) -> datetime | None:
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        if not isinstance(value, str):
            return None
        match = self._pattern().fullmatch(value.strip(_BLANKS))
        return None if match is None else _components_to_value(match.groupdict())

    def lineage(self) -> dict[str, list[str]]:
        return {name: [name] for name in self.columns}


def _as_datetime(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A datetime or date column in UTC; null for any other type (text is parsed apart)."""
    if isinstance(dtype, pl.Datetime):
        at = column.dt.cast_time_unit("us")
        return at.dt.replace_time_zone("UTC") if dtype.time_zone is None else at.dt.convert_time_zone("UTC")
    if dtype == pl.Date:
        return column.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    return pl.lit(None, dtype=pl.Datetime("us", "UTC"))


def _parse_text(text: pl.Series, pattern: re.Pattern[str]) -> pl.Series:
    """The UTC datetimes that ``text`` names; null where it does not match or names no real instant.

    In stages, each over the columns the previous one made: the regular expression once, into its named groups;
    then the numbers; then the checks and the instant.
    """
    groups = (
        pl.DataFrame({"text": text})
        .select(pl.col("text").str.strip_chars(_BLANKS).str.extract_groups(f"^(?:{pattern.pattern})$"))
        .unnest("text")
    )
    parts = groups.select(**_numbers(set(pattern.groupindex)))
    year, month, day = pl.col("year"), pl.col("month"), pl.col("day")
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = pl.when(month == 2).then(28 + leap.cast(pl.Int64)).when(month.is_in([4, 6, 9, 11])).then(30)
    valid = (
        pl.col("matched")
        & (year >= 1)
        & month.is_between(1, 12)
        & day.is_between(1, month_days.otherwise(31))
        & pl.col("hour").is_between(0, 23)
        & (pl.col("minute") <= 59)
        & (pl.col("second") <= 59)
        & pl.col("offset_ok")
    )
    fields = ("year", "month", "day", "hour", "minute", "second", "micro")
    checked = parts.select(valid.alias("valid"), pl.col("offset"), *fields)
    local = pl.datetime(*(pl.when("valid").then(pl.col(f)) for f in fields), time_unit="us", time_zone="UTC")
    instants = checked.select((local - pl.duration(minutes=pl.col("offset"))).alias("utc"))
    utc = pl.col("utc")
    return instants.select(pl.when(utc.dt.year().is_between(1, 9999)).then(utc).alias(text.name)).to_series()


def _numbers(names: set[str]) -> dict[str, pl.Expr]:
    """The parts of :func:`_parse_text` as Int64 (defaults for those the pattern does not have) and ``matched``."""

    def part(name: str, default: int) -> pl.Expr:
        if name not in names:
            return pl.lit(default, dtype=pl.Int64)
        return pl.col(name).cast(pl.Int64).fill_null(default)  # an optional part left out

    short = part("y", 0)
    numbers = {
        "matched": pl.col("Y" if "Y" in names else "y").is_not_null(),
        "year": part("Y", 1900) if "Y" in names else pl.when(short < 69).then(short + 2000).otherwise(short + 1900),
        "month": part("m", 1),
        "day": part("d", 1),
        "hour": part("H", 0),
        "minute": part("M", 0),
        "second": part("S", 0),
        "micro": pl.lit(0, dtype=pl.Int64),
        "offset": pl.lit(0, dtype=pl.Int64),
        "offset_ok": pl.lit(True),
    }
    for name in ("b", "B"):
        if name in names:
            numbers["month"] = pl.col(name).str.to_lowercase().replace_strict(_MONTH_NUMBERS, return_dtype=pl.Int64)
    if "I" in names:
        twelve, pm = part("I", 12), pl.col("p").str.to_lowercase() == "pm"
        numbers["hour"] = pl.when(twelve.is_between(1, 12)).then(twelve % 12 + pm.cast(pl.Int64) * 12)
    if "f" in names:
        numbers["micro"] = pl.col("f").str.pad_end(6, "0").str.slice(0, 6).cast(pl.Int64).fill_null(0)
    if "zh" in names:
        hours, minutes = part("zh", 0), part("zm", 0)
        sign = pl.when(pl.col("zs") == "-").then(-1).otherwise(1)
        numbers["offset"] = sign * (hours * 60 + minutes)
        numbers["offset_ok"] = (hours <= 23) & (minutes <= 59)
    return numbers


def _components_to_value(groups: dict[str, str | None]) -> datetime | None:
    """:func:`_parse_text` for one match."""
    if groups.get("Y") is not None:
        year = int(groups["Y"])  # type: ignore[arg-type]
    else:
        short = int(groups["y"])  # type: ignore[arg-type]
        year = short + 2000 if short < 69 else short + 1900
    month = _int(groups, "m", 1)
    for name in ("b", "B"):
        if groups.get(name) is not None:
            month = _MONTH_NUMBERS[groups[name].lower()]  # type: ignore[union-attr]
    hour = _int(groups, "H", 0)
    if groups.get("I") is not None:
        twelve = int(groups["I"])  # type: ignore[arg-type]
        if not 1 <= twelve <= 12:
            return None
        hour = twelve % 12 + (12 if groups["p"].lower() == "pm" else 0)  # type: ignore[union-attr]
    fraction = groups.get("f")
    micro = int(fraction.ljust(6, "0")[:6]) if fraction is not None else 0
    offset = 0
    if groups.get("zh") is not None:
        hours, minutes = int(groups["zh"]), _int(groups, "zm", 0)  # type: ignore[arg-type]
        if hours > 23 or minutes > 59:
            return None
        offset = (hours * 60 + minutes) * (-1 if groups["zs"] == "-" else 1)
    try:
        local = datetime(year, month, _int(groups, "d", 1), hour, _int(groups, "M", 0), _int(groups, "S", 0), micro)
        return (local - timedelta(minutes=offset)).replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def _int(groups: dict[str, str | None], name: str, default: int) -> int:
    value = groups.get(name)
    return default if value is None else int(value)
