"""Every benchmark, one after the other, on a quiet machine: the run that RESULTS.md's ``final`` lines come from.

Each script's whole output goes to ``.bench/logs/<script>.log``; its last line (the JSON object) is printed here
tagged ``final``, ready for RESULTS.md, from which ``python benchmarks/publish.py`` regenerates the README's table.

    python benchmarks/run_all.py [--only orchestrate,serve,...] [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ("orchestrate", "loop", "loop_efficacy", "monitor", "ingest", "prep", "train", "tune", "serve", "ui")


def run_one(name: str, quick: bool, logs: Path) -> str:
    """Run ``bench_<name>.py``; its final JSON line, tagged ``final``."""
    command = [sys.executable, str(ROOT / "benchmarks" / f"bench_{name}.py"), *(["--quick"] if quick else [])]
    log = logs / f"bench_{name}.log"
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        code = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    elapsed = time.perf_counter() - started
    lines = [line for line in log.read_text(encoding="utf-8").splitlines() if line.startswith('{"bench"')]
    if code != 0 or not lines:
        raise SystemExit(f"run_all: bench_{name}.py failed (exit {code}) after {elapsed:.0f} s; see {log}")
    json.loads(lines[-1])  # a line that is not JSON fails here, not in publish.py
    print(f"# bench_{name}.py: {elapsed:.0f} s, log {log.relative_to(ROOT)}", file=sys.stderr)
    return "final " + lines[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(ORDER), help=f"comma-separated, of: {', '.join(ORDER)}")
    parser.add_argument("--quick", action="store_true", help="the smoke runs (their lines are not for RESULTS.md)")
    args = parser.parse_args()
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(names) - set(ORDER))
    if unknown:
        raise SystemExit(f"run_all: unknown benchmark(s) {', '.join(unknown)}; use: {', '.join(ORDER)}")
    logs = ROOT / ".bench" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for name in names:
        print(run_one(name, args.quick, logs), flush=True)


if __name__ == "__main__":
    main()
