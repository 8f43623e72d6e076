"""Who owns a running run: the host and process that write it, and the heartbeat that says they still do.

A run is *stale* when its owner is gone: on this host, its process no longer exists; on another host, its
heartbeat is older than :data:`STALE_AFTER_S`. The runner beats every :data:`HEARTBEAT_S` seconds.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

HEARTBEAT_S = 5.0
STALE_AFTER_S = 60.0


@dataclass(frozen=True)
class Owner:
    """A process on a host."""

    host: str
    pid: int


@cache
def _hostname() -> str:
    return socket.gethostname()


def this_owner() -> Owner:
    """The calling process (the pid is read each time: a forked child is a different owner)."""
    return Owner(_hostname(), os.getpid())


def owner_gone(host: str | None, pid: int | None, heartbeat_at: datetime | None, now: datetime) -> bool:
    """True when the owner of a running run is known to be gone (see the module docstring).

    On this host the process table is authoritative: a live owner whose heartbeat lags (a step holding the GIL,
    the store unreachable for a while) is not stale. Another host's owner is judged by its heartbeat alone."""
    if host is None or pid is None:  # a run recorded before owners were (schema 0003): trust its status
        return False
    if host == _hostname():
        return not process_exists(pid)
    return heartbeat_at is None or now - heartbeat_at > timedelta(seconds=STALE_AFTER_S)


def process_exists(pid: int) -> bool:
    """Whether ``pid`` is a live process on this host (a zombie, killed but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (macOS), or it just ended
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]
