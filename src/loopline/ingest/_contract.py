"""Schema contracts: the first ingest fixes a dataset's schema; later batches are checked against it.

Policies, per source:

- ``fail``: any difference (missing, extra or retyped column) stops the ingest with a DataError that
  lists every offending column with the expected and found type; nothing of the batch is committed.
- ``coerce``: columns are matched by name (order never matters), cast to the contract's type, missing
  columns are added as nulls and extra columns are dropped (both reported); a value that cannot be cast
  stops the ingest with a DataError naming the column, the row and the value.
- ``quarantine``: as ``coerce``, but rows holding a value that cannot be cast go to the dead-letter
  dataset with the reason and the row as JSON; the rest of the batch is committed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from loopline.core.dtypes import polars_dtype
from loopline.core.errors import ConfigError, DataError
from loopline.ingest._source import Reject

Policy = Literal["fail", "coerce", "quarantine"]
POLICIES: tuple[str, ...] = ("fail", "coerce", "quarantine")


@dataclass
class ContractResult:
    """The conforming rows, the rows sent to dead letters, and what was changed on the way."""

    rows: pl.DataFrame
    rejects: list[Reject] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    cast: list[str] = field(default_factory=list)


def infer_schema(frame: pl.DataFrame) -> dict[str, str]:
    """A contract from a frame: column -> polars dtype as text (all-null columns stay open as String)."""
    return {name: str(dtype) if dtype != pl.Null else "String" for name, dtype in frame.schema.items()}


def apply_contract(
    frame: pl.DataFrame, schema: dict[str, str], policy: str, *, source: str, position: Any = None
) -> ContractResult:
    """Check ``frame`` against ``schema`` under ``policy`` (see the module docstring)."""
    if policy not in POLICIES:
        raise ConfigError(f"unknown schema policy {policy!r}.", key="policy", hint=f"Use one of {', '.join(POLICIES)}.")
    found = {name: str(dtype) for name, dtype in frame.schema.items()}
    missing = [c for c in schema if c not in found]
    extra = [c for c in found if c not in schema]
    retyped = [c for c in schema if c in found and found[c] != schema[c] and found[c] != "Null"]
    if policy == "fail" and (missing or extra or retyped):
        raise DataError(
            f"source {source!r} does not match its dataset's schema: "
            + _describe(schema, found, missing, extra, retyped),
            hint="Fix the source, or set the source's policy to 'coerce' or 'quarantine'.",
        )
    result = ContractResult(frame, added=missing, dropped=extra, cast=retyped)
    if not (missing or extra or retyped or "Null" in found.values()):  # conforms: nothing to cast or check
        result.rows = frame.select(list(schema)) if list(found) != list(schema) else frame
        return result
    aligned = frame.with_columns([pl.lit(None).alias(c) for c in missing]).select(list(schema))
    casts = [pl.col(c).cast(polars_dtype(schema[c]), strict=False) for c in schema]
    converted = aligned.with_columns(casts)
    mask = pl.Series("bad", [False] * aligned.height)
    for name in schema:
        mask = mask | (aligned[name].is_not_null() & converted[name].is_null())
    if not mask.any():
        result.rows = converted
        return result
    column = next(c for c in schema if (aligned[c].is_not_null() & converted[c].is_null()).any())
    first = aligned.filter(aligned[column].is_not_null() & converted[column].is_null()).row(0, named=True)
    if policy == "coerce":
        raise DataError(
            f"source {source!r}: column {column!r} has value {first[column]!r}, which is not {schema[column]} "
            f"({int(mask.sum())} row(s) cannot be converted).",
            column=column,
            hint="Fix those values, or set the source's policy to 'quarantine' to send such rows to dead letters.",
        )
    result.rows = converted.filter(~mask)
    result.rejects = [
        Reject(reason=_reason(row, converted_row, schema), position=position, raw=json.dumps(row, default=str))
        for row, converted_row in zip(
            aligned.filter(mask).iter_rows(named=True), converted.filter(mask).iter_rows(named=True), strict=True
        )
    ]
    return result


def _reason(row: dict[str, Any], converted: dict[str, Any], schema: dict[str, str]) -> str:
    bad = [c for c in schema if row[c] is not None and converted[c] is None]
    return "; ".join(f"column {c!r}: {row[c]!r} is not {schema[c]}" for c in bad)


def _describe(
    schema: dict[str, str], found: dict[str, str], missing: list[str], extra: list[str], retyped: list[str]
) -> str:
    parts = [f"missing column {c!r} (expected {schema[c]})" for c in missing]
    parts += [f"unexpected column {c!r} ({found[c]})" for c in extra]
    parts += [f"column {c!r} is {found[c]}, expected {schema[c]}" for c in retyped]
    return "; ".join(parts) + "."
