"""Time transforms: date/time parts with cyclic encodings, and lags and rolling windows per key from the past only.

``datetime_parts`` reads a Date or Datetime column (a date is its midnight; a zoned datetime gives the parts of
its own zone). ``lag`` and ``rolling`` order the rows of each key by a time column and give each row values of
rows **strictly earlier** than its own time, so a feature never sees its row's present or future.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from loopline.core.errors import ConfigError, DataError, did_you_mean
from loopline.prep._keys import KINDS, check_keys, decode, encode, key_expr, key_value, value_kind
from loopline.prep._scaling import _choice
from loopline.prep._transform import Record, Transform

_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_MAX_DEPTH = 1000

# -- date and time parts ----------------------------------------------------------------------------

#: part -> (polars, Python, default period of the cyclic encoding)
PARTS: dict[str, tuple[Any, Any, float | None]] = {
    "year": (lambda e: e.dt.year(), lambda v: v.year, None),
    "quarter": (lambda e: e.dt.quarter(), lambda v: (v.month - 1) // 3 + 1, 4.0),
    "month": (lambda e: e.dt.month(), lambda v: v.month, 12.0),
    "week": (lambda e: e.dt.week(), lambda v: v.isocalendar().week, 53.0),
    "day": (lambda e: e.dt.day(), lambda v: v.day, 31.0),
    "weekday": (lambda e: e.dt.weekday(), lambda v: v.isoweekday(), 7.0),
    "dayofyear": (lambda e: e.dt.ordinal_day(), lambda v: v.timetuple().tm_yday, 366.0),
    "hour": (lambda e: e.dt.hour(), lambda v: v.hour, 24.0),
    "minute": (lambda e: e.dt.minute(), lambda v: v.minute, 60.0),
    "second": (lambda e: e.dt.second(), lambda v: v.second, 60.0),
}


def _date_time_kind(transform: str, frame: pl.DataFrame, name: str) -> str:
    """``"date"``, or the zone of a Datetime column (``""`` when naive); a DataError for anything else."""
    dtype = frame.schema[name]
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, pl.Datetime):
        return dtype.time_zone or ""
    raise DataError(
        f"{transform}: column {name!r} is {dtype}, not a date or a datetime.",
        column=name,
        hint=f"Parse it first: parse_dates: [{name}] on the source step.",
    )


def _in_zone(column: pl.Expr, kind: str, zone: str) -> pl.Expr:
    """A Date/Datetime column of ``kind`` as datetimes in ``zone`` ("": naive), as :func:`_as_datetime` reads a
    record: a date is its midnight, a naive datetime read in a zoned column is UTC, a zoned one in a naive
    column becomes naive UTC."""
    if kind == "date":
        column, kind = column.cast(pl.Datetime("us")), ""
    if not zone:
        return column if not kind else column.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    if not kind:
        column = column.dt.replace_time_zone("UTC")
    return column if kind == zone else column.dt.convert_time_zone(zone)


def _as_datetime(value: Any, zone: str) -> datetime | None:
    """A record's date/time value as the naive or zoned datetime the table path reads its parts from."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    else:
        raise DataError(
            f"expected a date or a datetime, got {type(value).__name__} {value!r}.",
            hint="Send an ISO-8601 text such as 2024-05-01T12:00:00Z.",
        )
    if zone:
        aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
        return aware.astimezone(ZoneInfo(zone))
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


class DatetimeParts(Transform):
    """Date and time parts of Date/Datetime columns as Int64 columns ``<column>_<part>``.

    ``parts`` picks among ``year``, ``quarter``, ``month``, ``week`` (ISO week), ``day``, ``weekday`` (ISO:
    Monday 1 ... Sunday 7), ``dayofyear``, ``hour``, ``minute``, ``second``. A date is read as its midnight; a
    zoned datetime gives the parts in its zone (a record's datetime in another zone, or ISO text, is converted
    to the training column's zone; a naive one is read as UTC there).

    ``cyclic`` adds ``<column>_<part>_sin`` and ``_cos`` (Float64): ``sin(2π · value / period)``, so that
    hour 23 sits next to hour 0. A list of parts uses the natural periods (quarter 4, month 12, week 53, day 31,
    weekday 7, dayofyear 366, hour 24, minute and second 60); a mapping gives them (``{hour: 24, year: 10}``).
    A cyclic part need not be in ``parts``. ``drop`` removes the source column. Nulls give nulls.

    Zoned datetimes after 2099 are not supported: polars' zone tables stop there (no daylight saving time
    after), Python's do not, so the two paths may differ by the DST hour.
    """

    type_name = "datetime_parts"

    def __init__(
        self,
        columns: list[str],
        parts: list[str] | None = None,
        cyclic: list[str] | dict[str, float] | None = None,
        drop: bool = False,
    ) -> None:
        self.columns = columns
        self.parts = parts
        self.cyclic = cyclic
        self.drop = drop

    def _parts(self) -> list[str]:
        return ["year", "month", "day", "weekday", "hour"] if self.parts is None else list(self.parts)

    def _cyclic(self) -> dict[str, float]:
        if not self.cyclic:
            return {}
        if isinstance(self.cyclic, dict):
            return {part: float(period) for part, period in self.cyclic.items()}
        return {part: float(PARTS[part][2] or 0.0) for part in self.cyclic}

    def check_params(self) -> None:
        _columns(self.type_name, self.columns)
        if not isinstance(self.cyclic, list | dict | None) or not isinstance(self.parts, list | None):
            raise ConfigError(
                "datetime_parts: parts is a list and cyclic a list or a mapping of part -> period.",
                key="cyclic",
                hint="Write parts: [month, weekday] and cyclic: [hour] or cyclic: {hour: 24}.",
            )
        for part in [*self._parts(), *(self.cyclic or [])]:
            if part not in PARTS:
                hint = did_you_mean(str(part), PARTS) or f"Parts: {', '.join(PARTS)}."
                raise ConfigError(f"datetime_parts: unknown part {part!r}.", key="parts", hint=hint)
        if not isinstance(self.cyclic, dict):
            for part in self.cyclic or []:
                if PARTS[part][2] is None:
                    raise ConfigError(
                        f"datetime_parts: {part} has no natural period for a cyclic encoding.",
                        key="cyclic",
                        hint=f"Give one: cyclic: {{{part}: 10}}.",
                    )
        for part, period in (self.cyclic or {}).items() if isinstance(self.cyclic, dict) else ():
            if isinstance(period, bool) or not isinstance(period, int | float) or not 0 < period < math.inf:
                raise ConfigError(
                    f"datetime_parts: the period of {part} must be a number > 0, got {period!r}.",
                    key="cyclic",
                    hint=f"Write cyclic: {{{part}: {PARTS[part][2] or 10}}}.",
                )
        if not isinstance(self.drop, bool):
            raise ConfigError(f"datetime_parts: drop must be true or false, got {self.drop!r}.", key="drop")

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> DatetimeParts:
        self.check_params()
        self.require_columns(frame, self.columns)
        self.zones_ = {name: _date_time_kind(self.type_name, frame, name) for name in self.columns}
        return self

    def _zone(self, name: str) -> str:
        """The zone the parts are read in: the training column's ("" for naive datetimes and dates)."""
        zone: str = self.zones_[name]
        return "" if zone == "date" else zone

    def _outputs(self, name: str) -> list[str]:
        cyclic = [f"{name}_{part}_{fn}" for part in self._cyclic() for fn in ("sin", "cos")]
        return [*(f"{name}_{part}" for part in self._parts()), *cyclic]

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.require_columns(frame, self.columns)
        exprs: list[pl.Expr] = []
        for name in self.columns:
            if frame.schema[name] == pl.Null:  # all null: no parts, whatever the type
                column = pl.col(name).cast(pl.Datetime("us"))
            else:
                column = _in_zone(pl.col(name), _date_time_kind(self.type_name, frame, name), self._zone(name))
            self.count(f"{name}: null time", frame.get_column(name).null_count())
            for part in self._parts():
                exprs.append(PARTS[part][0](column).cast(pl.Int64).alias(f"{name}_{part}"))
            for part, period in self._cyclic().items():
                angle = PARTS[part][0](column).cast(pl.Float64) * ((2.0 * math.pi) * (1.0 / period))
                exprs.extend([angle.sin().alias(f"{name}_{part}_sin"), angle.cos().alias(f"{name}_{part}_cos")])
        out = frame.with_columns(exprs)
        return out.drop(self.columns) if self.drop else out

    def transform_record(self, record: Record) -> Record:
        out = dict(record)
        for name in self.columns:
            value = _as_datetime(out.pop(name, None) if self.drop else out.get(name), self._zone(name))
            if value is None:
                self.count(f"{name}: null time")
            for part in self._parts():
                out[f"{name}_{part}"] = None if value is None else int(PARTS[part][1](value))
            for part, period in self._cyclic().items():
                angle = None if value is None else float(PARTS[part][1](value)) * ((2.0 * math.pi) * (1.0 / period))
                out[f"{name}_{part}_sin"] = None if angle is None else math.sin(angle)
                out[f"{name}_{part}_cos"] = None if angle is None else math.cos(angle)
        return out

    def lineage(self) -> dict[str, list[str]]:
        return {output: [name] for name in self.columns for output in self._outputs(name)}


def _columns(transform: str, columns: Any, key: str = "columns") -> None:
    if not isinstance(columns, list) or not columns or not all(isinstance(c, str) for c in columns):
        raise ConfigError(
            f"{transform}: {key} must be a non-empty list of column names, got {columns!r}.",
            key=key,
            hint=f"Write {key}: [a, b].",
        )


# -- lags and rolling windows -----------------------------------------------------------------------

_ROW, _KEY, _T, _POS, _START, _LAST = (f"__loopline_{n}" for n in ("row", "key", "t", "pos", "start", "last"))


class _Past(Transform):
    """Lags and rolling windows: per key (``by``), ordered by ``time``, values of strictly earlier rows.

    Training rows (:meth:`fit_transform`) look back over the training rows themselves. :meth:`fit` keeps, per
    key, the last ``depth`` rows (values and times) of the training rows — for at most ``max_keys`` keys, the
    most recently seen — and :meth:`transform` and :meth:`transform_record` look back over that history only,
    the rows of a batch never over each other: a table and its records agree, and a served record gets the
    features it would get in the table. Keys the history lacks give nulls, counted (``"unknown key"``).
    """

    columns: list[str]
    time: str
    by: list[str] | None
    max_keys: int

    def _depth(self) -> int:
        raise NotImplementedError

    def _outputs(self) -> list[tuple[str, str]]:
        """(output column, value column), in output order."""
        raise NotImplementedError

    def _numeric(self) -> bool:
        return False

    def _keys(self) -> list[str]:
        return list(self.by or [])

    def _check_common(self, sizes: Any, key: str) -> None:
        _columns(self.type_name, self.columns)
        if not isinstance(self.time, str) or not self.time:
            raise ConfigError(f"{self.type_name}: time must name the time column.", key="time", hint="Add time: ts.")
        if self.by is not None:
            _columns(self.type_name, self.by, "by")
        clash = {self.time, *self._keys()} & set(self.columns)
        if clash:
            raise ConfigError(
                f"{self.type_name}: {sorted(clash)[0]!r} orders or groups the rows; it cannot be a value column.",
                key="columns",
                hint="Remove it from columns.",
            )
        if not isinstance(sizes, list) or not sizes:
            raise ConfigError(f"{self.type_name}: {key} must be a non-empty list of row counts.", key=key)
        for size in sizes:
            if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= _MAX_DEPTH:
                raise ConfigError(
                    f"{self.type_name}: {key} must hold integers from 1 to {_MAX_DEPTH}, got {size!r}.",
                    key=key,
                    hint=f"Write {key}: [1, 7].",
                )
        if isinstance(self.max_keys, bool) or not isinstance(self.max_keys, int) or self.max_keys < 1:
            raise ConfigError(
                f"{self.type_name}: max_keys must be an integer >= 1, got {self.max_keys!r}.",
                key="max_keys",
                hint="Use max_keys: 10000 (the history in the bundle holds at most max_keys x depth rows).",
            )

    # -- the rows, keyed and timed -----------------------------------------------------------------

    def _prepared(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``_ROW``, ``_KEY``, ``_T`` (Int64 microseconds or days, Float64 numbers) and the value columns."""
        self.require_columns(frame, [*self.columns, self.time, *self._keys()])
        check_keys(self.type_name, frame, self._keys())
        untyped = frame.schema[self.time] == pl.Null  # all null: no past, whatever the type
        kind = self.time_kind_ if untyped else _time_kind(self.type_name, frame, self.time)
        if kind != self.time_kind_:
            raise DataError(
                f"{self.type_name}: time column {self.time!r} is {frame.schema[self.time]}; training had a "
                f"{self.time_kind_}.",
                column=self.time,
                hint="Give it the type it had in training.",
            )
        values = []
        for name in self.columns:
            if value_kind(self.type_name, frame, name, numeric=self._numeric()) == "str":
                values.append(pl.col(name).cast(pl.String))
            else:
                values.append(pl.col(name).cast(KINDS[self.kinds_[name]]))
        return frame.select(
            pl.int_range(pl.len(), dtype=pl.Int64).alias(_ROW),
            key_expr(frame, self._keys()).alias(_KEY),
            (_NULL_TIMES[kind] if untyped else _time_expr(self.time, kind)).alias(_T),
            *values,
        )

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> _Past:
        self.check_params()
        self.require_columns(frame, [*self.columns, self.time, *self._keys()])
        self.time_kind_ = _time_kind(self.type_name, frame, self.time)
        self.kinds_ = {n: value_kind(self.type_name, frame, n, numeric=self._numeric()) for n in self.columns}
        if self._numeric():
            self.kinds_ = dict.fromkeys(self.columns, "float")
        self.keys_dropped_ = 0
        self.history_: dict[str, Any] = {"keys": [], "times": [], "values": {n: [] for n in self.columns}}
        self._keep(self._prepared(frame))
        return self

    def refresh(self, frame: pl.DataFrame) -> _Past:
        """Add newer rows to the serving history (the latest readings) without fitting anything else.

        The history keeps, per key, the last ``depth`` rows of the old history and ``frame`` together. Save the
        bundle again to serve it.
        """
        self._keep(pl.concat([self._history(), self._prepared(frame).drop(_ROW)], how="diagonal_relaxed"))
        return self

    def _keep(self, rows: pl.DataFrame) -> None:
        """Set the history to the last ``depth`` rows per key of ``rows``, for the ``max_keys`` latest keys."""
        timed = rows.filter(pl.col(_T).is_not_null()).sort([_KEY, _T], maintain_order=True)
        latest = timed.group_by(_KEY).agg(pl.col(_T).last()).sort([_T, _KEY], descending=[True, False])
        self.keys_dropped_ = self.keys_dropped_ + max(0, latest.height - self.max_keys)
        kept = latest.head(self.max_keys).get_column(_KEY)
        tail = timed.filter(pl.col(_KEY).is_in(kept.implode())).group_by(_KEY, maintain_order=True).tail(self._depth())
        tail = tail.sort(_KEY, maintain_order=True)
        self.history_ = {
            "keys": tail.get_column(_KEY).to_list(),
            "times": tail.get_column(_T).to_list(),
            "values": {n: [encode(v) for v in tail.get_column(n).to_list()] for n in self.columns},
        }
        self.__dict__.pop("_cache", None)

    def _history(self) -> pl.DataFrame:
        """The history as a table: key, time, values, its position and the position where its key starts."""
        cache: dict[str, Any] = self.__dict__.setdefault("_cache", {})
        if "frame" not in cache:
            time_type = pl.Float64 if self.time_kind_ == "number" else pl.Int64
            values = self.history_["values"]
            table = pl.DataFrame(
                {
                    _KEY: pl.Series(self.history_["keys"], dtype=pl.String),
                    _T: pl.Series(self.history_["times"], dtype=time_type),
                    **{
                        n: pl.Series([decode(v, self.kinds_[n]) for v in values[n]], dtype=KINDS[self.kinds_[n]])
                        for n in self.columns
                    },
                }
            )
            position = pl.int_range(pl.len(), dtype=pl.Int64)
            cache["frame"] = table.with_columns(position.alias(_POS)).with_columns(
                pl.col(_POS).min().over(_KEY).alias(_START)
            )
        frame: pl.DataFrame = cache["frame"]
        return frame

    # -- the table path ------------------------------------------------------------------------------

    def fit_transform(self, frame: pl.DataFrame, target: str | None = None) -> pl.DataFrame:
        """Fit, and give each training row the values of the earlier training rows of its key."""
        self.fit(frame, target)
        timed = self._prepared(frame).filter(pl.col(_T).is_not_null()).sort([_KEY, _T], maintain_order=True)
        position = pl.int_range(pl.len(), dtype=pl.Int64)
        timed = timed.with_columns(position.alias(_POS)).with_columns(
            pl.col(_POS).min().over(_KEY).alias(_START), (pl.col(_POS).min().over(_KEY, _T) - 1).alias(_LAST)
        )
        self.__dict__.pop("_counts", None)
        return self._attach(frame, timed, timed)

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        rows = self._prepared(frame)
        history = self._history()
        timed = rows.filter(pl.col(_T).is_not_null())
        self.count("null time", rows.height - timed.height)
        self.count("unknown key", timed.filter(~pl.col(_KEY).is_in(history.get_column(_KEY).implode())).height)
        last = history.group_by(_KEY, _T).agg(pl.col(_POS).max(), pl.col(_START).first()).sort(_T)
        matched = timed.sort(_T).join_asof(
            last,
            on=_T,
            by=_KEY,
            strategy="backward",
            allow_exact_matches=False,
            check_sortedness=False,
        )
        return self._attach(frame, matched.rename({_POS: _LAST}), history)

    def _attach(self, frame: pl.DataFrame, rows: pl.DataFrame, source: pl.DataFrame) -> pl.DataFrame:
        """The outputs for ``rows`` (``_ROW``, ``_LAST``, ``_START``), read from ``source``, in frame order."""
        last, start = pl.col(_LAST), pl.col(_START)
        indexes = rows.select(pl.when(last - j >= start).then(last - j).alias(f"{j}") for j in range(self._depth()))
        offsets = {
            name: [source.get_column(name).gather(index) for index in indexes.get_columns()] for name in self.columns
        }
        computed = self._compute(offsets).with_columns(rows.get_column(_ROW))
        ordered = pl.DataFrame({_ROW: pl.int_range(frame.height, dtype=pl.Int64, eager=True)}).join(
            computed, on=_ROW, how="left", maintain_order="left"
        )
        return frame.with_columns(ordered.drop(_ROW).get_columns())

    def _compute(self, offsets: dict[str, list[pl.Series]]) -> pl.DataFrame:
        """The output columns from each value column's earlier values (offset 0: the latest)."""
        raise NotImplementedError

    # -- the record path -----------------------------------------------------------------------------

    def transform_record(self, record: Record) -> Record:
        out = dict(record)
        past = self._past(record)
        out.update(self._compute_record(past))
        return out

    def _past(self, record: Record) -> dict[str, list[Any]]:
        """Per value column, the history values before the record's time, oldest first (at most depth)."""
        moment = _time_value(record.get(self.time), self.time_kind_)
        if moment is None:
            self.count("null time")
            return {name: [] for name in self.columns}
        index = self._index()
        key = key_value(record, self._keys())
        if key not in index:
            self.count("unknown key")
            return {name: [] for name in self.columns}
        start, end = index[key]
        stop = bisect_left(self.history_["times"], moment, start, end)
        begin = max(start, stop - self._depth())
        values = self.history_["values"]
        return {n: [decode(v, self.kinds_[n]) for v in values[n][begin:stop]] for n in self.columns}

    def _index(self) -> dict[str, tuple[int, int]]:
        cache: dict[str, Any] = self.__dict__.setdefault("_cache", {})
        if "index" not in cache:
            index: dict[str, tuple[int, int]] = {}
            for position, key in enumerate(self.history_["keys"]):
                first = index.get(key, (position, position))[0]
                index[key] = (first, position + 1)
            cache["index"] = index
        result: dict[str, tuple[int, int]] = cache["index"]
        return result

    def _compute_record(self, past: dict[str, list[Any]]) -> Record:
        raise NotImplementedError

    def lineage(self) -> dict[str, list[str]]:
        return {output: [name, self.time, *self._keys()] for output, name in self._outputs()}


def _time_kind(transform: str, frame: pl.DataFrame, name: str) -> str:
    dtype = frame.schema[name]
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    if dtype == pl.Date:
        return "date"
    if dtype.is_numeric():
        return "number"
    raise DataError(
        f"{transform}: time column {name!r} is {dtype}; it must be a datetime, a date or a number.",
        column=name,
        hint=f"Parse it first: parse_dates: [{name}] on the source step.",
    )


_NULL_TIMES = {k: pl.lit(None, dtype=pl.Float64 if k == "number" else pl.Int64) for k in ("datetime", "date", "number")}


def _time_expr(name: str, kind: str) -> pl.Expr:
    if kind == "datetime":
        return pl.col(name).dt.epoch("us")
    if kind == "date":
        return pl.col(name).cast(pl.Int64)
    return pl.col(name).cast(pl.Float64)


def _time_value(value: Any, kind: str) -> int | float | None:
    """A record's time as :func:`_time_expr` computes it: microseconds (naive = UTC), days, or a float."""
    if value is None:
        return None
    if kind == "number":
        return float(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if kind == "date":
        day = value.date() if isinstance(value, datetime) else value
        return int((day - _EPOCH.date()).days)
    moment: datetime = value if isinstance(value, datetime) else datetime.combine(value, time())
    return (moment - (_EPOCH if moment.tzinfo is None else _EPOCH_UTC)) // _MICRO


class Lag(_Past):
    """``<column>_lag<k>``: the value ``k`` rows back among the rows of the same key (``by``) whose ``time`` is
    strictly earlier; null when there are fewer. Rows with the same time do not see each other.

    Lags keep the column's type (Int64, Float64, Boolean or String). Training rows look back over the training
    rows. **Serving** (and :meth:`transform` of new rows) looks back over the history kept at fit: per key, the
    last ``max(lags)`` training rows, for the ``max_keys`` most recently seen keys (``keys_dropped_`` says how
    many older keys were left out). A served record therefore gets the lags of the end of training, never of the
    other rows of its batch — the table and the record paths agree. Feed fresher history by refitting on recent
    rows, or with :meth:`refresh` (``transform.refresh(latest_rows)``, then save the bundle again); or compute
    the lags upstream and pass them as ordinary columns. A key the history lacks gives nulls (counted,
    ``"unknown key"``); so does a row with a null time (``"null time"``).
    """

    type_name = "lag"

    def __init__(
        self,
        columns: list[str],
        time: str,
        by: list[str] | None = None,
        lags: list[int] | None = None,
        max_keys: int = 10000,
    ) -> None:
        self.columns = columns
        self.time = time
        self.by = by
        self.lags = lags
        self.max_keys = max_keys

    def _lags(self) -> list[int]:
        return [1] if self.lags is None else list(self.lags)

    def check_params(self) -> None:
        self._check_common(self._lags(), "lags")

    def _depth(self) -> int:
        return max(self._lags())

    def _outputs(self) -> list[tuple[str, str]]:
        return [(f"{name}_lag{k}", name) for name in self.columns for k in self._lags()]

    def _compute(self, offsets: dict[str, list[pl.Series]]) -> pl.DataFrame:
        return pl.DataFrame(
            [offsets[name][k - 1].alias(f"{name}_lag{k}") for name in self.columns for k in self._lags()]
        )

    def _compute_record(self, past: dict[str, list[Any]]) -> Record:
        return {
            f"{name}_lag{k}": past[name][-k] if len(past[name]) >= k else None
            for name in self.columns
            for k in self._lags()
        }


_STATS = ("mean", "sum", "min", "max", "std")


class Rolling(_Past):
    """``<column>_<stat><w>``: a statistic of the last ``w`` rows of the same key (``by``) whose ``time`` is
    strictly earlier than the row's own, for each window in ``windows`` and each of ``stats`` (``mean``, ``sum``,
    ``min``, ``max``, ``std``, the sample standard deviation). Float64.

    Nulls and NaN in the window are skipped; a window with fewer than ``min_periods`` values gives null (``std``
    needs two). Sums run from the oldest value to the newest in both paths, so tables and records agree to the
    bit. Training rows look back over the training rows; **serving** (and :meth:`transform` of new rows) looks
    back over the history kept at fit — per key, the last ``max(windows)`` training rows, for the ``max_keys``
    most recently seen keys — exactly as :class:`Lag` does (see there: :meth:`refresh` feeds fresher rows).
    """

    type_name = "rolling"

    def __init__(
        self,
        columns: list[str],
        time: str,
        by: list[str] | None = None,
        windows: list[int] | None = None,
        stats: list[str] | None = None,
        min_periods: int = 1,
        max_keys: int = 10000,
    ) -> None:
        self.columns = columns
        self.time = time
        self.by = by
        self.windows = windows
        self.stats = stats
        self.min_periods = min_periods
        self.max_keys = max_keys

    def _windows(self) -> list[int]:
        return [3] if self.windows is None else list(self.windows)

    def _stats(self) -> list[str]:
        return ["mean"] if self.stats is None else list(self.stats)

    def _numeric(self) -> bool:
        return True

    def check_params(self) -> None:
        self._check_common(self._windows(), "windows")
        if not isinstance(self._stats(), list) or not self._stats():
            raise ConfigError("rolling: stats must be a non-empty list.", key="stats", hint="Write stats: [mean].")
        for stat in self._stats():
            _choice(self.type_name, "stat", stat, _STATS)
        low = self.min_periods
        if isinstance(low, bool) or not isinstance(low, int) or low < 1:
            raise ConfigError(
                f"rolling: min_periods must be an integer >= 1, got {low!r}.", key="min_periods", hint="Use 1."
            )

    def _depth(self) -> int:
        return max(self._windows())

    def _outputs(self) -> list[tuple[str, str]]:
        return [(f"{n}_{s}{w}", n) for n in self.columns for w in self._windows() for s in self._stats()]

    def _compute(self, offsets: dict[str, list[pl.Series]]) -> pl.DataFrame:
        columns: dict[str, pl.Series] = {}
        for name in self.columns:
            series = [s.fill_nan(None).alias(f"o{j}") for j, s in enumerate(offsets[name])]
            table = pl.DataFrame(series)
            for w in self._windows():
                stats = _window_stats(table, [f"o{j}" for j in reversed(range(w))], self.min_periods)  # oldest first
                columns.update({f"{name}_{s}{w}": stats.get_column(s).alias(f"{name}_{s}{w}") for s in self._stats()})
        return pl.DataFrame([columns[output] for output, _ in self._outputs()])

    def _compute_record(self, past: dict[str, list[Any]]) -> Record:
        out: Record = {}
        for name in self.columns:
            for w in self._windows():
                window = [v for v in past[name][-w:] if v is not None and not math.isnan(v)]
                stats = _stat_values(window, self.min_periods)
                out.update({f"{name}_{s}{w}": stats[s] for s in self._stats()})
        return {output: out[output] for output, _ in self._outputs()}


def _window_stats(table: pl.DataFrame, window: list[str], min_periods: int) -> pl.DataFrame:
    """The statistics of the ``window`` columns of ``table`` (oldest first, nulls skipped), in the operations
    and order of :func:`_stat_values`: one vectorised step per column of the window.

    Folds start from the first value, not from a literal 0.0 (which polars may simplify away, and which turns
    -0.0 into 0.0), and min/max keep the first of equal values: the bits match the record path.
    """
    total, low, high, n, squares = (pl.col(c) for c in ("sum", "min", "max", "n", "squares"))
    nothing = pl.lit(None, dtype=pl.Float64)
    work = table.with_columns(
        nothing.alias("sum"), nothing.alias("min"), nothing.alias("max"), pl.lit(0, dtype=pl.Int64).alias("n")
    )
    for name in window:
        value = pl.col(name)
        work = work.with_columns(
            _fold(total, value, total + value).alias("sum"),
            _fold(low, value, pl.when(value < low).then(value).otherwise(low)).alias("min"),
            _fold(high, value, pl.when(value > high).then(value).otherwise(high)).alias("max"),
            (n + value.is_not_null().cast(pl.Int64)).alias("n"),
        )
    work = work.with_columns((total / n.cast(pl.Float64)).alias("mean"), nothing.alias("squares"))
    for name in window:
        deviation = pl.col(name) - pl.col("mean")
        square = deviation * deviation
        work = work.with_columns(_fold(squares, square, squares + square).alias("squares"))
    enough = n >= min_periods
    return work.select(
        pl.when(enough).then(total).alias("sum"),
        pl.when(enough).then(pl.col("mean")).alias("mean"),
        pl.when(enough).then(low).alias("min"),
        pl.when(enough).then(high).alias("max"),
        pl.when(enough & (n >= 2)).then((squares / (n - 1).cast(pl.Float64)).sqrt()).alias("std"),
    )


def _fold(acc: pl.Expr, first: pl.Expr, step: pl.Expr) -> pl.Expr:
    """One step of a fold that skips nulls: ``first`` while nothing came yet, then ``step``."""
    return pl.when(first.is_null()).then(acc).when(acc.is_null()).then(first).otherwise(step)


def _stat_values(window: list[float], min_periods: int) -> dict[str, float | None]:
    """:func:`_window_stats` for one record, the same operations in the same order."""
    n = len(window)
    if n < min_periods or n == 0:
        return dict.fromkeys(_STATS)
    total, low, high = window[0], window[0], window[0]
    for value in window[1:]:
        total = total + value
        low = value if value < low else low
        high = value if value > high else high
    mean = total / float(n)
    squares = (window[0] - mean) * (window[0] - mean)
    for value in window[1:]:
        squares = squares + (value - mean) * (value - mean)
    std = math.sqrt(squares / float(n - 1)) if n >= 2 else None
    return {"sum": total, "mean": mean, "min": low, "max": high, "std": std}
