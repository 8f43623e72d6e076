"""Errors in a client library's thread, raised in the main flow: guards, waits, futures, the watchdog."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pytest

from loopline import DataError
from loopline.ingest._client_threads import ThreadFaults


def test_a_guarded_callback_records_its_error_and_the_wait_raises_it_at_once() -> None:
    faults = ThreadFaults("lib", tick=3600)  # at once: before its first tick, not an hour later

    def on_message(payload: bytes) -> None:
        raise ValueError(f"cannot handle {payload!r}")

    thread = threading.Thread(target=faults.guard("on_message", on_message), args=(b"x",))
    thread.start()
    thread.join()  # the thread ended normally: the error did not escape into it
    raised: list[BaseException] = []

    def waiter() -> None:
        try:
            faults.wait(threading.Event(), None)  # would wait forever without the fault
        except DataError as exc:
            raised.append(exc)

    waiting = threading.Thread(target=waiter, daemon=True)
    waiting.start()
    waiting.join(timeout=30)  # a hang detector far below the tick: the wait raises on its first look
    assert not waiting.is_alive(), "the wait did not see the recorded fault"
    with pytest.raises(DataError, match=r"lib: on_message raised ValueError: cannot handle b'x'") as info:
        raise raised[0]
    assert isinstance(info.value.__cause__, ValueError)


def test_the_first_error_wins_and_check_keeps_raising_it() -> None:
    faults = ThreadFaults("lib")
    faults.check()
    faults.fail("first", hint="Fix one.")
    faults.fail("second", hint="Fix two.")
    for _ in range(2):
        with pytest.raises(DataError, match="lib: first Fix one."):
            faults.check()


def test_an_async_callback_is_guarded_too() -> None:
    faults = ThreadFaults("lib")

    async def error_cb(error: Exception) -> None:
        raise RuntimeError("callback broke")

    asyncio.run(faults.guard("error_cb", error_cb)(ValueError("x")))
    with pytest.raises(DataError, match="error_cb raised RuntimeError: callback broke"):
        faults.check()


def test_a_wait_or_a_future_whose_thread_died_raises_instead_of_waiting_forever() -> None:
    faults = ThreadFaults("lib", tick=0.05)
    thread = threading.Thread(target=lambda: None, name="lib-network")
    thread.start()
    thread.join()
    faults.watch(lambda: thread)
    with pytest.raises(DataError, match="lib: its thread 'lib-network' stopped unexpectedly"):
        faults.result(concurrent.futures.Future())
    faults.watch(None)  # closed on purpose: no longer watched, but the recorded error stays
    with pytest.raises(DataError, match="stopped unexpectedly"):
        faults.check()


def test_waits_and_futures_behave_as_usual_without_a_fault() -> None:
    faults = ThreadFaults("lib", tick=0.05)
    event = threading.Event()
    assert faults.wait(event, 0.1) is False
    event.set()
    assert faults.wait(event, 0.1) is True
    future: concurrent.futures.Future[int] = concurrent.futures.Future()
    with pytest.raises(concurrent.futures.TimeoutError):
        faults.result(future, 0.1)
    future.set_result(7)
    assert faults.result(future) == 7
