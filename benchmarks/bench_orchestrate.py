"""Orchestration overhead: a 100-step chain of trivial steps through loopline (run and step
records written to SQLite, every output a new content-addressed artifact) against Kedro's
SequentialRunner with MemoryDatasets and with a pickle file per output (logging at WARNING), and a bare Python
loop as the floor.
Also: a cached re-run of the quickstart pipeline against its first run, imports warmed first.

    python benchmarks/bench_orchestrate.py [--quick]

Every loopline run (the warm-up too) writes values no run stored before: run ``k`` starts the chain at
``k * (steps + 1)``, so its outputs ``k * (steps + 1) + i`` (i = 0..steps) never repeat across runs. After each
run the benchmark counts the blobs the artifact store gained and stops unless it gained one per step.
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import final_line, machine, paired_ratios, spread_table, summary, timed

_BLOB = re.compile(r"[0-9a-f]{64}")
_SHARD = re.compile(r"[0-9a-f]{2}")

LABELS = {
    "floor_ms": "a bare Python loop calling the step function once per step (ms per chain)",
    "kedro_ms": "Kedro SequentialRunner().run() of the chain, MemoryDatasets, logger at WARNING (ms per chain)",
    "loopline_ms": "Runner(store, SequentialExecutor(), cache=False).run() of the chain: run + step records in "
    "SQLite, every output written as a new content-addressed artifact (temp file, fsync, rename, fsync of its "
    "folder), checked by counting the store's blobs (ms per chain)",
    "step_overhead_vs_kedro": "Kedro per-step overhead (in memory) / loopline per-step overhead (durable artifacts)",
    "step_overhead_vs_kedro_files": "Kedro per-step overhead (pickle files) / loopline per-step overhead",
    "kedro_files_ms": "the same Kedro run with every output a pickle file on the same disk (written, then read by "
    "the next node; no fsync, as kedro-datasets' PickleDataset) (ms per chain)",
    "kedro_step_overhead_ms": "(kedro chain - floor chain of the same repeat) / steps",
    "kedro_files_step_overhead_ms": "(kedro_files chain - floor chain of the same repeat) / steps",
    "loopline_step_overhead_ms": "(loopline chain - floor chain of the same repeat) / steps",
    "quickstart_first_s": "first Runner(store).run() of the quickstart pipeline in a fresh store, imports warmed by "
    "an earlier run in a throwaway store of the same process (s)",
    "quickstart_cached_s": "the same pipeline run again right after in the same store (unchanged steps from the "
    "cache; ingest and select always run) (s)",
}


def inc(value: int) -> int:
    """The trivial step."""
    return value + 1


def start(*, seed: int = 0) -> int:
    """The chain's first step: it outputs the run's seed."""
    return seed


def bare_loop(steps: int) -> None:
    value = 0
    for _ in range(steps):
        value = inc(value)


def kedro_runner(steps: int) -> Callable[[], None]:
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.pipeline import node, pipeline
    from kedro.runner import SequentialRunner

    logging.getLogger("kedro").setLevel(logging.WARNING)
    chain = pipeline([node(inc, f"d{i}", f"d{i + 1}", name=f"n{i}") for i in range(steps)])

    def run() -> None:
        SequentialRunner().run(chain, DataCatalog({"d0": MemoryDataset(0)}))

    return run


def kedro_files_runner(steps: int, folder: Path) -> Callable[[], None]:
    """Kedro with every output persisted: a pickle file per dataset, written and read back as a Kedro
    user's file-backed catalog does (kedro-datasets' PickleDataset pickles through fsspec; no fsync)."""
    import pickle

    from kedro.io import AbstractDataset, DataCatalog, MemoryDataset
    from kedro.pipeline import node, pipeline
    from kedro.runner import SequentialRunner

    class PickleFile(AbstractDataset[int, int]):
        def __init__(self, path: Path) -> None:
            self._path = path

        def load(self) -> int:
            with self._path.open("rb") as f:
                value: int = pickle.load(f)
            return value

        def save(self, data: int) -> None:
            with self._path.open("wb") as f:
                pickle.dump(data, f)

        def _describe(self) -> dict[str, Any]:
            return {"path": str(self._path)}

    logging.getLogger("kedro").setLevel(logging.WARNING)
    folder.mkdir(parents=True, exist_ok=True)
    chain = pipeline([node(inc, f"d{i}", f"d{i + 1}", name=f"n{i}") for i in range(steps)])
    outputs = {f"d{i}": PickleFile(folder / f"d{i}.pkl") for i in range(1, steps + 1)}

    def run() -> None:
        SequentialRunner().run(chain, DataCatalog({"d0": MemoryDataset(0), **outputs}))
        if not (folder / f"d{steps}.pkl").exists():
            raise SystemExit("kedro_files: the chain's last output was not written")

    return run


def count_blobs(root: Path) -> int:
    """Blobs in a local artifact store (``root/<2 hex>/<64 hex sha256>``, the layout of every loopline tree)."""
    if not root.is_dir():
        return 0
    shards = (d for d in root.iterdir() if d.is_dir() and _SHARD.fullmatch(d.name))
    return sum(1 for shard in shards for f in shard.iterdir() if f.is_file() and _BLOB.fullmatch(f.name))


class LooplineChain:
    """The chain through loopline; :meth:`check` proves the last run wrote one new artifact per step."""

    def __init__(self, steps: int, home: Path) -> None:
        from loopline import Pipeline
        from loopline.run import Runner, SequentialExecutor
        from loopline.store import Store

        logging.getLogger("loopline").setLevel(logging.WARNING)
        self.steps, self.artifacts = steps, home / "artifacts"
        store = Store.open(f"sqlite:///{home / 'bench.db'}", self.artifacts)
        self.chain = Pipeline("chain", params={"seed": 0}).add("s000", start, seed="${params.seed}")
        for i in range(1, steps + 1):
            self.chain.add(f"s{i:03d}", inc, inputs=[f"s{i - 1:03d}"])
        self.runner = Runner(store, SequentialExecutor(), cache=False)
        self.runs = 0
        self.blobs = count_blobs(self.artifacts)
        self.gained: list[int] = []
        self.result: Any = None

    def __call__(self) -> None:
        """Run k (from 0) starts at k * (steps + 1): its outputs never repeat another run's."""
        self.result = self.runner.run(self.chain, {"seed": self.runs * (self.steps + 1)})
        self.runs += 1

    def check(self) -> None:
        """Outside the timing: the last run ended at the right value and the store gained steps + 1 blobs."""
        expected = (self.runs - 1) * (self.steps + 1) + self.steps
        last = self.result.output(f"s{self.steps:03d}")
        blobs = count_blobs(self.artifacts)
        gained, self.blobs = blobs - self.blobs, blobs
        self.gained.append(gained)
        if last != expected or gained != self.steps + 1:
            raise SystemExit(
                f"loopline run {self.runs}: the chain ended at {last} (expected {expected}) and the artifact store "
                f"gained {gained} blobs (expected {self.steps + 1}, one per step): outputs were not all written"
            )


def chain_figures(steps: int, repeats: int, home: Path) -> dict[str, list[float]]:
    """Warm-up, then ``repeats`` alternated rounds (floor, kedro, loopline); seconds per chain."""
    ours = LooplineChain(steps, home)
    contenders: dict[str, Callable[[], None]] = {
        "floor": lambda: bare_loop(steps),
        "kedro": kedro_runner(steps),
        "kedro_files": kedro_files_runner(steps, home / "kedro-files"),
        "loopline": ours,
    }
    for fn in contenders.values():
        fn()
    ours.check()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            times[name].append(timed(fn))
        ours.check()
    print(
        f"artifacts written per loopline run (warm-up first): {ours.gained} "
        f"(each run stores {steps + 1} values no earlier run stored; {ours.blobs} blobs in all)"
    )
    return times


def quickstart(home: Path) -> tuple[Any, Any]:
    """The quickstart pipeline and a fresh store under ``home``, sources seeded."""
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
    return pipeline, Runner(store)


def cached_rerun(tmp: Path, repeats: int) -> tuple[list[float], list[float]]:
    """One throwaway run (first imports), then ``repeats`` pairs (first run, cached re-run), each in a fresh store."""
    pipeline, runner = quickstart(tmp / "warm-up")
    runner.run(pipeline)
    firsts, agains = [], []
    for i in range(repeats):
        pipeline, runner = quickstart(tmp / f"pair-{i}")
        started = time.perf_counter()
        runner.run(pipeline)
        firsts.append(time.perf_counter() - started)
        started = time.perf_counter()
        result = runner.run(pipeline)
        agains.append(time.perf_counter() - started)
    cached = [n for n, o in result.steps.items() if o.status == "cached"]
    print(
        f"cached re-run: {len(cached)}/{len(result.steps)} steps from the cache (ingest steps always run: they "
        f"check their sources for new rows; select always runs: it registers and gates)"
    )
    return firsts, agains


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test (no quickstart pipeline)")
    args = parser.parse_args()
    steps, repeats = (20, 5) if args.quick else (100, 7)
    pairs = 0 if args.quick else 5
    for name, label in LABELS.items():
        print(f"{name}: {label}")
    with tempfile.TemporaryDirectory() as tmp:
        times = chain_figures(steps, repeats, Path(tmp) / "chain")
        floor = times["floor"]
        samples: dict[str, list[float]] = {f"{n}_ms": [t * 1000 for t in ts] for n, ts in times.items()}
        for name in ("kedro", "kedro_files", "loopline"):
            samples[f"{name}_step_overhead_ms"] = [
                (t - f) / steps * 1000 for t, f in zip(times[name], floor, strict=True)
            ]
        overhead_ratios = paired_ratios(samples["kedro_step_overhead_ms"], samples["loopline_step_overhead_ms"])
        print(f"\n{steps}-step chain, {repeats} alternated repeats after a warm-up:")
        print(spread_table(samples, "ms"))
        files_ratios = paired_ratios(samples["kedro_files_step_overhead_ms"], samples["loopline_step_overhead_ms"])
        print("per-repeat per-step overhead, kedro / loopline: " + " ".join(f"{r:.2f}" for r in overhead_ratios))
        print("per-repeat per-step overhead, kedro_files / loopline: " + " ".join(f"{r:.2f}" for r in files_ratios))
        ratios: dict[str, list[float]] = {
            "step_overhead_vs_kedro": overhead_ratios,
            "step_overhead_vs_kedro_files": files_ratios,
        }
        if pairs:
            firsts, agains = cached_rerun(Path(tmp), pairs)
            samples["quickstart_first_s"], samples["quickstart_cached_s"] = firsts, agains
            ratios["cached_rerun_speedup"] = paired_ratios(firsts, agains)
            print(f"\nquickstart pipeline, {pairs} pairs (first run, cached re-run), each in a fresh store:")
            print(spread_table({k: samples[k] for k in ("quickstart_first_s", "quickstart_cached_s")}, "s"))
            print("per-pair speed-up: " + " ".join(f"{r:.1f}" for r in ratios["cached_rerun_speedup"]))
    medians = {name: statistics.median(s) for name, s in samples.items()}
    final_line(
        "orchestrate",
        sizes={"steps": steps, "repeats": repeats, "quickstart_pairs": pairs},
        machine=machine(),
        versions={"kedro": version("kedro"), "loopline": version("loopline")},
        labels={name: label for name, label in LABELS.items() if name in samples or name in ratios},
        median=medians,
        spread={name: summary(s) for name, s in {**samples, **ratios}.items()},
        ratios={
            "step_overhead_vs_kedro": statistics.median(overhead_ratios),
            "step_overhead_vs_kedro_files": statistics.median(files_ratios),
            "cached_rerun_speedup": statistics.median(ratios["cached_rerun_speedup"]) if pairs else None,
        },
        per_repeat_ratios=ratios,
        goals={},  # no target is stated for these ratios (README quotes measured figures only)
    )


if __name__ == "__main__":
    main()
