"""Ingestion throughput on 2M rows x 12 mixed columns, against each format's reference reader.

Contenders, each in its own subprocess (so peak RSS is its own), alternated, >= 5 repeats; every
library is imported before the clock starts, so the figures compare the work, not import times:
- CSV: loopline's file source into a dataset (batches, contract, Parquet parts, commits) vs
  ``pyarrow.csv.read_csv`` on the same file; also the source alone (read, no dataset), and the persisted
  floor: read_csv, then one lz4 Parquet file and its SHA-256 — the least work that ends with the data stored.
- Parquet: loopline into a dataset vs ``polars.read_parquet``.
- JSON Lines: loopline into a dataset vs ``polars.read_ndjson`` and DuckDB's ``read_json`` (both given the 12
  columns and their types, so neither samples the file) and ``pandas.read_json(lines=True)``, each into memory
  only; ``jsonl_vs_fastest`` (goal >= 0.8, judged on the worst repeat) is against the fastest of them; and the
  persisted floor: polars.read_ndjson, then one lz4 Parquet file and its SHA-256.
- A CSV four times larger than the memory budget, streamed: peak RSS vs the file size; and a file four
  times bigger again under the same budget, to show the peak does not grow with the file.
The database and MQTT figures come from bench_ingest_sql.py (a PostgreSQL table vs pandas.read_sql and
psql \\copy) and bench_ingest_mqtt.py (100k QoS 1 messages vs a bare paho subscriber), run from here;
their ratios are merged into this script's final JSON line.

    python benchmarks/bench_ingest.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import final_line, goal, machine, paired_ratios, summary

DATA = Path(".bench/ingest")

CONTENDERS = {
    "csv_loopline": "ingest('csv')",
    "csv_source": "source_only('csv')",
    "csv_pyarrow": "import pyarrow.csv as c; t = c.read_csv(PATH['csv'])",
    "csv_floor": "persisted_floor()",
    "parquet_loopline": "ingest('parquet')",
    "parquet_polars": "import polars as pl; pl.read_parquet(PATH['parquet'])",
    "jsonl_loopline": "ingest('jsonl')",
    "jsonl_pandas": "import pandas as pd; pd.read_json(PATH['jsonl'], lines=True)",
}

PRELUDE = """
import json, sys, tempfile, time
import pandas as pd, polars as pl, pyarrow.csv, pyarrow.parquet
import duckdb, pyarrow.json
from loopline.ingest import SOURCES, Limits
from loopline.run import ingest_source
from loopline.store import Store
PATH = json.loads(sys.argv[1])
def fresh_store():
    home = tempfile.mkdtemp()
    return Store.open(f"sqlite:///{home}/b.db", home + "/artifacts")
STORE = fresh_store()  # an existing store, as in use: creating its tables is a one-time setup, not ingestion
def ingest(kind, budget=256):
    store = STORE
    cls = SOURCES.get("file")
    src = cls(cls.Config.model_validate({"path": PATH[kind], "memory_budget_mb": budget}))
    report = ingest_source(store, src, dataset="bench", limits=Limits(max_rows=500_000))
    assert report.rows == PATH["rows"], report
def source_only(kind):
    cls = SOURCES.get("file")
    src = cls(cls.Config.model_validate({"path": PATH[kind]}))
    assert sum(b.rows.height for b in src.batches(None, limits=Limits(max_rows=500_000))) == PATH["rows"]
def persisted_floor():
    # the least work that ends with the same persisted data: one read, one lz4 Parquet file, its SHA-256
    import hashlib
    table = pyarrow.csv.read_csv(PATH["csv"])
    path = tempfile.mkdtemp() + "/part.parquet"
    pl.from_arrow(table).write_parquet(path, compression="lz4", statistics=False)
    with open(path, "rb") as f:
        hashlib.file_digest(f, "sha256")
started = time.perf_counter()
"""

# JSON Lines: every peer is given the 12 columns and their types, so none samples the file to infer them
JSONL_COLUMNS = {  # name: (polars type, DuckDB type)
    "id": ("Int64", "BIGINT"),
    "user": ("Int64", "BIGINT"),
    "amount": ("Float64", "DOUBLE"),
    "score": ("Float64", "DOUBLE"),
    "qty": ("Int64", "BIGINT"),
    "ok": ("Boolean", "BOOLEAN"),
    "city": ("String", "VARCHAR"),
    "sku": ("String", "VARCHAR"),
    "channel": ("String", "VARCHAR"),
    "lat": ("Float64", "DOUBLE"),
    "lon": ("Float64", "DOUBLE"),
    "ts": ("String", "VARCHAR"),
}
_POLARS_SCHEMA = "{" + ", ".join(f"{n!r}: pl.{p}" for n, (p, _) in JSONL_COLUMNS.items()) + "}"
_DUCKDB_COLUMNS = "{" + ", ".join(f"'{n}': '{d}'" for n, (_, d) in JSONL_COLUMNS.items()) + "}"
JSONL_PEERS = {  # jsonl_loopline and jsonl_pandas are in CONTENDERS
    "jsonl_polars": f"pl.read_ndjson(PATH['jsonl'], schema={_POLARS_SCHEMA})",
    "jsonl_duckdb": (
        f"duckdb.sql(\"SELECT * FROM read_json('\" + PATH['jsonl'] + \"', columns={_DUCKDB_COLUMNS}, "
        "format='newline_delimited')\").to_arrow_table()"
    ),
    "jsonl_floor": f"""
import hashlib
frame = pl.read_ndjson(PATH['jsonl'], schema={_POLARS_SCHEMA})
path = tempfile.mkdtemp() + '/part.parquet'
frame.write_parquet(path, compression='lz4', statistics=False)
with open(path, 'rb') as f:
    hashlib.file_digest(f, 'sha256')
""",
}
CONTENDERS.update(JSONL_PEERS)
JSONL_LABELS = {
    "jsonl_loopline": "loopline file source -> ingest_source: the JSON Lines file into a new version of a dataset in "
    "an existing store (blocks parsed with types, schema contract, Parquet parts, SHA-256, commit), persisted",
    "jsonl_pandas": "pandas.read_json(lines=True), types inferred: the file into an in-memory DataFrame only",
    "jsonl_polars": "polars.read_ndjson(schema=the 12 columns): the file into an in-memory DataFrame only",
    "jsonl_duckdb": "duckdb read_json(columns=the 12 columns, format='newline_delimited').to_arrow_table(): "
    "the file into an in-memory Arrow table only",
    "jsonl_floor": "persisted floor: polars.read_ndjson(schema=...), then one lz4 Parquet file and its SHA-256 "
    "(the least work that ends with the data stored)",
}
JSONL_FASTEST_OF = ("jsonl_polars", "jsonl_duckdb", "jsonl_pandas")


def jsonl_figures(times: dict[str, list[float]]) -> dict[str, dict[str, object]]:
    """JSON Lines ratios (peer median / loopline median); the goal is judged on the worst repeat vs the fastest peer."""
    medians = {name: summary(times[name])["median"] for name in (*JSONL_FASTEST_OF, "jsonl_floor", "jsonl_loopline")}
    fastest = min(JSONL_FASTEST_OF, key=medians.__getitem__)
    ours = times["jsonl_loopline"]
    vs_fastest = paired_ratios(times[fastest], ours)
    return {
        "ratios": {
            "jsonl_vs_fastest": medians[fastest] / medians["jsonl_loopline"],
            "jsonl_vs_polars": medians["jsonl_polars"] / medians["jsonl_loopline"],
            "jsonl_vs_duckdb": medians["jsonl_duckdb"] / medians["jsonl_loopline"],
            "jsonl_vs_persisted_floor": medians["jsonl_floor"] / medians["jsonl_loopline"],
        },
        "goals": {"jsonl_vs_fastest": {**goal(vs_fastest, 0.8), "peer": fastest}},
        "labels": {
            **JSONL_LABELS,
            "jsonl_vs_fastest": f"{fastest} median / jsonl_loopline median; goal judged on the worst paired repeat",
            "jsonl_vs_pandas": "jsonl_pandas median / jsonl_loopline median",
        },
    }


EPILOGUE = """
elapsed = time.perf_counter() - started
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forking parent, VmHWM is this program's own
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"s": elapsed, "rss_mb": hwm / 1024}))
"""


def make_data(rows: int) -> dict[str, object]:
    """The same 12-column table as CSV, Parquet and JSON Lines (made once, kept under .bench/)."""
    import numpy as np
    import polars as pl

    folder = DATA / str(rows)
    paths = {"csv": folder / "data.csv", "parquet": folder / "data.parquet", "jsonl": folder / "data.jsonl"}
    if not all(p.exists() for p in paths.values()):
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        frame = pl.DataFrame(
            {
                "id": np.arange(rows),
                "user": rng.integers(0, 100_000, rows),
                "amount": rng.normal(100, 30, rows),
                "score": rng.random(rows),
                "qty": rng.integers(1, 20, rows),
                "ok": rng.random(rows) > 0.5,
                "city": rng.choice(["paris", "berlin", "madrid", "rome", "lisbon"], rows),
                "sku": [f"sku-{i % 5000:05d}" for i in range(rows)],
                "channel": rng.choice(["web", "app", "store"], rows),
                "lat": rng.uniform(-90, 90, rows),
                "lon": rng.uniform(-180, 180, rows),
                "ts": pl.datetime_range(
                    pl.datetime(2024, 1, 1),
                    pl.datetime(2024, 1, 1) + pl.duration(seconds=rows - 1),
                    interval="1s",
                    eager=True,
                ).dt.strftime("%Y-%m-%dT%H:%M:%S"),
            }
        )
        frame.write_csv(paths["csv"])
        frame.write_parquet(paths["parquet"])
        frame.write_ndjson(paths["jsonl"])
    return {**{k: str(v) for k, v in paths.items()}, "rows": rows}


def run(contender: str, paths: dict[str, object]) -> dict[str, float]:
    code = PRELUDE + CONTENDERS[contender] + "\n" + EPILOGUE
    out = subprocess.run([sys.executable, "-c", code, json.dumps(paths)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def streamed_rss(rows: int, copies: int = 1) -> dict[str, float]:
    """Peak RSS when a CSV streams through loopline with a budget a quarter of the (first) file's size.

    ``copies`` > 1 repeats the file's rows that many times in a bigger file under the same budget: with
    bounded memory, the peak does not grow with the file. ``baseline_mb`` is the same process with the
    libraries imported and nothing read.
    """
    paths = make_data(rows)
    csv = Path(str(paths["csv"]))
    budget = max(1, int(csv.stat().st_size / 2**20 / 4))
    if copies > 1:
        big = csv.with_name(f"data_x{copies}.csv")
        if not big.exists():  # written in pieces: this process stays small
            with open(big, "wb") as target:
                for copy in range(copies):
                    with open(csv, "rb") as source:
                        header = source.readline()
                        if copy == 0:
                            target.write(header)
                        shutil.copyfileobj(source, target, 16 << 20)
        paths = {**paths, "csv": str(big), "rows": rows * copies}
    code = PRELUDE + f"ingest('csv', budget={budget})\n" + EPILOGUE
    out = subprocess.run([sys.executable, "-c", code, json.dumps(paths)], check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    idle = subprocess.run(
        [sys.executable, "-c", PRELUDE + EPILOGUE, json.dumps(paths)], check=True, capture_output=True, text=True
    )
    baseline = json.loads(idle.stdout.strip().splitlines()[-1])["rss_mb"]
    file_mb = Path(str(paths["csv"])).stat().st_size / 2**20
    return {
        "file_mb": file_mb,
        "budget_mb": budget,
        "rss_mb": result["rss_mb"],
        "baseline_mb": baseline,
        "s": result["s"],
    }


def run_peer_bench(script: str, quick: bool) -> dict[str, object]:
    """Run a sibling benchmark (its table passes through) and return its final JSON line."""
    command = [sys.executable, str(Path(__file__).with_name(script)), *(["--quick"] if quick else [])]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    lines = out.stdout.strip().splitlines()
    print("\n".join(lines[:-1]))
    result: dict[str, object] = json.loads(lines[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    args = parser.parse_args()
    rows, repeats = (50_000, 1) if args.quick else (2_000_000, 5)
    paths = make_data(rows)
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in CONTENDERS}
    for name in CONTENDERS:  # warm-up (page cache, imports)
        run(name, paths)
    for _ in range(repeats):
        for name in CONTENDERS:
            samples[name].append(run(name, paths))
    medians = {name: summary([s["s"] for s in runs])["median"] for name, runs in samples.items()}
    rss = {name: max(s["rss_mb"] for s in runs) for name, runs in samples.items()}
    print(f"{rows:,} rows x 12 columns; {repeats} alternating repeats after a warm-up; each contender in a subprocess")
    print(f"{'contender':<18}{'median s':>10}{'min s':>9}{'max s':>9}{'peak RSS MB':>13}")
    for name, runs in samples.items():
        stats = summary([s["s"] for s in runs])
        print(f"{name:<18}{stats['median']:>10.3f}{stats['min']:>9.3f}{stats['max']:>9.3f}{rss[name]:>13.0f}")
    streamed = {f"x{n}": streamed_rss(rows, n) for n in (1, 4)}
    for run_ in streamed.values():
        print(
            f"streamed CSV of {run_['file_mb']:.0f} MB with a {run_['budget_mb']} MB budget: peak RSS "
            f"{run_['rss_mb']:.0f} MB ({run_['rss_mb'] - run_['baseline_mb']:.0f} above the "
            f"{run_['baseline_mb']:.0f} MB of the libraries alone) in {run_['s']:.2f} s"
        )
    ratios = {
        "csv_vs_pyarrow": medians["csv_pyarrow"] / medians["csv_loopline"],
        "csv_source_vs_pyarrow": medians["csv_pyarrow"] / medians["csv_source"],
        "csv_vs_persisted_floor": medians["csv_floor"] / medians["csv_loopline"],
        "parquet_vs_polars": medians["parquet_polars"] / medians["parquet_loopline"],
        "jsonl_vs_pandas": medians["jsonl_pandas"] / medians["jsonl_loopline"],
    }
    jsonl = jsonl_figures({name: [s["s"] for s in runs] for name, runs in samples.items()})
    ratios.update(jsonl["ratios"])
    print(f"JSON Lines goal (worst repeat vs the fastest peer): {jsonl['goals']['jsonl_vs_fastest']}")
    peers = {name: run_peer_bench(name, args.quick) for name in ("bench_ingest_sql.py", "bench_ingest_mqtt.py")}
    for result in peers.values():
        ratios.update({k: v for k, v in result.get("ratios", {}).items()})
    for key, value in ratios.items():
        print(f"{key}: {value:.2f}")
    import duckdb
    import pandas
    import polars
    import pyarrow

    final_line(
        "ingest",
        sizes={"rows": rows, "columns": 12, "repeats": repeats},
        machine=machine(),
        versions={
            "loopline": version("loopline"),
            "pyarrow": pyarrow.__version__,
            "polars": polars.__version__,
            "pandas": pandas.__version__,
            "duckdb": duckdb.__version__,
        },
        labels=jsonl["labels"],
        median={f"{k}_s": v for k, v in medians.items()},
        spread={name: summary([s["s"] for s in runs]) for name, runs in samples.items()},
        peak_rss_mb={**rss, "streamed_csv": streamed},
        ratios=ratios,
        goals=jsonl["goals"],
    )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        main()
