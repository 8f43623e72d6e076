"""Errors in a client library's own thread, raised again in the ingest's main flow.

paho-mqtt runs its callbacks in its network thread and nats-py runs in an asyncio loop thread. An exception
there ends that thread (paho) or is only logged (asyncio), and a consumer waiting for messages from it would
wait forever. A :class:`ThreadFaults` keeps the first such error: a callback wrapped by :meth:`guard`, a
refusal a callback reports (:meth:`fail`: a subscription the broker refused, a permissions error), or the
library's thread found dead by the watchdog (:meth:`watch`). The main flow waits only through
:meth:`wait`, :meth:`result` or :meth:`check`, which raise the error there, as a :class:`DataError` naming
the library and where it happened: the engine treats it as permanent, so the ingest ends with that error
and a non-zero exit instead of hanging. Waits wake at least every ``tick`` seconds to look.
"""

from __future__ import annotations

import concurrent.futures
import functools
import inspect
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from loopline.core.errors import DataError

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_TICK = 0.2


class ThreadFaults:
    """The first error of one source's client-library thread; thread-safe."""

    def __init__(self, library: str, *, tick: float = _TICK) -> None:
        self.library = library
        self.tick = tick
        self._lock = threading.Lock()
        self._fault: tuple[str, str, BaseException | None] | None = None
        self._thread: Callable[[], threading.Thread | None] | None = None

    def fail(self, message: str, *, hint: str, cause: BaseException | None = None) -> None:
        """Record an error found in the library's thread (the first one wins); the main flow raises it."""
        with self._lock:
            if self._fault is None:
                self._fault = (message, hint, cause)

    def guard(self, where: str, callback: F) -> F:
        """``callback`` made safe for the library's thread: an exception it raises is recorded, not thrown there."""

        if inspect.iscoroutinefunction(callback):

            @functools.wraps(callback)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await callback(*args, **kwargs)
                except Exception as exc:
                    self._raised(where, exc)
                    return None

            return guarded_async  # type: ignore[return-value]

        @functools.wraps(callback)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return callback(*args, **kwargs)
            except Exception as exc:
                self._raised(where, exc)
                return None

        return guarded  # type: ignore[return-value]

    def _raised(self, where: str, exc: Exception) -> None:
        self.fail(
            f"{where} raised {type(exc).__name__}: {exc}",
            hint="This is a bug or an unexpected broker reply; the messages not committed come back on the next "
            "run. Report it with this message if it repeats.",
            cause=exc,
        )

    def watch(self, thread: Callable[[], threading.Thread | None] | None) -> None:
        """Have :meth:`check` also fail once the thread ``thread()`` returns has stopped (None: not started)."""
        self._thread = thread

    def failed(self) -> bool:
        """Whether an error is waiting to be raised."""
        return self._fault is not None

    def check(self) -> None:
        """Raise the recorded error, or a dead watched thread, as a :class:`DataError`; else do nothing."""
        self._check_thread()
        fault = self._fault
        if fault is None:
            return
        message, hint, cause = fault
        raise DataError(f"{self.library}: {message}", hint=hint) from cause

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        """``event.wait(timeout)`` that raises a recorded error as soon as there is one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.check()
            left = self.tick if deadline is None else min(self.tick, deadline - time.monotonic())
            if event.wait(max(0.0, left)):
                self.check()
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def result(self, future: concurrent.futures.Future[T], timeout: float | None = None) -> T:
        """``future.result(timeout)`` that raises a recorded error (a dead thread never completes the future)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.check()
            left = self.tick if deadline is None else min(self.tick, deadline - time.monotonic())
            try:
                return future.result(max(0.0, left))
            except concurrent.futures.TimeoutError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    def _check_thread(self) -> None:
        thread = self._thread() if self._thread is not None else None
        if thread is not None and not thread.is_alive():
            self.fail(
                f"its thread {thread.name!r} stopped unexpectedly (an error in the library).",
                hint="The messages not committed come back on the next run; the log above this error may "
                "show the library's own traceback.",
            )
