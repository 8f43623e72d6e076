"""The dashboard on a big store: every page's server time against the issue's goal (issue 15).

The store (made by ``_ui_store.py`` in bulk, cached under .bench/ui): 10,000 runs, 1,000 model versions,
1,000,000 logged predictions over 30 days (10% labelled), ~2,160 closed windows, 300 alerts, ~5,000 loop events,
3 datasets (100 versions, 300 parts, 1,000 dead letters each), 3 Optuna studies of 40 trials. SQLite by default;
``--store-url postgresql+psycopg://...`` fills (once) and times an empty PostgreSQL database instead.

For every page of ``loopline.ui.pages.all_pages()``, its path parameters are filled from the store (one resolver
per parameter name: a page with a parameter no resolver knows stops the benchmark, so no page is skipped
silently), then ``/api{path}`` (the JSON) and ``/ui{path}`` (the HTML) are requested in process through
Starlette's TestClient: 2 warm-ups each, then 15 alternated requests (3 with ``--quick``). A list page whose JSON
says it has several pages is timed on its last page too (``?page=N``: the deepest OFFSET). Server time is
measured around the ASGI app call (routing, the store's queries, rendering, JSON encoding; not the test client),
and sent back as a ``Server-Timing: app;dur=MS`` header. Every answer must be 200.

Goal (the issue's): every page's p95 under 300 ms. ``goal_ratio`` = p95 / 300 ms per page (1.0 or less meets
it); the JSON line's ratio ``headroom_vs_goal`` = 300 ms / the worst page's p95 (bigger is better, as every ratio
here). That figure is a goal without a peer: no other tool serves these pages.

Peer, for the run list only (``_ui_mlflow.py``): MLflow's tracking server (its own virtualenv, .bench/mlflow-venv,
as bench_train.py makes it) with as many runs, logged through MLflow's own client, answering its UI's call ``POST
/ajax-api/2.0/mlflow/runs/search`` (newest 50), beside loopline's ``GET /api/runs`` (newest 50) served by uvicorn
from the generated store; both timed client-side over HTTP, alternated. ``runs_search_vs_mlflow`` = MLflow s /
loopline s (median of the paired ratios). On in a full run (which creates the virtualenv), off with ``--quick``
(``--mlflow on|off`` overrides); skipped while there is no ``/runs`` page.

    python benchmarks/bench_ui.py [--quick] [--store-url URL] [--only /runs,/models] [--mlflow auto|on|off] [--json]

``--quick``: the sizes divided by 20 (500 runs, 50 versions, 50,000 predictions), 3 timed requests per page: the
smoke run of ``run_all.py --quick``. The load generator (the test client) shares the process and its 2 cores.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import final_line, machine
from _ui_store import FULL, QUICK, Made, open_generated

GOAL_MS = 300.0
WARM_UP = 2
REPEATS, QUICK_REPEATS = 15, 3
PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


class ServerClock:
    """ASGI middleware: how long the app took to answer the last request (also sent as ``Server-Timing``)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last_s = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_timed(message: Any) -> None:
            if message["type"] == "http.response.start":
                took = (time.perf_counter() - started) * 1000
                headers = [*message.get("headers", []), (b"server-timing", f"app;dur={took:.2f}".encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_timed)
        self.last_s = time.perf_counter() - started


# --- path parameters -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """Real names from the generated store, to fill path parameters with."""

    model: str
    model_version: int
    run_id: str
    pipeline: str
    dataset: str
    dataset_version: int
    study: str
    alert_id: int
    window_spec: str
    window_seq: int
    step: str


def store_facts(store: Any) -> Facts:
    """The busiest model (its production version), a finished run of its pipeline, a dataset, a study, an alert."""
    from sqlalchemy import func, select

    from loopline.store._tables import alerts, monitor_windows, runs, steps

    model = store.models.names()[0]
    production = store.models.production(model)
    datasets = store.datasets.names()
    with store.engine.connect() as conn:
        run_id, pipeline = conn.execute(
            select(runs.c.run_id, runs.c.pipeline)
            .where(runs.c.status == "succeeded")
            .order_by(runs.c.started_at.desc())
            .limit(1)
        ).one()
        step = conn.execute(select(steps.c.step).where(steps.c.run_id == run_id).limit(1)).scalar_one()
        alert_id = conn.execute(select(func.max(alerts.c.id))).scalar_one()
        spec, seq = conn.execute(
            select(monitor_windows.c.spec, monitor_windows.c.seq)
            .where(monitor_windows.c.model_name == model)
            .order_by(monitor_windows.c.end_at.desc())
            .limit(1)
        ).one()
    from loopline.tune import list_studies

    studies = list_studies(store.engine.url.render_as_string(hide_password=False))
    return Facts(
        model=model,
        model_version=production.version if production else 1,
        run_id=run_id,
        pipeline=pipeline,
        dataset=datasets[0],
        dataset_version=store.datasets.version(datasets[0]).version,
        study=studies[0]["name"] if studies else "none",
        alert_id=int(alert_id or 1),
        window_spec=spec,
        window_seq=int(seq),
        step=step,
    )


NAME_BY_AREA = {"models": "model", "monitoring": "model", "datasets": "dataset", "tuning": "study",
                "studies": "study", "runs": "pipeline", "pipelines": "pipeline", "loop": "pipeline"}  # fmt: skip
"""What ``{name}`` means under each top-level path."""

Resolver = Callable[[str, Facts], str]
RESOLVERS: dict[str, Resolver] = {
    "name": lambda area, f: str(getattr(f, _named(area))),
    "model": lambda area, f: f.model,
    "version": lambda area, f: str(f.dataset_version if area == "datasets" else f.model_version),
    "run_id": lambda area, f: f.run_id,
    "run": lambda area, f: f.run_id,
    "pipeline": lambda area, f: f.pipeline,
    "dataset": lambda area, f: f.dataset,
    "study": lambda area, f: f.study,
    "alert_id": lambda area, f: str(f.alert_id),
    "alert": lambda area, f: str(f.alert_id),
    "spec": lambda area, f: f.window_spec,
    "seq": lambda area, f: str(f.window_seq),
    "step": lambda area, f: f.step,
}
"""One resolver per path parameter name: (the path's first segment, facts) -> the value."""
QUERIES: dict[str, Callable[[Facts], str]] = {
    "/models/{name}/compare": lambda f: (
        f"versions={max(1, f.model_version - 2)},{f.model_version},{f.model_version + 1}"
    ),
}
"""Query strings a page needs to answer (path -> facts -> ``a=1&b=2``): a comparison's versions."""


def _named(area: str) -> str:
    if area not in NAME_BY_AREA:
        raise SystemExit(
            f"bench_ui: no resolver for {{name}} under /{area}/...; add /{area} to NAME_BY_AREA in bench_ui.py."
        )
    return NAME_BY_AREA[area]


def fill(path: str, facts: Facts) -> str:
    """``path`` with its parameters filled from ``facts`` (SystemExit naming an unknown parameter)."""
    area = path.strip("/").split("/")[0]

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in RESOLVERS:
            raise SystemExit(
                f"bench_ui: the page {path} has the path parameter {{{name}}} that no resolver knows;"
                f" add one to RESOLVERS in benchmarks/bench_ui.py (known: {', '.join(sorted(RESOLVERS))})."
            )
        from urllib.parse import quote

        return quote(RESOLVERS[name](area, facts), safe="")

    filled = PARAM.sub(value, path)
    query = QUERIES.get(path)
    return f"{filled}?{query(facts)}" if query else filled


# --- timing --------------------------------------------------------------------------------------------------------


@dataclass
class Timing:
    """One address's server times (seconds) and its answer's size."""

    address: str
    samples: list[float]
    status: int
    bytes: int

    def median_ms(self) -> float:
        return statistics.median(self.samples) * 1000

    def p95_ms(self) -> float:
        import numpy as np

        return float(np.percentile(self.samples, 95)) * 1000


def time_page(client: Any, clock: ServerClock, addresses: list[str], repeats: int) -> list[Timing]:
    """Warm each address up, then request them in turn ``repeats`` times; a non-200 answer stops the timing."""
    timings = {}
    for address in addresses:
        for _ in range(WARM_UP):
            answer = client.get(address)
        timings[address] = Timing(address, [], answer.status_code, len(answer.content))
    for _ in range(repeats):
        for address in addresses:
            if timings[address].status != 200:
                continue
            client.get(address)
            timings[address].samples.append(clock.last_s)
    return list(timings.values())


def last_page(data: Any) -> int | None:
    """The number of the last page of a paginated answer (a ``{page, per_page, total, pages}`` dict at the top
    or one level down), when it has more than one."""
    keys = {"page", "per_page", "total", "pages"}
    found = [data] + [v for v in data.values() if isinstance(v, dict)] if isinstance(data, dict) else []
    for candidate in found:
        if keys <= set(candidate) and isinstance(candidate["pages"], int) and candidate["pages"] > 1:
            return int(candidate["pages"])
    return None


def run_pages(store: Any, repeats: int, only: list[str] | None, echo: Callable[[str], None] = print) -> list[Timing]:
    """Every page as JSON and as HTML (and its last page when it is a paginated list); ``echo`` says how each
    went."""
    from fastapi.testclient import TestClient

    from loopline.ui import create_ui_app
    from loopline.ui.pages import all_pages

    facts = store_facts(store)
    clock = ServerClock(create_ui_app(store, token="bench-ui-token"))
    pages = [p for p in all_pages() if only is None or p.path in only]
    results = []
    with TestClient(clock) as client:
        for page in pages:
            address = fill(page.path, facts)
            first = client.get(f"/api{address}")
            addresses = [f"/api{address}", f"/ui{address}"]
            deepest = last_page(first.json()) if first.status_code == 200 else None
            if deepest is not None:
                joiner = "&" if "?" in address else "?"
                addresses += [f"/api{address}{joiner}page={deepest}", f"/ui{address}{joiner}page={deepest}"]
            results += time_page(client, clock, addresses, repeats)
            done = results[-len(addresses) :]
            echo(f"  {page.path}: " + ", ".join(f"{t.address} {t.median_ms():.1f} ms" for t in done if t.samples))
    return results


def table(results: list[Timing]) -> str:
    """A human table: median, p95, goal ratio per address."""
    width = max([len(t.address) for t in results] + [10])
    lines = [
        f"{'address':<{width}}  {'status':>6}  {'median ms':>10}  {'p95 ms':>10}  {'goal_ratio':>10}  {'bytes':>9}"
    ]
    for t in results:
        if not t.samples:
            lines.append(f"{t.address:<{width}}  {t.status:>6}  {'-':>10}  {'-':>10}  {'-':>10}  {t.bytes:>9}")
            continue
        lines.append(
            f"{t.address:<{width}}  {t.status:>6}  {t.median_ms():>10.1f}  {t.p95_ms():>10.1f}"
            f"  {t.p95_ms() / GOAL_MS:>10.3f}  {t.bytes:>9}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes / 20, 3 timed requests per page")
    parser.add_argument("--store-url", default=None, help="an empty PostgreSQL database (default: cached SQLite)")
    parser.add_argument("--only", default=None, help="comma-separated page paths (as all_pages() names them)")
    parser.add_argument("--repeats", type=int, default=None, help="timed requests per address")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument(
        "--mlflow", choices=("auto", "on", "off"), default="auto",
        help="the MLflow runs-search peer (auto: on in a full run, creating its virtualenv; off with --quick)",
    )  # fmt: skip
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    repeats = args.repeats or (QUICK_REPEATS if args.quick else REPEATS)
    started = time.perf_counter()
    store, made = open_generated(args.store_url, sizes)
    generated = time.perf_counter() - started
    say: Callable[[str], None] = (lambda line: None) if args.json else print
    say(_made_line(made, generated, store))
    only = [p.strip() for p in args.only.split(",")] if args.only else None
    with store:
        results = run_pages(store, repeats, only, say)
        backend = store.engine.dialect.name
        peer = run_peer(store, made, args, repeats, say)
    say(table(results))
    failed = [t for t in results if t.status != 200]
    timed = [t for t in results if t.samples]
    worst = max(timed, key=lambda t: t.p95_ms()) if timed else None
    say(
        f"\nserver time per request (median and p95 of {repeats}, after {WARM_UP} warm-ups), {backend}; goal p95 <"
        f" {GOAL_MS:.0f} ms; worst: {worst.address if worst else '-'} p95 {worst.p95_ms() if worst else 0:.1f} ms."
        " The goal has no peer (the run list's MLflow peer is above, when it ran)."
    )
    final_line(
        "ui",
        sizes={**made.rows, "backend": backend, "repeats": repeats, "warm_up": WARM_UP, "quick": args.quick},
        versions={"loopline": version("loopline"), "sqlalchemy": version("sqlalchemy"), "fastapi": version("fastapi")},
        machine=machine(),
        generated_s=round(made.seconds, 1),
        median={t.address: round(t.median_ms(), 2) for t in timed},
        p95={t.address: round(t.p95_ms(), 2) for t in timed},
        goal_ratio={t.address: round(t.p95_ms() / GOAL_MS, 4) for t in timed},
        ratios={"headroom_vs_goal": round(GOAL_MS / worst.p95_ms(), 3) if worst else None, **peer["ratios"]},
        peer=peer["figures"],
        goals={
            "page_p95_ms": {
                "goal": GOAL_MS,
                "worst": worst.p95_ms() if worst else None,
                "worst_address": worst.address if worst else None,
                "met": bool(worst and worst.p95_ms() < GOAL_MS),
            }
        },
        failed={t.address: t.status for t in failed},
    )
    if failed:
        raise SystemExit(f"bench_ui: {len(failed)} address(es) did not answer 200: " + ", ".join(
            f"{t.address} ({t.status})" for t in failed))  # fmt: skip


def run_peer(store: Any, made: Made, args: argparse.Namespace, repeats: int, say: Callable[[str], None]) -> Any:
    """MLflow's runs search beside loopline's ``/api/runs`` (see ``_ui_mlflow.py``), when asked and possible."""
    from loopline.ui.pages import all_pages

    wanted = args.mlflow == "on" or (args.mlflow == "auto" and not args.quick)
    none: dict[str, Any] = {"ratios": {"runs_search_vs_mlflow": None}, "figures": None}
    if not wanted:
        return none
    from bench_train import MLFLOW_VENV, mlflow_python

    if "/runs" not in {page.path for page in all_pages()}:
        say("MLflow peer skipped: there is no /runs page yet")
        return none
    python = mlflow_python(create=True)
    if python is None:
        say(f"MLflow peer skipped: {MLFLOW_VENV} is missing")
        return none
    from _common import paired_ratios, summary
    from _ui_mlflow import compare_runs

    url = store.engine.url.render_as_string(hide_password=False)
    found = compare_runs(python, url, str(store.artifacts.location), made.rows["runs"], repeats)
    times = found["times"]
    ratios = paired_ratios(times["mlflow_runs_search_s"], times["loopline_api_runs_s"])
    ms = {name.removesuffix("_s") + "_ms": round(summary(t)["median"] * 1000, 2) for name, t in times.items()}
    say(
        f"MLflow {found['mlflow']} ({MLFLOW_VENV}, mlflow server, 1 worker) POST runs/search newest 50 of"
        f" {made.rows['runs']:,}: median {ms['mlflow_runs_search_ms']} ms; loopline GET /api/runs (uvicorn):"
        f" {ms['loopline_api_runs_ms']} ms; ratio (MLflow / loopline) median {summary(ratios)['median']:.2f}"
        " (client-side times over HTTP, alternated)"
    )
    return {
        "ratios": {"runs_search_vs_mlflow": round(summary(ratios)["median"], 3)},
        "figures": {"median": ms, "spread": {"runs_search_vs_mlflow": summary(ratios)}, "mlflow": found["mlflow"],
                    "mlflow_log_s": found["mlflow_log_s"]},
    }  # fmt: skip


def _made_line(made: Made, seconds: float, store: Any) -> str:
    how = "reused the cached store" if made.reused else f"generated the store in {made.seconds:.1f} s"
    rows = ", ".join(f"{name} {count:,}" for name, count in made.rows.items())
    return f"{how} ({store!r}, opened in {seconds:.1f} s): {rows}"


if __name__ == "__main__":
    main()
