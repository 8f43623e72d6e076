"""Feature engineering: derived columns from expressions (see ``_expr``), compiled for tables and records."""

from __future__ import annotations

from typing import Any

import polars as pl

from loopline.core.errors import ConfigError
from loopline.prep._expr import Compiled, compile_expression
from loopline.prep._transform import Record, Transform


class Derive(Transform):
    """New (or replaced) columns from expressions, evaluated in order: ``{ratio: amount / qty, ...}``.

    A later expression may use a column an earlier one made. The expression language is in ``_expr``: it
    cannot run code, and tables and records give the same values.
    """

    type_name = "derive"
    stateful = False

    def __init__(self, columns: dict[str, str]) -> None:
        self.columns = columns

    def check_params(self) -> None:
        if not self.columns:
            raise ConfigError("derive: no columns given.", key="columns", hint="Add columns: {name: expression}.")
        self._compiled()

    def _compiled(self) -> list[tuple[str, Compiled]]:
        cache: list[tuple[str, Compiled]] | None = self.__dict__.get("_cache")
        if cache is None:
            cache = [(name, compile_expression(text)) for name, text in self.columns.items()]
            self.__dict__["_cache"] = cache
        return cache

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        for name, compiled in self._compiled():
            self.require_columns(frame, compiled.columns)
            frame = frame.with_columns(compiled.polars.alias(name))
        return frame

    def transform_record(self, record: Record) -> Record:
        out: dict[str, Any] = dict(record)
        for name, compiled in self._compiled():
            out[name] = compiled.python(out)
        return out

    def lineage(self) -> dict[str, list[str]]:
        sources: dict[str, list[str]] = {}
        for name, compiled in self._compiled():
            inputs: list[str] = []
            for column in compiled.columns:
                inputs.extend(sources.get(column, [column]))
            sources[name] = list(dict.fromkeys(inputs))
        return sources
