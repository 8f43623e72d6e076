"""Integration transforms: enrich rows from a small dimension table carried inside the fitted state."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from loopline.core.errors import ConfigError, DataError, did_you_mean
from loopline.prep._keys import KINDS, check_keys, decode, encode, key_expr, key_value, value_kind
from loopline.prep._transform import Record, Transform

_READERS: dict[str, Callable[[Path], pl.DataFrame]] = {
    ".csv": pl.read_csv,
    ".parquet": pl.read_parquet,
    ".pq": pl.read_parquet,
    ".jsonl": pl.read_ndjson,
    ".ndjson": pl.read_ndjson,
    ".json": pl.read_json,
}


class Lookup(Transform):
    """Left join of a small dimension table on the key columns ``on``: each row gains the table's ``columns``
    (all but the keys when not given), named ``<prefix><column>``.

    The table is given inline (``rows: [{store: 1, region: north}, ...]``) or as a file (``path``: CSV,
    Parquet, JSON Lines or JSON), read once at fit: the rows are **captured in the fitted state**, so the model
    bundle serves them without the file, and a table and its records get the same values. The table is
    bounded — more than ``max_rows`` rows is an error (join a big table with a ``join`` step before the split
    instead) — and its keys must be unique. Keys compare as text (see ``_keys``); a table row with a null key
    never matches. A row whose key the table lacks (or that has a null key part) gets nulls, counted
    (``"unmatched key"``). Taken columns are numbers, booleans or text.
    """

    type_name = "lookup"

    def __init__(
        self,
        on: list[str],
        rows: list[dict[str, Any]] | None = None,
        path: str | None = None,
        columns: list[str] | None = None,
        prefix: str = "",
        max_rows: int = 100_000,
    ) -> None:
        self.on = on
        self.rows = rows
        self.path = path
        self.columns = columns
        self.prefix = prefix
        self.max_rows = max_rows

    def check_params(self) -> None:
        for key, value, optional in (("on", self.on, False), ("columns", self.columns, True)):
            if optional and value is None:
                continue
            if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
                raise ConfigError(
                    f"lookup: {key} must be a non-empty list of column names, got {value!r}.",
                    key=key,
                    hint=f"Write {key}: [store_id].",
                )
        clash = sorted(set(self.columns or []) & set(self.on))
        if clash:
            raise ConfigError(
                f"lookup: {clash[0]!r} is a key (on); it cannot also be a column to take.",
                key="columns",
                hint=f"Remove {clash[0]!r} from columns.",
            )
        if (self.rows is None) == (self.path is None):
            raise ConfigError(
                "lookup: give the table either inline (rows) or as a file (path), not both or neither.",
                key="rows" if self.rows is None else "path",
                hint="Write rows: [{store_id: 1, region: north}] or path: stores.csv.",
            )
        if self.rows is not None and (
            not isinstance(self.rows, list) or not all(isinstance(r, dict) for r in self.rows)
        ):
            raise ConfigError("lookup: rows must be a list of mappings.", key="rows", hint="Write rows: [{k: 1}].")
        if self.path is not None and (not isinstance(self.path, str) or Path(self.path).suffix not in _READERS):
            raise ConfigError(
                f"lookup: path {self.path!r} is not a file loopline reads.",
                key="path",
                hint=f"Use a file ending in {', '.join(_READERS)}.",
            )
        if not isinstance(self.prefix, str):
            raise ConfigError(f"lookup: prefix must be text, got {self.prefix!r}.", key="prefix")
        if isinstance(self.max_rows, bool) or not isinstance(self.max_rows, int) or self.max_rows < 1:
            raise ConfigError(
                f"lookup: max_rows must be an integer >= 1, got {self.max_rows!r}.",
                key="max_rows",
                hint="Use max_rows: 100000.",
            )

    # -- fitting -----------------------------------------------------------------------------------

    def fit(self, frame: pl.DataFrame, target: str | None = None) -> Lookup:
        self.check_params()
        self.require_columns(frame, self.on)
        check_keys(self.type_name, frame, self.on)
        table = self._read()
        self._require_table_columns(table, [*self.on, *(self.columns or [])])
        check_keys(self.type_name, table, self.on)
        if table.height > self.max_rows:
            raise DataError(
                f"lookup: the table has {table.height} rows, more than max_rows {self.max_rows}; it travels inside "
                "the model bundle.",
                hint="Raise max_rows, or join the table with a join step before the split instead.",
            )
        taken = self.columns or [c for c in table.columns if c not in self.on]
        keyed = table.select(key_expr(table, self.on, nulls=False).alias("__key"), *taken).drop_nulls("__key")
        duplicated = keyed.filter(pl.col("__key").is_duplicated())
        if duplicated.height:
            raise DataError(
                f"lookup: the table has {duplicated.height} rows sharing a key, e.g. "
                f"{dict(zip(self.on, duplicated.row(0)[0].split(chr(31)), strict=False))}; keys must be unique.",
                hint=f"Keep one row per {', '.join(self.on)} in the table.",
            )
        self.kinds_: dict[str, str] = {}
        values: dict[str, list[Any]] = {}
        for name in taken:
            output = f"{self.prefix}{name}"
            if output in frame.columns and output not in self.on:
                raise DataError(
                    f"lookup: column {output!r} is already in the rows being enriched.",
                    column=output,
                    hint="Set prefix: 'dim_' (or leave the column out of columns).",
                )
            kind = value_kind(self.type_name, table, name)
            self.kinds_[output] = kind
            column = keyed.get_column(name).cast(KINDS[kind])
            values[output] = [encode(v) for v in column.to_list()]
        self.table_: dict[str, Any] = {"keys": keyed.get_column("__key").to_list(), "values": values}
        self.__dict__.pop("_cache", None)
        return self

    def _read(self) -> pl.DataFrame:
        if self.rows is not None:
            return pl.DataFrame(self.rows, infer_schema_length=None)
        path = Path(str(self.path)).expanduser()
        if not path.is_file():
            raise DataError(
                f"lookup: the table file {str(path)!r} does not exist.",
                file=str(path),
                hint="Give the path relative to the directory loopline runs in, or an absolute one.",
            )
        try:
            frame: pl.DataFrame = _READERS[path.suffix](path)
        except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
            raise DataError(f"lookup: cannot read {str(path)!r}: {exc}", file=str(path)) from None
        return frame

    def _require_table_columns(self, table: pl.DataFrame, columns: list[str]) -> None:
        for name in columns:
            if name not in table.columns:
                hint = did_you_mean(name, table.columns) or f"The table has: {', '.join(table.columns)}."
                raise DataError(f"lookup: the table has no column {name!r}.", column=name, hint=hint)

    # -- applying ----------------------------------------------------------------------------------

    def _lookup(self) -> dict[str, Any]:
        cache: dict[str, Any] = self.__dict__.setdefault("_cache", {})
        if not cache:
            keys = self.table_["keys"]
            cache["index"] = {key: i for i, key in enumerate(keys)}
            cache["values"] = {
                output: [decode(v, self.kinds_[output]) for v in values]
                for output, values in self.table_["values"].items()
            }
            cache["series"] = {
                output: pl.Series(values, dtype=KINDS[self.kinds_[output]])
                for output, values in cache["values"].items()
            }
        return cache

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        self.require_columns(frame, self.on)
        check_keys(self.type_name, frame, self.on)
        lookup, keys = self._lookup(), self.table_["keys"]
        key = key_expr(frame, self.on, nulls=False)
        self.count("unmatched key", int(frame.select((~key.is_in(keys).fill_null(False)).sum()).item()))
        return frame.with_columns(
            key.replace_strict(keys, series, default=pl.lit(None, dtype=series.dtype), return_dtype=series.dtype).alias(
                output
            )
            for output, series in lookup["series"].items()
        )

    def transform_record(self, record: Record) -> Record:
        out = dict(record)
        lookup = self._lookup()
        position = lookup["index"].get(key_value(record, self.on, nulls=False))
        if position is None:
            self.count("unmatched key")
        for output, values in lookup["values"].items():
            out[output] = None if position is None else values[position]
        return out

    def lineage(self) -> dict[str, list[str]]:
        outputs = (
            self.table_["values"] if hasattr(self, "table_") else [f"{self.prefix}{c}" for c in self.columns or []]
        )
        return {output: list(self.on) for output in outputs}
