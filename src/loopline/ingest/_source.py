"""The source contract: every kind of source (files, databases, brokers) behind three methods.

    class MySource(Source):
        type_name = "my"
        Config = MyConfig                      # a SourceConfig (pydantic, extra keys forbidden)
        def batches(self, position, *, follow, limits):   # -> Iterator[Batch]
            ...
        def ack(self, batch):                  # optional: brokers acknowledge here
            ...

Guarantees the ingestion engine relies on (and ``loopline.testing.check_source`` checks):

- ``batches(position)`` yields the rows *after* ``position`` (None: from the beginning), in batches
  of at most ``limits.max_rows`` rows or ``limits.max_seconds`` of waiting, each carrying the position
  *after* it. Restarting from a batch's position yields exactly the rows that came after it.
- A batch's position is JSON-able and is committed in the same transaction as the batch's rows;
  only then does the engine call ``ack(batch)``. A source must therefore tolerate redelivery of
  unacknowledged messages; ``Batch.ids`` lets the engine drop what it already holds.
- Rows that cannot be parsed are not dropped: they travel in ``Batch.rejects`` with a reason, their
  position and the raw payload, and end in the dead-letter dataset.
- Without ``follow`` the iterator ends when the source is exhausted; with it, it waits for new data
  (yielding empty batches at most every ``limits.max_seconds`` so the engine can commit and stop).
- Credentials come from the environment (``password_env`` style keys), never from the config itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import polars as pl
from pydantic import BaseModel, ConfigDict

from loopline.core.errors import SourceUnavailableError
from loopline.core.registry import Registry


class SourceConfig(BaseModel):
    """Base of source configs: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Limits:
    """When a batch closes: at ``max_rows`` rows or after ``max_seconds`` (streams)."""

    max_rows: int = 100_000
    max_seconds: float = 1.0


@dataclass(frozen=True)
class Reject:
    """A row or message that could not be turned into a typed row."""

    reason: str
    position: Any
    raw: str


@dataclass
class Batch:
    """Typed rows, the position after them, and what could not be parsed."""

    rows: pl.DataFrame
    position: Any
    ids: list[str] | None = None
    rejects: list[Reject] = field(default_factory=list)
    ack_token: Any = None
    bytes_read: int = 0
    #: where the rows came from (a file, a topic), for dead letters; the position when unset
    origin: Any = None
    #: the batch is exactly this Parquet file: ``rows`` is then empty but typed, ``file_rows`` counts its rows,
    #: and the engine may keep the file's bytes as the dataset part when its schema matches the contract
    parquet_file: Any = None
    file_rows: int = 0


class Source:
    """Base class of sources; constructors store their config, ``batches`` does the work."""

    type_name: ClassVar[str]
    Config: ClassVar[type[SourceConfig]] = SourceConfig
    #: a stream (a broker): data keeps arriving, so ``loopline sources`` keeps it ingesting by default
    streaming: ClassVar[bool] = False

    def __init__(self, config: SourceConfig) -> None:
        self.config = config

    def batches(self, position: Any, *, follow: bool = False, limits: Limits = Limits()) -> Iterator[Batch]:
        """Yield batches after ``position`` (see the module docstring for the guarantees)."""
        raise NotImplementedError

    def ack(self, batch: Batch) -> None:
        """Acknowledge a committed batch to the source (brokers); nothing by default."""

    def backlog(self) -> int | None:
        """Messages the broker still holds for this consumer: not yet delivered, or delivered and not yet
        acknowledged. None where the source cannot tell cheaply (files, databases, MQTT). Called between batches,
        from the thread that iterates ``batches``, at most every few seconds."""
        return None

    def is_transient(self, error: BaseException) -> bool:
        """Whether reconnecting may cure ``error`` (the engine then retries from the checkpoint).

        By default: OS-level errors (refused or reset connections, timeouts) and driver errors whose
        class names say connection, timeout or operational. Sources override it for their drivers.
        """
        if isinstance(error, OSError | TimeoutError | SourceUnavailableError):
            return True
        names = " ".join(cls.__name__.lower() for cls in type(error).__mro__)
        return any(word in names for word in ("connection", "timeout", "operational", "unavailable"))

    def close(self) -> None:
        """Release connections; idempotent."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


SOURCES: Registry[type[Source]] = Registry(
    "source",
    "loopline.sources",
)
