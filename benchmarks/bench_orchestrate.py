"""Orchestration overhead: a 100-step chain of trivial steps through loopline (run and step
records written to SQLite, outputs stored as artifacts) against Kedro's SequentialRunner with
MemoryDatasets (logging at WARNING), and a bare Python loop as the floor. Also: a cached re-run
of the quickstart pipeline against its first run.

    python benchmarks/bench_orchestrate.py [--quick]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import alternate, final_line, machine, summary


def inc(value: int) -> int:
    """The trivial step."""
    return value + 1


def start(*, seed: int = 0) -> int:
    """The chain's first step: a new value each repetition, so artifacts are really written."""
    return seed


def bare_loop(steps: int) -> None:
    value = 0
    for _ in range(steps):
        value = inc(value)


def kedro_runner(steps: int) -> object:
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.pipeline import node, pipeline
    from kedro.runner import SequentialRunner

    logging.getLogger("kedro").setLevel(logging.WARNING)
    chain = pipeline([node(inc, f"d{i}", f"d{i + 1}", name=f"n{i}") for i in range(steps)])

    def run() -> None:
        SequentialRunner().run(chain, DataCatalog({"d0": MemoryDataset(0)}))

    return run


def loopline_runner(steps: int, home: Path) -> object:
    from loopline import Pipeline
    from loopline.run import Runner, SequentialExecutor
    from loopline.store import Store

    logging.getLogger("loopline").setLevel(logging.WARNING)
    store = Store.open(f"sqlite:///{home / 'bench.db'}", home / "artifacts")
    chain = Pipeline("chain", params={"seed": 0}).add("s000", start, seed="${params.seed}")
    for i in range(1, steps + 1):
        chain.add(f"s{i:03d}", inc, inputs=[f"s{i - 1:03d}"])
    runner = Runner(store, SequentialExecutor(), cache=False)
    counter = iter(range(10**9))

    def run() -> None:
        runner.run(chain, {"seed": next(counter)})

    return run


def cached_rerun(home: Path) -> tuple[float, float]:
    from loopline.cli._seed import seed_flights_table, seed_weather_files
    from loopline.core.yamlfile import parse_pipeline
    from loopline.run import Runner
    from loopline.store import Store

    text = files("loopline.templates").joinpath("quickstart.yaml").read_text(encoding="utf-8")
    pipeline = parse_pipeline(text)
    pipeline.params["sources"] = str(home / "sources")
    seed_flights_table(home / "sources")
    seed_weather_files(home / "sources")
    store = Store.open(f"sqlite:///{home / 'quickstart.db'}", home / "qs-artifacts")
    runner = Runner(store)
    first = time.perf_counter()
    runner.run(pipeline)
    first = time.perf_counter() - first
    again = time.perf_counter()
    result = runner.run(pipeline)
    again = time.perf_counter() - again
    cached = [n for n, o in result.steps.items() if o.status == "cached"]
    print(
        f"cached re-run: {len(cached)}/{len(result.steps)} steps from the cache (ingest steps always run: they "
        f"check their sources for new rows; select always runs: it registers and gates)"
    )
    return first, again


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    args = parser.parse_args()
    steps, repeats = (20, 3) if args.quick else (100, 7)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        times = alternate(
            {"floor": lambda: bare_loop(steps), "kedro": kedro_runner(steps), "loopline": loopline_runner(steps, home)},
            repeats,
        )
        stats = {name: summary(samples) for name, samples in times.items()}
        per_step = {name: (s["median"] - stats["floor"]["median"]) / steps * 1000 for name, s in stats.items()}
        print(f"{steps}-step chain, {repeats} alternating repeats after a warm-up (times in ms):")
        print(f"{'contender':<10}{'min':>10}{'median':>10}{'max':>10}{'per step':>12}")
        for name, s in stats.items():
            print(
                f"{name:<10}{s['min'] * 1000:>10.2f}{s['median'] * 1000:>10.2f}{s['max'] * 1000:>10.2f}"
                f"{per_step[name]:>12.4f}"
            )
        ratio = per_step["kedro"] / per_step["loopline"]
        print(
            f"per-step overhead: loopline {per_step['loopline']:.3f} ms, kedro {per_step['kedro']:.3f} ms "
            f"-> {ratio:.2f}x less for loopline"
        )
        first, again = cached_rerun(home) if not args.quick else (float("nan"), float("nan"))
        speedup = first / again if again == again else None
        if speedup:
            print(
                f"quickstart pipeline: first run {first:.2f} s, cached re-run {again:.3f} s "
                f"({again / first:.1%} of the first) -> {speedup:.1f}x"
            )
    final_line(
        "orchestrate",
        sizes={"steps": steps, "repeats": repeats},
        machine=machine(),
        versions={"kedro": version("kedro"), "loopline": version("loopline")},
        median={
            "floor_ms": stats["floor"]["median"] * 1000,
            "kedro_ms": stats["kedro"]["median"] * 1000,
            "loopline_ms": stats["loopline"]["median"] * 1000,
            "kedro_step_overhead_ms": per_step["kedro"],
            "loopline_step_overhead_ms": per_step["loopline"],
            "quickstart_first_s": first,
            "quickstart_cached_s": again,
        },
        ratios={"step_overhead_vs_kedro": ratio, "cached_rerun_speedup": speedup},
    )


if __name__ == "__main__":
    main()
