"""The cores loopline may use and the one budget its native thread pools share."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from loopline.core.cpu import (
    CoreBudget,
    _cgroup_quota,
    busy_elsewhere,
    core_budget,
    usable_cores,
    use_core_budget,
)
from loopline.core.errors import ConfigError


def test_usable_cores_follow_affinity_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOOPLINE_CPUS", raising=False)
    affinity = len(os.sched_getaffinity(0))
    assert usable_cores() == min(affinity, _cgroup_quota() or affinity)  # affinity within the quota
    monkeypatch.setenv("LOOPLINE_CPUS", "1")
    assert usable_cores() == 1
    monkeypatch.setenv("LOOPLINE_CPUS", "100000")
    assert usable_cores() == len(os.sched_getaffinity(0))  # never more than the process may use
    monkeypatch.setenv("LOOPLINE_CPUS", "zero")
    with pytest.raises(ConfigError, match="LOOPLINE_CPUS='zero' is not a number of cores.*integer >= 1"):
        usable_cores()


def test_a_process_pinned_to_one_core_sees_one() -> None:
    code = "from loopline.core.cpu import usable_cores; print(usable_cores())"
    out = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


@pytest.mark.parametrize(
    ("cpu_max", "expected"), [("max 100000\n", None), ("150000 100000\n", 2), ("50000 100000\n", 1)]
)
def test_the_cgroup_quota_rounds_up_to_whole_cores(tmp_path: Path, cpu_max: str, expected: int | None) -> None:
    (tmp_path / "cpu.max").write_text(cpu_max)
    assert _cgroup_quota(tmp_path) == expected


def test_processes_spinning_beside_this_one_are_counted() -> None:
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(4)]
    try:
        time.sleep(0.5)
        assert busy_elsewhere() >= 4  # a spinner is always runnable (running or queued), whatever else runs
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def test_an_unsized_lease_on_a_busy_machine_takes_one_core() -> None:
    budget = CoreBudget(2)
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
    try:
        time.sleep(0.5)
        with budget.lease() as granted:
            assert granted == 1  # two cores, three processes busy on them: one thread, not two fighting
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    with CoreBudget(2, load_aware=False).lease() as granted:
        assert granted == 2


def test_leases_side_by_side_never_hold_more_than_the_budget() -> None:
    budget = CoreBudget(2, load_aware=False)
    lock = threading.Lock()
    holding: list[int] = []
    peak = 0

    def job() -> None:
        nonlocal peak
        with budget.lease(1):
            with lock:
                holding.append(1)
                peak = max(peak, len(holding))
            time.sleep(0.05)
            with lock:
                holding.pop()

    workers = [threading.Thread(target=job) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert peak == 2 and budget.free == 2


def test_a_count_above_the_budget_is_capped_at_it() -> None:
    with CoreBudget(2).lease(8) as granted:
        assert granted == 2


def test_an_empty_budget_is_refused() -> None:
    with pytest.raises(ConfigError, match="empty.*at least 1 core"):
        CoreBudget(0)


def test_the_process_budget_is_made_once_and_can_be_replaced() -> None:
    first = core_budget()
    assert core_budget() is first and first.cores == usable_cores()
    mine = CoreBudget(1)
    assert use_core_budget(mine) is first
    try:
        assert core_budget() is mine
    finally:
        use_core_budget(first)
