"""The conformance checks plugin authors run: every built-in step type passes; broken components are caught."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest

from loopline.core import STEP_TYPES, StepConfig, StepType
from loopline.ingest import Batch, Limits, Reject, Source, SourceConfig
from loopline.testing import check_broker_source, check_step_type


@pytest.mark.parametrize("name", ["file", "sample", "join", "asof_join", "union", "derive", "split", "train", "select"])
def test_built_in_step_types_conform(name: str) -> None:
    check_step_type(STEP_TYPES.get(name))


def test_a_broken_step_type_is_caught() -> None:
    class Loose(StepConfig):
        model_config = {"extra": "ignore", "frozen": True}

    class Broken(StepType):
        type_name = "broken"
        Config = Loose

    with pytest.raises(AssertionError, match="unknown config keys must be refused"):
        check_step_type(Broken())

    class NoOutputs(StepType):
        type_name = "no_outputs"
        outputs = ()

    with pytest.raises(AssertionError, match="at least one output"):
        check_step_type(NoOutputs())


class MemoryQueue:
    """Messages and the acknowledged ones: the state a broker keeps for one durable consumer."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.acked: set[int] = set()

    def produce(self, records: list[dict[str, Any]]) -> None:
        self.payloads += [json.dumps(r).encode() for r in records]

    def produce_raw(self, payload: bytes) -> None:
        self.payloads.append(payload)


class MemorySource(Source):
    """A broker-like source over a MemoryQueue, with one rule broken on request (``flaw``)."""

    type_name = "memory"

    def __init__(self, queue: MemoryQueue, flaw: str | None = None) -> None:
        super().__init__(SourceConfig())
        self.queue = queue
        self.flaw = flaw

    def batches(self, position: Any, *, follow: bool = False, limits: Limits = Limits()) -> Iterator[Batch]:
        waiting = [i for i in range(len(self.queue.payloads)) if i not in self.queue.acked]
        size = limits.max_rows + (self.flaw == "oversized")
        for start in range(0, len(waiting), size):
            yield self._batch(waiting[start : start + size])
        while self.flaw == "endless":
            yield self._batch([])

    def ack(self, batch: Batch) -> None:
        if self.flaw != "ack ignored":
            self.queue.acked.update(batch.ack_token)

    def _batch(self, offsets: list[int]) -> Batch:
        good, rejects = [], []
        for offset in offsets:
            try:
                good.append((offset, json.loads(self.queue.payloads[offset])))
            except ValueError as exc:
                raw = self.queue.payloads[offset].decode()
                rejects.append(Reject(f"invalid JSON: {exc}", {"offset": offset}, raw))
        if self.flaw == "auto-ack":
            self.queue.acked.update(offsets)
        return Batch(
            rows=pl.DataFrame([row for _, row in good], schema={"id": pl.Int64, "s": pl.String}),
            position={"offset": max(offsets, default=-1)},
            ids=None if self.flaw == "no ids" else [str(offset) for offset, _ in good],
            rejects=[] if self.flaw == "rejects dropped" else rejects,
            ack_token=offsets,
        )


def check_memory_source(flaw: str | None) -> None:
    queue = MemoryQueue()
    check_broker_source(
        lambda: MemorySource(queue, flaw),
        queue.produce,
        queue.produce_raw,
        key="id",
        rows=lambda start, n: [{"id": i, "s": f"r{i}"} for i in range(start, start + n)],
        read_timeout_s=0.5,
    )


def test_a_broker_source_keeping_the_contract_passes() -> None:
    check_memory_source(None)


@pytest.mark.parametrize(
    ("flaw", "broken_rule"),
    [
        ("auto-ack", "not acknowledged must be redelivered"),
        ("ack ignored", "an acknowledged message must never come back"),
        ("rejects dropped", "an invalid payload must travel in Batch.rejects"),
        ("oversized", "batches must respect limits.max_rows"),
        ("no ids", "Batch.ids must hold one id per row"),
        ("endless", "a read without follow must end"),
    ],
)
def test_a_broken_broker_source_is_caught(flaw: str, broken_rule: str) -> None:
    with pytest.raises(AssertionError, match=broken_rule):
        check_memory_source(flaw)
