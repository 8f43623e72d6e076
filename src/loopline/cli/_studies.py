"""``loopline tune PIPELINE STEP`` and ``loopline studies list|show|delete``: tuning studies in the store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from loopline.cli._context import clear_errors, open_store
from loopline.cli._render import console, print_json, table
from loopline.core.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from loopline.store import Store

app = typer.Typer(help="Tuning studies (Optuna) kept in the store's database.", no_args_is_help=True)

HomeOption = Annotated[Path | None, typer.Option("--home", help="State folder (default: $LOOPLINE_HOME).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def store_url(store: Store) -> str:
    """The store database's URL, where studies live (password kept: Optuna opens its own connection)."""
    return store.engine.url.render_as_string(hide_password=False)


def tune(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML file.")],
    step: Annotated[str, typer.Argument(help="The tune step to run (with what it needs).")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Override a param: NAME=VALUE.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a pipeline's tune step (resuming its study when one exists) and show the best trial."""
    from loopline.cli._app import parse_params
    from loopline.cli._progress import run_with_progress
    from loopline.core.yamlfile import load_pipeline
    from loopline.tune import load_study

    with clear_errors(), open_store(home) as store:
        loaded = load_pipeline(pipeline, parse_params(param or []))
        tune_steps = [name for name, spec in loaded.steps.items() if spec.type == "tune"]
        if step not in tune_steps:
            hint = did_you_mean(step, tune_steps) or f"Tune steps of {pipeline}: {', '.join(tune_steps) or 'none'}."
            raise ConfigError(f"{pipeline} has no tune step {step!r}.", key=f"steps.{step}", hint=hint)
        result = run_with_progress(store, loaded, targets=[step], quiet=as_json, leaderboards=False)
        if result.status != "succeeded":
            raise typer.Exit(1)
        lineage: dict[str, Any] = result.output(step, "study")
        record = load_study(store_url(store), str(lineage["study"]))
        if as_json:
            print_json({"run_id": result.run_id, **lineage, "study": record.to_dict()})
            return
        _print_study(record.to_dict(), lineage.get("registered"))


@app.command("list")
def list_studies(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """List the studies: trials per state and the best value."""
    from loopline.tune import list_studies as studies

    with clear_errors(), open_store(home) as store:
        rows = studies(store_url(store))
        if as_json:
            print_json(rows)
            return
        console.print(
            table(
                "studies",
                ["study", "metric", "trials", "complete", "pruned", "failed", "best", "started"],
                [
                    (
                        escape(r["name"]),
                        r["metric"] or "",
                        str(r["trials"]),
                        str(r["counts"].get("complete", 0)),
                        str(r["counts"].get("pruned", 0)),
                        str(r["counts"].get("fail", 0)),
                        "" if r["best_value"] is None else f"{r['best_value']:.4f}",
                        (r["started"] or "")[:19],
                    )
                    for r in rows
                ],
                whole=("study",),
            )
        )


@app.command("show")
def show_study(
    name: Annotated[str, typer.Argument(help="The study's name (see `loopline studies list`).")],
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            help="Also write an HTML report: optimisation history, parameter importances, per-set scores "
            "(needs loopline[report]).",
        ),
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a study: its settings, best trial with per-set scores, and every trial."""
    from loopline.tune import load_study, param_importances

    with clear_errors(), open_store(home) as store:
        record = load_study(store_url(store), name).to_dict()
        if html is not None:
            from loopline.report import require_plotting, write_study_html

            require_plotting()
            written = write_study_html(html, record, param_importances(store_url(store), name))
            if not as_json:
                console.print(f"report: {escape(str(written))}")
        if as_json:
            print_json(record)
            return
        _print_study(record, None)


@app.command("delete")
def delete_study(
    name: Annotated[str, typer.Argument(help="The study to delete with its trials.")],
    home: HomeOption = None,
) -> None:
    """Delete a study (a tuning then starts it afresh)."""
    from loopline.tune import delete_study as delete

    with clear_errors(), open_store(home) as store:
        delete(store_url(store), name)
        console.print(f"deleted study {escape(name)}")


def _print_study(record: dict[str, Any], registered: dict[str, Any] | None) -> None:
    settings = record["settings"]
    counts = ", ".join(f"{n} {state}" for state, n in sorted(record["counts"].items()))
    console.print(
        f"study [bold]{escape(record['name'])}[/]: {counts}; {settings.get('metric')} "
        f"({'/'.join(record['directions'])}), {settings.get('aggregate')} over the sets, "
        f"sampler {settings.get('sampler')}, pruner {settings.get('pruner')}"
    )
    best = record["best"]
    if best is not None:
        values = ", ".join(f"{v:.4f}" for v in best["values"] or [])
        console.print(f"best: trial {best['number']} = {values}")
        for key, value in best["params"].items():
            console.print(f"  {escape(key)}: {escape(repr(value))}")
        if best["scores"]:
            console.print(
                table("per-set scores", ["set", "score"], [(escape(k), f"{v:.4f}") for k, v in best["scores"].items()])
            )
    if registered:
        console.print(f"registered: {registered['model']} v{registered['version']}")
    rows = [
        (
            str(t["number"]),
            t["state"],
            ", ".join(f"{v:.4f}" for v in t["values"] or []),
            "" if t["duration_s"] is None else f"{t['duration_s']:.2f}",
            escape(", ".join(f"{k}={v!r}" for k, v in t["params"].items())),
            escape(t.get("error") or ""),
        )
        for t in record["trials"]
    ]
    console.print(table("trials", ["#", "state", "value", "seconds", "params", "error"], rows))
