"""The quickstart loop's wall time, from the command to the summary, after installation.

There is no peer that runs this loop; the figure is compared with the 120 s budget the walking
skeleton sets (ratio = budget / median, bigger is better). Each repetition is a fresh process
(`loopline quickstart`), so imports and start-up are counted.

    python benchmarks/bench_loop.py [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import final_line, machine, summary

BUDGET_S = 120.0


def one_run(workdir: Path) -> float:
    loopline = Path(sys.executable).with_name("loopline")
    command = [str(loopline)] if loopline.exists() else [sys.executable, "-m", "loopline.cli"]
    started = time.perf_counter()
    subprocess.run([*command, "quickstart"], cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one repetition")
    args = parser.parse_args()
    repeats = 1 if args.quick else 5
    samples = []
    for _ in range(repeats):
        workdir = Path(tempfile.mkdtemp(prefix="loopline-bench-loop-"))
        try:
            samples.append(one_run(workdir))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    stats = summary(samples)
    print(
        f"loopline quickstart, {repeats} fresh process(es): min {stats['min']:.1f} s, "
        f"median {stats['median']:.1f} s, max {stats['max']:.1f} s (budget {BUDGET_S:.0f} s)"
    )
    final_line(
        "loop",
        sizes={"repeats": repeats, "traffic_rows": 2200},
        machine=machine(),
        versions={"loopline": version("loopline")},
        median={"quickstart_s": stats["median"]},
        ratios={"quickstart_vs_budget": BUDGET_S / stats["median"]},
    )


if __name__ == "__main__":
    main()
