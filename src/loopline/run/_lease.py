"""Holding a store lease while work runs: renewed by a daemon thread, released when the block ends.

``with LeaseKeeper(loops, lease, ttl):`` renews ``lease`` every third of ``ttl`` (at most every
:data:`RENEW_MAX_S` seconds) and deletes it on exit, whatever ended the block. A failed renewal (the store briefly
unreachable) is logged and retried at the next one; a lease found taken by another process sets :attr:`lost`.
A process killed inside the block leaves the lease to lapse (see :mod:`loopline.store.loop`).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loopline.store.loop import Lease, LoopStore

log = logging.getLogger("loopline.loop")

RENEW_MAX_S = 30.0


def retrain_lease_name(pipeline: str) -> str:
    """The lease that guards the retrains of ``pipeline``."""
    return f"retrain:{pipeline}"


class LeaseKeeper:
    """Renews a held lease until the block ends, then releases it (see the module docstring)."""

    def __init__(self, loops: LoopStore, lease: Lease, ttl: timedelta) -> None:
        self.loops = loops
        self.lease = lease
        self.ttl = ttl
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"loopline-lease-{lease.name}", daemon=True)

    @property
    def interval(self) -> float:
        return min(self.ttl.total_seconds() / 3, RENEW_MAX_S)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self.loops.release(self.lease)
        except Exception as error:  # the store is unreachable: the lease lapses on its own at its expiry
            log.warning("lease %s not released (%s); it expires at %s", self.lease.name, error, self.lease.expires_at)

    def _renew(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.loops.renew(self.lease, self.ttl):
                    log.warning("lease %s was taken by another process; this one stops renewing it", self.lease.name)
                    self.lost.set()
                    return
            except Exception as error:  # the next renewal tries again
                log.warning("lease %s not renewed (%s)", self.lease.name, error)
