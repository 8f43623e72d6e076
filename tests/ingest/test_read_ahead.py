"""ReadAhead: items in order, producer errors reach the consumer, closing stops the producer."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from loopline.ingest._read_ahead import ReadAhead


def test_items_arrive_in_order() -> None:
    assert list(ReadAhead(iter(range(100)), depth=3)) == list(range(100))


def test_an_error_in_the_producer_is_raised_in_the_consumer_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("broken block")

    seen = []
    with pytest.raises(ValueError, match="broken block"):
        for item in ReadAhead(items()):
            seen.append(item)
    assert seen == [1, 2]


def test_closing_early_stops_the_producer_and_closes_its_iterator() -> None:
    produced = []
    closed = threading.Event()

    def items() -> Iterator[int]:
        try:
            for i in range(1_000_000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    with ReadAhead(items(), depth=1) as ahead:
        assert next(ahead) == 0
    assert closed.wait(5)
    assert len(produced) <= 3  # at most the consumed item, the queued one and the one being put
    assert not any(t.name == "loopline-read-ahead" and t.is_alive() for t in threading.enumerate())


def test_an_error_closing_the_producer_reaches_the_consumer_instead_of_a_hang() -> None:
    class Items(Iterator[int]):
        def __init__(self) -> None:
            self.left = [1, 2]

        def __next__(self) -> int:
            if not self.left:
                raise StopIteration
            return self.left.pop(0)

        def close(self) -> None:
            raise OSError("closing the remote file failed")

    seen = []
    with pytest.raises(OSError, match="closing the remote file failed"):
        for item in ReadAhead(Items()):
            seen.append(item)
    assert seen == [1, 2]
