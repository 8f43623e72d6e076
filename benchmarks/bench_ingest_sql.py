"""PostgreSQL into a versioned dataset: loopline's ingest vs pandas.read_sql vs the psql binary \\copy floor.

    python benchmarks/bench_ingest_sql.py            # 2M rows x 12 columns, 5 repeats
    python benchmarks/bench_ingest_sql.py --quick    # 100k rows, 1 repeat, a smoke run

The table is made once with generate_series (reused when it exists) in the database named by
LOOPLINE_BENCH_PG (default postgresql://postgres@127.0.0.1:5432/test). Every contender runs in its own
subprocess (timed inside it, so interpreter start-up is not counted) and reports its peak RSS
(ru_maxrss; for psql, that of the psql process). Contenders alternate, one warm-up each, then
``repeats`` rounds; the median is quoted. Client and server share the machine's cores.

- loopline: what an ingest step (or ``loopline ingest``) does: ``ingest_source`` of the ``postgres`` source
  (connectorx, a snapshot: no watermark) into a versioned dataset of an existing SQLite store, in batches
  of 100,000 rows (the ingest step's default): contract, lz4 Parquet parts, commits, the dataset version.
  This is the figure the goals are judged on (``postgres_vs_pandas``, ``postgres_vs_psql``).
- Source only (no dataset written, labelled so): ``loopline_source`` is the same source, full read, all
  batches concatenated in memory; ``loopline_keyset`` reads it by ``watermark: updated_at, key: id`` in
  keyset batches; ``loopline_adbc`` is the snapshot through ADBC.
- pandas: ``pandas.read_sql`` through SQLAlchemy + psycopg 3, into an in-memory DataFrame (nothing written).
- psql: ``\\copy (SELECT ...) to /dev/null (FORMAT binary)``, the floor (no parsing into memory at all).

Every ratio is peer seconds / loopline seconds for each alternated repeat; the median is quoted, min/median/max
printed, and a goal is judged on the worst repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import final_line, goal, machine, paired_ratios, summary

URL = os.environ.get("LOOPLINE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
BATCH_ROWS = 100_000

CONTENDERS = {
    "loopline": "loopline into a dataset: ingest_source(postgres source, connectorx snapshot) into a versioned "
    "dataset of an existing SQLite store (contract, lz4 Parquet parts, commits, version), as an ingest step does",
    "pandas": "pandas.read_sql (SQLAlchemy + psycopg 3) into an in-memory DataFrame; nothing written",
    "psql": "psql \\copy (SELECT * ...) to /dev/null (FORMAT binary): the wire floor, nothing parsed or written",
    "loopline_source": "source only, no dataset: the postgres source (connectorx snapshot), batches concatenated "
    "in memory",
    "loopline_keyset": "source only, no dataset: keyset batches by watermark updated_at, key id (connectorx)",
    "loopline_adbc": "source only, no dataset: the postgres source snapshot through ADBC, batches concatenated",
}

#: ratio name -> (peer, loopline contender), peer seconds / loopline seconds per repeat; goals on the worst repeat
RATIOS = {
    "postgres_vs_pandas": ("pandas", "loopline"),
    "postgres_vs_psql": ("psql", "loopline"),
    "postgres_source_vs_pandas": ("pandas", "loopline_source"),
    "postgres_source_vs_psql": ("psql", "loopline_source"),
    "postgres_keyset_vs_psql": ("psql", "loopline_keyset"),
    "postgres_adbc_vs_psql": ("psql", "loopline_adbc"),
}
GOALS = {"postgres_vs_pandas": 5.0, "postgres_vs_psql": 0.57}

CREATE = """
CREATE TABLE IF NOT EXISTS {table} AS
SELECT g AS id,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' AS updated_at,
       (g % 1000)::int AS i32,
       g * 7919 AS i64,
       (g % 9973) / 7.0::float8 AS f64,
       ((g % 101) / 3.0)::real AS f32,
       ((g % 100000) / 100.0)::numeric(12,2) AS amount,
       'name_' || (g % 50000)::text AS name,
       md5(g::text)::varchar(32) AS code,
       (g % 3 = 0) AS flag,
       date '2020-01-01' + (g % 1500)::int AS day,
       timestamp '2023-06-01 00:00:00' + (g % 86400) * interval '1 minute' AS local_ts
FROM generate_series(1::bigint, {rows}::bigint) AS g;
ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {table}_pkey;
ALTER TABLE {table} ADD PRIMARY KEY (id);
CREATE INDEX IF NOT EXISTS {table}_wm ON {table} (updated_at, id);
VACUUM ANALYZE {table};
"""


def ensure_table(rows: int) -> str:
    """The benchmark table of ``rows`` rows (created with psql on first use)."""
    table = f"loopline_bench_sql_{rows // 1000}k" if rows < 1_000_000 else f"loopline_bench_sql_{rows // 1_000_000}m"
    check = f"SELECT count(*) FROM pg_class WHERE relname = '{table}'"
    found = subprocess.run(["psql", URL, "-tAc", check], check=True, capture_output=True, text=True).stdout
    if found.strip() == "0":
        print(f"creating {table} ({rows:,} rows)...", flush=True)
        script = CREATE.format(table=table, rows=rows)
        subprocess.run(["psql", URL, "-v", "ON_ERROR_STOP=1", "-q"], input=script, check=True, text=True)
    return table


# -- workers (each in its own process) ---------------------------------------------------------------------------


def work(contender: str, table: str) -> dict[str, Any]:
    """Import what ``contender`` needs, then time one full read of ``table``."""
    read = _reader(contender, table)
    started = time.perf_counter()
    rows = read()
    seconds = time.perf_counter() - started
    who = resource.RUSAGE_CHILDREN if contender == "psql" else resource.RUSAGE_SELF
    return {"seconds": seconds, "rows": rows, "peak_rss_mb": resource.getrusage(who).ru_maxrss / 1024}


def _reader(contender: str, table: str) -> Callable[[], int]:
    if contender.startswith("loopline"):
        import polars as pl

        from loopline.ingest._source import Limits
        from loopline.ingest._sql_sources import PostgresSource

        config: dict[str, Any] = {"url": URL, "table": table, "driver": "connectorx"}
        if contender == "loopline_keyset":
            config.update(watermark="updated_at", key="id")
        if contender == "loopline_adbc":
            config["driver"] = "adbc"
        if contender == "loopline":
            return _into_dataset(config)

        def loopline() -> int:
            with PostgresSource(PostgresSource.Config.model_validate(config)) as source:
                frames = [b.rows for b in source.batches(None, limits=Limits(max_rows=BATCH_ROWS))]
            return pl.concat(frames, rechunk=False).height

        return loopline
    if contender == "pandas":
        import pandas as pd
        import sqlalchemy as sa

        def pandas() -> int:
            engine = sa.create_engine(URL.replace("postgresql://", "postgresql+psycopg://"))
            rows = len(pd.read_sql(sa.text(f"SELECT * FROM {table}"), engine))
            engine.dispose()
            return rows

        return pandas
    copy = f"\\copy (SELECT * FROM {table}) to /dev/null (FORMAT binary)"

    def psql() -> int:
        out = subprocess.run(["psql", URL, "-c", copy], check=True, capture_output=True, text=True).stdout
        return int(out.split()[-1])

    return psql


def _into_dataset(config: dict[str, Any]) -> Callable[[], int]:
    """An ingest step's work: the source into a versioned dataset of a store opened beforehand (its tables
    made once, as for a store in use)."""
    from loopline.ingest._source import Limits
    from loopline.ingest._sql_sources import PostgresSource
    from loopline.run import ingest_source
    from loopline.store import Store

    home = tempfile.mkdtemp()  # under the TMPDIR run_worker removes
    store = Store.open(f"sqlite:///{home}/bench.db", f"{home}/artifacts")

    def loopline() -> int:
        source = PostgresSource(PostgresSource.Config.model_validate(config))
        report = ingest_source(store, source, dataset="bench", limits=Limits(max_rows=BATCH_ROWS))
        if report.version is None:
            raise RuntimeError(f"no dataset version was made: {report}")
        return report.rows

    return loopline


def run_worker(contender: str, table: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-sql-") as tmp:
        out = subprocess.run(
            [sys.executable, __file__, "--worker", contender, "--table", table],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "TMPDIR": tmp},
        ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


# -- driver ------------------------------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    from importlib.metadata import version

    found = {
        name: version(name) for name in ("connectorx", "adbc-driver-postgresql", "pandas", "sqlalchemy", "psycopg")
    }
    found["psql"] = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, help="alternated repeats (default 5; 1 with --quick)")
    parser.add_argument("--worker")
    parser.add_argument("--table")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(work(args.worker, args.table)))
        return
    rows = 100_000 if args.quick else 2_000_000
    args.repeats = args.repeats or (1 if args.quick else 5)
    table = ensure_table(rows)
    contenders = list(CONTENDERS)
    for name in contenders:  # warm-up (and a row count check)
        got = run_worker(name, table)["rows"]
        if got != rows:
            raise SystemExit(f"{name} read {got} rows, expected {rows}")
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
    for _ in range(args.repeats):  # A B C ... A B C ...
        for name in contenders:
            samples[name].append(run_worker(name, table))
    times = {name: [s["seconds"] for s in runs] for name, runs in samples.items()}
    seconds = {name: summary(t) for name, t in times.items()}
    rss = {name: max(s["peak_rss_mb"] for s in runs) for name, runs in samples.items()}
    print(f"PostgreSQL {table}: {rows:,} rows x 12 columns, batch_rows={BATCH_ROWS:,}, {args.repeats} repeats")
    print(f"{'contender':<18}{'min s':>9}{'median s':>10}{'max s':>9}{'peak RSS MB':>13}")
    for name in contenders:
        s = seconds[name]
        print(f"{name:<18}{s['min']:>9.2f}{s['median']:>10.2f}{s['max']:>9.2f}{rss[name]:>13.0f}")
    for name, text in CONTENDERS.items():
        print(f"  {name}: {text}")
    per_repeat = {name: paired_ratios(times[peer], times[ours]) for name, (peer, ours) in RATIOS.items()}
    ratios = {name: round(summary(r)["median"], 2) for name, r in per_repeat.items()}
    goals = {name: goal(per_repeat[name], target) for name, target in GOALS.items()}
    for name, r in per_repeat.items():
        s = summary(r)
        print(f"{name}: median {s['median']:.2f} (min {s['min']:.2f}, max {s['max']:.2f})")
    for name, result in goals.items():
        state = "met" if result["met"] else "not met"
        print(f"goal {name} >= {result['goal']} on the worst repeat: {state} (worst {result['worst']:.2f})")
    labels = {f"{name}_s": text for name, text in CONTENDERS.items()}
    labels.update({name: f"{peer} s / {ours} s per alternated repeat" for name, (peer, ours) in RATIOS.items()})
    final_line(
        "ingest_sql",
        sizes={"rows": rows, "columns": 12, "batch_rows": BATCH_ROWS, "repeats": args.repeats},
        versions=versions(),
        machine=machine(),
        labels=labels,
        median={f"{k}_s": round(v["median"], 3) for k, v in seconds.items()},
        spread={
            **{f"{k}_s": v for k, v in seconds.items()},
            **{name: summary(r) for name, r in per_repeat.items()},
        },
        peak_rss_mb={k: round(v) for k, v in rss.items()},
        ratios=ratios,
        goals=goals,
    )


if __name__ == "__main__":
    main()
