"""The heartbeat of a running run: a daemon thread that stamps the run record every few seconds, so that a run
whose process died (kill -9, power loss) reads back as ``stale`` instead of ``running`` forever."""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import TYPE_CHECKING

from loopline.store._owner import HEARTBEAT_S

if TYPE_CHECKING:
    from loopline.store import Store

log = logging.getLogger("loopline.run")


class Heartbeat:
    """``with Heartbeat(store, run_id):`` beats every ``interval`` seconds until the block ends.

    A failed beat (the store briefly unreachable) is logged and retried at the next beat; it never ends the run.
    """

    def __init__(self, store: Store, run_id: str, interval: float = HEARTBEAT_S) -> None:
        self.store = store
        self.run_id = run_id
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"loopline-heartbeat-{run_id[:8]}", daemon=True)

    def __enter__(self) -> Heartbeat:
        if not _in_memory(self.store):  # no other process sees an in-memory store, and its one connection is shared
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.store.runs.heartbeat(self.run_id):
                    log.warning("run %s: another process now owns it; this one stops its heartbeat", self.run_id)
                    return
            except Exception as exc:  # the store is briefly unreachable: the next beat tries again
                log.warning("run %s: heartbeat not recorded (%s)", self.run_id, exc)


def _in_memory(store: Store) -> bool:
    url = store.engine.url
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
