"""``loopline ingest`` and ``loopline datasets list|show|profile|dead-letters|replay``."""

from __future__ import annotations

import signal
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from loopline.cli._context import clear_errors, open_store
from loopline.cli._render import console, print_json, table
from loopline.core.errors import ConfigError, did_you_mean

app = typer.Typer(help="Versioned datasets made by ingestion, and their dead letters.", no_args_is_help=True)
Home = Annotated[Path | None, typer.Option("--home")]
Json = Annotated[bool, typer.Option("--json")]


def ingest_command(pipeline_path: Path, step: str, *, follow: bool, home: Path | None, as_json: bool) -> None:
    """Run one ingest step's source into its dataset, once or continuously (Ctrl-C / SIGTERM stop cleanly)."""
    from loopline.core.yamlfile import load_pipeline
    from loopline.ingest import Limits
    from loopline.run import ingest_source
    from loopline.run.steps._ingest import build_source

    pipeline = load_pipeline(pipeline_path)
    sources = {n: s for n, s in pipeline.bind().items() if s.spec.type == "ingest"}
    if step not in sources:
        hint = did_you_mean(step, sources) or f"Ingest steps: {', '.join(sources) or 'none'}."
        raise ConfigError(f"{str(pipeline_path)!r} has no ingest step {step!r}.", hint=hint)
    config: Any = sources[step].config
    stop = threading.Event()
    if follow:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
    with open_store(home) as store:
        report = ingest_source(
            store,
            build_source(config.source),
            dataset=config.dataset or step,
            source_name=step,
            follow=follow,
            policy=config.policy,
            limits=Limits(config.batch_rows, config.batch_seconds),
            stop=stop,
        )
    if as_json:
        print_json(asdict(report))
        return
    console.print(
        table(
            f"ingest {step} → {report.dataset} v{report.version}",
            ["figure", "value"],
            [
                ("rows", report.rows),
                ("bytes", report.bytes),
                ("batches", report.batches),
                ("duplicates dropped", report.duplicates),
                ("dead letters", report.rejected),
                ("retries", report.retries),
                ("seconds", report.duration_s),
                ("schema changes", "; ".join(report.schema_changes) or "-"),
            ],
        )
    )


@app.command("list")
def list_datasets(home: Home = None, as_json: Json = False) -> None:
    """Datasets with their latest version and row count."""
    with clear_errors(), open_store(home) as store:
        latest = [store.datasets.version(name) for name in store.datasets.names()]
        if as_json:
            print_json([asdict(v) for v in latest])
            return
        console.print(
            table(
                "datasets",
                ["dataset", "version", "rows", "columns", "created"],
                [
                    (v.dataset, v.version, v.rows, len(v.schema), v.created_at.strftime("%Y-%m-%d %H:%M:%S"))
                    for v in latest
                ],
            )
        )


@app.command("show")
def show_dataset(
    name: Annotated[str, typer.Argument(help="Dataset name.")], home: Home = None, as_json: Json = False
) -> None:
    """A dataset's versions (rows, checksum, source positions) and schema."""
    with clear_errors(), open_store(home) as store:
        versions = store.datasets.versions(name) or [store.datasets.version(name)]
        if as_json:
            print_json([asdict(v) for v in versions])
            return
        console.print(
            table(
                f"{name}: versions",
                ["version", "rows", "checksum", "sources", "created"],
                [
                    (
                        v.version,
                        v.rows,
                        v.checksum[:12],
                        ", ".join(v.positions),
                        v.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    )
                    for v in versions
                ],
            )
        )
        console.print(table("schema contract", ["column", "type"], list(versions[-1].schema.items())))


@app.command("profile")
def profile_dataset(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    version: Annotated[int | None, typer.Option(help="Version (default: latest).")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Also write the profile as an HTML page here.")] = None,
    refresh: Annotated[bool, typer.Option(help="Compute the profile again even if one is stored.")] = False,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Per-column statistics of a version: missing share, distinct values, ranges, top values, histograms.

    Computed the first time a version is profiled (it reads the version's rows) and stored with it.
    """
    from loopline.cli._extras import require_extra
    from loopline.report import write_profile_html
    from loopline.run import dataset_profile

    with clear_errors():
        if html is not None:
            require_extra("report")  # before the work, not after it
        with open_store(home) as store:
            profile = dataset_profile(store, name, version, refresh=refresh)
    if html is not None:
        write_profile_html(html, profile, title=f"{name} v{profile['version']}: profile")
    if as_json:
        print_json(profile)
        return
    console.print(
        f"[bold]{escape(name)} v{profile['version']}[/] — {profile['rows']:,} rows, {profile['n_columns']} columns"
    )
    console.print(table("columns", _PROFILE_HEADERS, [_profile_row(column) for column in profile["columns"]]))
    if html is not None:
        console.print(f"wrote {escape(str(html))}")


_PROFILE_HEADERS = ["column", "type", "missing", "distinct", "min", "max", "mean", "std", "top values"]


def _profile_row(column: dict[str, Any]) -> list[Any]:
    """One table row; text from the data is escaped so that rich never reads it as markup."""
    distinct = column["distinct"]
    if distinct is not None and not column["distinct_exact"]:
        distinct = f"≈{distinct:,}"
    top = ", ".join(f"{item['value']!r} {item['count']:,}" for item in column.get("top", [])[:3])
    numbers = [column.get(stat) for stat in ("min", "max", "mean", "std")]
    return [
        escape(column["name"]),
        escape(column["dtype"]),
        f"{column['missing_share']:.1%}",
        distinct,
        *[escape(n) if isinstance(n, str) else n for n in numbers],
        escape(top) or None,
    ]


@app.command("dead-letters")
def dead_letters(
    name: Annotated[str, typer.Argument(help="Dataset name.")], home: Home = None, as_json: Json = False
) -> None:
    """Rows and messages ingestion could not take, with the reason, position and raw payload."""
    with clear_errors(), open_store(home) as store:
        letters = store.datasets.dead_letters(name)
        if as_json:
            print_json([asdict(d) for d in letters])
            return
        console.print(
            table(
                f"{name}: {len(letters)} dead letter(s)",
                ["id", "source", "reason", "position", "raw"],
                [(d.id, d.source, escape(d.reason), str(d.position)[:60], d.raw[:60]) for d in letters],
            )
        )


@app.command("replay")
def replay(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    null_value: Annotated[list[str] | None, typer.Option("--null-value", help="A string to read as missing.")] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Re-check dead letters against the dataset's contract and commit those that now pass."""
    from loopline.run import replay_dead_letters

    with clear_errors(), open_store(home) as store:
        outcome = replay_dead_letters(store, name, null_values=null_value or ())
        if as_json:
            print_json(outcome)
        else:
            console.print(
                f"replayed {outcome['replayed']}, still failing {outcome['still_failing']}, "
                f"skipped (not JSON rows) {outcome['skipped']}"
            )
