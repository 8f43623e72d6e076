"""JSON message payloads -> typed polars rows, shared by the broker sources (mqtt, nats, redis).

A batch of payloads is parsed at once: the raw bytes are joined as NDJSON and read by polars with the
configured schema (no ``json.loads`` per message). Only when that fails is the batch bisected to find the
bad messages (``O(bad * log n)`` parses), each of which becomes a :class:`Reject` carrying the reason, the
message's position (topic/subject/stream + offset/sequence/id) and the raw payload; the others are kept.

Column types (the ``schema`` config, column -> type):

- ``int`` (Int64), ``float`` (Float64), ``bool`` (Boolean): JSON numbers / booleans of that kind; a string
  ``"1"``, a float ``1.5`` for an int column or ``1`` for a bool column is a wrong type -> reject.
- ``string``: any JSON scalar is accepted as its text (``1`` -> ``"1"``), objects/arrays as their JSON text.
- ``timestamp``: an ISO-8601 string (``2024-01-01T00:00:00Z``, ``...+02:00``, ``2024-01-01 00:00:00.5``;
  no offset means UTC) or a number of seconds since the epoch; stored as ``Datetime("us", "UTC")``.

A missing key or ``null`` is a null value; keys not in the schema are ignored. A payload that is empty,
larger than ``max_payload_bytes``, not UTF-8, not one JSON object, or has a wrong-typed value is rejected.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import polars as pl
from pydantic import ConfigDict, Field

from loopline.core.errors import ConfigError
from loopline.ingest._source import Reject, SourceConfig

ColumnType = Literal["int", "float", "string", "bool", "timestamp"]

POLARS_TYPES: dict[str, pl.DataType] = {
    "int": pl.Int64(),
    "float": pl.Float64(),
    "string": pl.String(),
    "bool": pl.Boolean(),
    "timestamp": pl.Datetime("us", "UTC"),
}
_READ_TYPES: dict[str, pl.DataType] = {**POLARS_TYPES, "timestamp": pl.String()}
_JSON_KINDS: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "string": (str, int, float, bool, dict, list),
    "timestamp": (str, int, float),
}
MAX_RAW_CHARS = 65_536


def frame_schema(schema: Mapping[str, str]) -> pl.Schema:
    """The polars schema of the rows a broker source yields."""
    return pl.Schema({name: POLARS_TYPES[kind] for name, kind in schema.items()})


def raw_text(payload: bytes) -> str:
    """The payload as text for the dead-letter set (invalid UTF-8 escaped, huge payloads truncated)."""
    text = payload[:MAX_RAW_CHARS].decode("utf-8", "backslashreplace")
    return text if len(payload) <= MAX_RAW_CHARS else f"{text}...[{len(payload)} bytes]"


class PayloadParser:
    """Parses batches of JSON payloads with one schema; stateless apart from its config."""

    def __init__(self, schema: Mapping[str, str], *, max_payload_bytes: int, source: str) -> None:
        self.schema = dict(schema)
        self.max_payload_bytes = max_payload_bytes
        self.source = source
        self._read_schema = pl.Schema({name: _READ_TYPES[kind] for name, kind in self.schema.items()})
        self._timestamps = [name for name, kind in self.schema.items() if kind == "timestamp"]

    def empty(self) -> pl.DataFrame:
        """A frame with no rows and the configured column types."""
        return pl.DataFrame(schema=frame_schema(self.schema))

    def parse(
        self, payloads: Sequence[bytes], positions: Sequence[Any]
    ) -> tuple[pl.DataFrame, list[int], list[Reject]]:
        """Typed rows of the good payloads, their indices into ``payloads``, and a reject per bad one."""
        rejects: dict[int, str] = {}
        lines: list[bytes] = []
        candidates: list[int] = []
        for i, payload in enumerate(payloads):
            line = self._precheck(payload, i, rejects)
            if line is not None:
                lines.append(line)
                candidates.append(i)
        frames: list[pl.DataFrame] = []
        kept: list[int] = []
        self._parse_range(lines, candidates, frames, kept, rejects)
        rows = pl.concat(frames, how="vertical") if frames else self._empty_read()
        rows, kept = self._convert_timestamps(rows, kept, payloads, rejects)
        out = [Reject(reason=rejects[i], position=positions[i], raw=raw_text(payloads[i])) for i in sorted(rejects)]
        return rows, kept, out

    def _precheck(self, payload: bytes, index: int, rejects: dict[int, str]) -> bytes | None:
        if len(payload) > self.max_payload_bytes:
            rejects[index] = f"payload of {len(payload)} bytes exceeds max_payload_bytes={self.max_payload_bytes}"
            return None
        if not payload.strip():
            rejects[index] = "empty payload"
            return None
        if b"\n" in payload or b"\r" in payload:
            # NDJSON needs one line per message: re-encode multi-line (pretty-printed) JSON compactly.
            try:
                return json.dumps(json.loads(payload), separators=(",", ":")).encode()
            except (ValueError, UnicodeDecodeError) as exc:
                rejects[index] = f"invalid JSON: {exc}"
                return None
        return payload

    def _empty_read(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self._read_schema)

    def _read(self, lines: Sequence[bytes]) -> pl.DataFrame:
        return pl.read_ndjson(io.BytesIO(b"\n".join(lines)), schema=self._read_schema)

    def _parse_range(
        self,
        lines: list[bytes],
        indices: list[int],
        frames: list[pl.DataFrame],
        kept: list[int],
        rejects: dict[int, str],
    ) -> None:
        """Parse ``lines`` at once; on failure bisect, so only bad messages pay for one-by-one parsing."""
        if not lines:
            return
        try:
            frame = self._read(lines)
            if frame.height != len(lines):
                raise ValueError(f"{frame.height} rows from {len(lines)} payloads")
        except Exception as exc:  # polars raises ComputeError and friends for any bad line
            if len(lines) == 1:
                rejects[indices[0]] = self._diagnose(lines[0], exc)
                return
            half = len(lines) // 2
            self._parse_range(lines[:half], indices[:half], frames, kept, rejects)
            self._parse_range(lines[half:], indices[half:], frames, kept, rejects)
            return
        frames.append(frame)
        kept.extend(indices)

    def _diagnose(self, line: bytes, exc: Exception) -> str:
        """A reason naming the offending column (slow path: bad messages only)."""
        try:
            value = json.loads(line)
        except (ValueError, UnicodeDecodeError) as err:
            return f"invalid JSON: {err}"
        if not isinstance(value, dict):
            return f"payload is a JSON {type(value).__name__}, not an object"
        for name, kind in self.schema.items():
            item = value.get(name)
            if item is None:
                continue
            ok = isinstance(item, _JSON_KINDS[kind]) and not (kind in ("int", "float") and isinstance(item, bool))
            if not ok:
                return f"column {name!r}: expected {kind}, got {type(item).__name__} {json.dumps(item)[:80]}"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"cannot read payload as {self.schema}: {first}"

    def _convert_timestamps(
        self, rows: pl.DataFrame, kept: list[int], payloads: Sequence[bytes], rejects: dict[int, str]
    ) -> tuple[pl.DataFrame, list[int]]:
        if not self._timestamps or rows.height == 0:
            return rows.cast(frame_schema(self.schema)), kept
        converted = rows.with_columns(_parse_timestamp(pl.col(name)).alias(name) for name in self._timestamps)
        bad_mask = pl.Series("bad", [False] * rows.height)
        for name in self._timestamps:
            bad_mask = bad_mask | (rows[name].is_not_null() & converted[name].is_null())
        if not bad_mask.any():
            return converted, kept
        for position in bad_mask.arg_true().to_list():
            cols = [n for n in self._timestamps if rows[n][position] is not None and converted[n][position] is None]
            rejects[kept[position]] = f"column {cols[0]!r}: cannot parse {rows[cols[0]][position]!r} as timestamp"
        keep_mask = ~bad_mask
        kept = [index for index, keep in zip(kept, keep_mask.to_list(), strict=True) if keep]
        return converted.filter(keep_mask), kept


def _parse_timestamp(text: pl.Expr) -> pl.Expr:
    """ISO-8601 with or without offset (no offset = UTC) or epoch seconds -> Datetime(us, UTC)."""
    iso = text.str.replace(" ", "T", literal=True, n=1)
    with_offset = iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", strict=False, time_unit="us", time_zone="UTC")
    naive = iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us").dt.replace_time_zone("UTC")
    date_only = iso.str.to_datetime("%Y-%m-%d", strict=False, time_unit="us").dt.replace_time_zone("UTC")
    epoch = (text.cast(pl.Float64, strict=False) * 1_000_000).round().cast(pl.Int64, strict=False)
    from_epoch = pl.from_epoch(epoch, time_unit="us").dt.replace_time_zone("UTC")
    return pl.coalesce(with_offset, naive, date_only, from_epoch)


class BrokerConfig(SourceConfig):
    """Keys every broker source shares."""

    schema_: dict[str, ColumnType] = Field(alias="schema", min_length=1)
    max_payload_bytes: int = Field(default=1_048_576, gt=0)
    max_deliveries: int = Field(default=5, ge=1)
    reconnect_timeout_s: float = Field(default=60.0, gt=0)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def parser(self, source: str) -> PayloadParser:
        """The payload parser for this config."""
        return PayloadParser(self.schema_, max_payload_bytes=self.max_payload_bytes, source=source)


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def env_secret(name: str | None, key: str) -> str | None:
    """The secret in environment variable ``name`` (None when no name is configured)."""
    if name is None:
        return None
    value = os.environ.get(name)
    if value is None:
        raise ConfigError(
            f"environment variable {name!r} (from {key!r}) is not set.", key=key, hint=f"export {name}=..."
        )
    return value


def dedup_ids(rows: pl.DataFrame, kept: list[int], ids: list[str]) -> tuple[pl.DataFrame, list[int], list[str]]:
    """Keep the first row of each id (a redelivery can repeat a message inside one batch)."""
    if len(set(ids)) == len(ids):
        return rows, kept, ids
    first = pl.Series(ids).is_first_distinct()
    flags = first.to_list()
    return (
        rows.filter(first),
        [k for k, f in zip(kept, flags, strict=True) if f],
        [i for i, f in zip(ids, flags, strict=True) if f],
    )
