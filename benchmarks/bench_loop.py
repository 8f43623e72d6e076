"""The quickstart loop's wall time, from the command to the summary, after installation: on a quiet machine,
and on a busy one.

There is no peer that runs this loop; the quiet figure is compared with the 120 s budget the walking
skeleton sets (ratio = budget / median, bigger is better). Each repetition is a fresh process
(`loopline quickstart`), so imports and start-up are counted.

``quiet_over_busy`` is the quiet median over the median with ``--busy`` (default 2) processes spinning on the
CPU beside it (started before each busy repetition and killed after it), repetitions alternating quiet and
busy. A fair share of two cores among three runnable processes makes the loop 2-3x slower, so the goal is
>= 0.33; a loop that oversubscribes the cores (threads waiting on each other while their cores run the
spinners) is several times slower than that.

    python benchmarks/bench_loop.py [--quick] [--busy N]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import final_line, goal, machine, paired_ratios, summary

BUDGET_S = 120.0


def one_run(workdir: Path) -> float:
    loopline = Path(sys.executable).with_name("loopline")
    command = [str(loopline)] if loopline.exists() else [sys.executable, "-m", "loopline.cli"]
    started = time.perf_counter()
    subprocess.run([*command, "quickstart"], cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def fresh_run() -> float:
    """One quickstart in a fresh folder."""
    workdir = Path(tempfile.mkdtemp(prefix="loopline-bench-loop-"))
    try:
        return one_run(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def spinning(processes: int) -> Iterator[None]:
    """``processes`` busy loops on the CPU for the duration of the block (each killed after it, at most
    an hour in any case)."""
    code = "import time\nend = time.monotonic() + 3600\nwhile time.monotonic() < end: pass"
    spinners = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(processes)]
    try:
        time.sleep(0.5)  # running before the loop starts
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one repetition of each")
    parser.add_argument("--busy", type=int, default=2, help="busy-looping processes beside the busy runs")
    args = parser.parse_args()
    repeats = 1 if args.quick else 5
    quiet: list[float] = []
    busy: list[float] = []
    for _ in range(repeats):  # alternating: quiet, busy, quiet, busy ...
        quiet.append(fresh_run())
        with spinning(args.busy):
            busy.append(fresh_run())
    q, b = summary(quiet), summary(busy)
    print(f"loopline quickstart, {repeats} fresh process(es) each (budget {BUDGET_S:.0f} s):")
    print(f"  quiet machine             min {q['min']:.1f} s, median {q['median']:.1f} s, max {q['max']:.1f} s")
    print(
        f"  {args.busy} busy-looping processes  min {b['min']:.1f} s, median {b['median']:.1f} s, max {b['max']:.1f} s"
    )
    pairs = paired_ratios(quiet, busy)  # quiet / busy per alternated pair
    versus_budget = [BUDGET_S / s for s in quiet]
    goals = {"quickstart_vs_budget": goal(versus_budget, 1.0), "quiet_over_busy": goal(pairs, 0.33)}
    p = summary(pairs)
    print(
        f"  quiet / busy per pair     min {p['min']:.2f}, median {p['median']:.2f}, max {p['max']:.2f} (goal >= 0.33)"
    )
    final_line(
        "loop",
        sizes={"repeats": repeats, "traffic_rows": 2200, "busy_processes": args.busy},
        machine=machine(),
        versions={"loopline": version("loopline")},
        median={"quickstart_s": q["median"], "quickstart_busy_s": b["median"]},
        labels={
            "quickstart_vs_budget": "120 s budget / wall time of `loopline quickstart` in a fresh process and folder"
            " (imports, data, ingest, train, select, serve, traffic, monitor, retrain)",
            "quiet_over_busy": "quiet quickstart / the same beside busy-looping processes, per alternated pair",
        },
        spread={
            "quickstart_s": q,
            "quickstart_busy_s": b,
            "quickstart_vs_budget": summary(versus_budget),
            "quiet_over_busy": p,
        },
        ratios={"quickstart_vs_budget": BUDGET_S / q["median"], "quiet_over_busy": q["median"] / b["median"]},
        goals=goals,
    )


if __name__ == "__main__":
    main()
