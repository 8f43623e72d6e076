"""The CPU cores this process may use, and one budget of them shared by everything that runs native threads.

A fit with more busy threads than free cores is slower than one with fewer: OpenMP threads wait for each other
at every parallel region, and a thread whose core was taken holds up all the others. So every piece of work
that starts native threads (a train step, batch scoring) first takes a :meth:`CoreBudget.lease` from the
process's one budget (:func:`core_budget`) and runs with as many threads as it was granted:

- the budget holds the cores the process may use (:func:`usable_cores`: CPU affinity and the cgroup quota,
  ``LOOPLINE_CPUS`` to set fewer), so steps running side by side never hold more threads than cores;
- a lease that names no count gets the free cores that no other process is busy on right now
  (:func:`busy_elsewhere`), at least one: on a machine where other processes keep the cores busy a fit runs
  on one thread instead of fighting them with two.

On a busy machine that one thread also means no OpenMP thread waits for another, so none spins on a core
the others need. Idle OpenMP threads are left to spin (libgomp's default) rather than sleep: with
``OMP_WAIT_POLICY=PASSIVE`` a HistGradientBoosting fit of 200,000 x 14 on a quiet 2-core machine took 4.1 s
instead of 1.07 s (every one of its many short parallel regions waits for its threads to wake).
"""

from __future__ import annotations

import math
import os
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from threadpoolctl import threadpool_info, threadpool_limits

from loopline.core.errors import ConfigError

CPUS_ENV = "LOOPLINE_CPUS"
"""Environment variable that caps the cores loopline uses (at most what the process may use)."""


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, within the cgroup's CPU quota, at most
    ``LOOPLINE_CPUS`` when that is set; at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, quota)
    wanted = os.environ.get(CPUS_ENV)
    if wanted:
        cores = min(cores, _parse_cpus(wanted))
    return max(1, cores)


def _parse_cpus(value: str) -> int:
    try:
        cores = int(value)
    except ValueError:
        cores = 0
    if cores < 1:
        raise ConfigError(
            f"{CPUS_ENV}={value!r} is not a number of cores.",
            key=CPUS_ENV,
            hint=f"Set {CPUS_ENV} to an integer >= 1, or unset it to use every core the process may use.",
        )
    return cores


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Whole cores the cgroup's CPU quota allows (rounded up), None when there is no quota."""
    try:
        quota, _, period = (root / "cpu.max").read_text().partition(" ")  # cgroup v2: "max 100000" or "200000 100000"
        if quota != "max":
            return max(1, math.ceil(int(quota) / int(period)))
        return None
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return max(1, math.ceil(quota_us / period_us)) if quota_us > 0 and period_us > 0 else None


def busy_elsewhere(samples: int = 5, interval: float = 0.004) -> int:
    """How many threads of other processes are running right now: the median over ``samples`` looks at the
    kernel's count of runnable threads (``/proc/loadavg``) less this process's own. 0 where the kernel does
    not say (not Linux)."""
    counts = []
    for i in range(samples):
        running = _runnable_threads()
        if running is None:
            return 0
        counts.append(max(0, running - _own_runnable_threads()))
        if i + 1 < samples:
            time.sleep(interval)
    return int(statistics.median_low(counts))


def _runnable_threads() -> int | None:
    try:
        fields = Path("/proc/loadavg").read_text().split()
        return int(fields[3].partition("/")[0])
    except (OSError, ValueError, IndexError):
        return None


def _own_runnable_threads() -> int:
    """This process's threads that are running or runnable now (at least 1: the caller)."""
    running = 0
    try:
        tasks = list(Path("/proc/self/task").iterdir())
    except OSError:
        return 1
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        if stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] == "R":
            running += 1
    return max(1, running)


class CoreBudget:
    """A fixed number of cores that leases share. Thread-safe; a lease nested in another in the same thread
    runs within the outer one's cores and takes nothing more from the budget.

    :meth:`lease` blocks until cores are free: ``wanted`` cores (capped at the budget) when it is given,
    else at least one, and then grants every free core that no other process is busy on.
    """

    def __init__(self, cores: int, *, load_aware: bool = True) -> None:
        if cores < 1:
            raise ConfigError(f"a core budget of {cores} cores is empty.", hint="Give at least 1 core.")
        self.cores = cores
        self.load_aware = load_aware
        self._free = cores
        self._changed = threading.Condition()
        self._held = threading.local()

    @property
    def free(self) -> int:
        """Cores no lease holds now."""
        return self._free

    @contextmanager
    def lease(self, wanted: int | None = None) -> Iterator[int]:
        """Hold cores for the block; yields how many (>= 1). ``wanted`` is a count the caller needs
        (capped at the budget), None for whatever is free."""
        outer: int | None = getattr(self._held, "cores", None)
        if outer is not None:  # nested: within the outer lease
            yield min(wanted, outer) if wanted else outer
            return
        granted = self._take(wanted)
        self._held.cores = granted
        try:
            yield granted
        finally:
            self._held.cores = None
            with self._changed:
                self._free += granted
                self._changed.notify_all()

    def _take(self, wanted: int | None) -> int:
        need = min(wanted, self.cores) if wanted else 1
        elsewhere = busy_elsewhere() if self.load_aware and not wanted else 0  # sampled outside the lock (~16 ms)
        with self._changed:
            self._changed.wait_for(lambda: self._free >= need)
            granted = need if wanted else max(1, min(self._free, self.cores - elsewhere))
            self._free -= granted
            return granted


_BUDGET: CoreBudget | None = None
_BUDGET_LOCK = threading.Lock()


def core_budget() -> CoreBudget:
    """The process's one core budget, of :func:`usable_cores` cores (made on first use)."""
    global _BUDGET
    with _BUDGET_LOCK:
        if _BUDGET is None:
            _BUDGET = CoreBudget(usable_cores())
        return _BUDGET


def use_core_budget(budget: CoreBudget | None) -> CoreBudget | None:
    """Make ``budget`` the process's budget (None: made again on next use); returns the previous one.
    For an embedding application that hands loopline part of its cores, and for tests."""
    global _BUDGET
    with _BUDGET_LOCK:
        previous, _BUDGET = _BUDGET, budget
        return previous


@contextmanager
def limited_threads(threads: int | None) -> Iterator[dict[str, int | None]]:
    """Run the block on cores leased from the process's :func:`~loopline.core.cpu.core_budget`, with that many
    OpenMP threads in the calling thread (other threads keep theirs). ``threads`` is the count the step asks
    for (capped at the budget; the block waits until that many cores are free); None takes the free cores
    no other process is busy on, at least one. The BLAS pool is not touched (see the module docstring).

    Yields what the block sees: ``{"requested", "granted", "openmp", "blas"}`` (the cores leased, then the
    largest thread count of the loaded OpenMP and BLAS libraries, None when none is loaded). Import the
    estimator's module before entering: libraries loaded inside the block are not limited.
    """
    check_threads(threads)
    with core_budget().lease(threads) as granted:
        with _LOCK:
            openmp = threadpool_limits(limits=granted, user_api="openmp")
        try:
            yield {"requested": threads, "granted": granted, **observed_threads()}
        finally:
            with _LOCK:
                openmp.restore_original_limits()


def observed_threads() -> dict[str, int | None]:
    """The largest thread count of the loaded OpenMP and BLAS libraries, as the calling thread sees them."""
    info = threadpool_info()
    return {api: max((i["num_threads"] for i in info if i["user_api"] == api), default=None) for api in _APIS}


_APIS = ("openmp", "blas")
_LOCK = threading.Lock()  # threadpoolctl scans the loaded libraries; one scan at a time


def check_threads(threads: int | None) -> None:
    """ConfigError unless ``threads`` is None (the free cores) or at least 1."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(
            f"threads={threads!r} is not a thread count.",
            key="threads",
            hint="Use an integer >= 1, or leave threads unset for the free cores.",
        )
