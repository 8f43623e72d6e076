"""``loopline feedback``: labels of served predictions from a file, or from a pipeline's label source."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from loopline.cli._context import clear_errors, open_store
from loopline.cli._render import console, print_json
from loopline.core.errors import ConfigError

if TYPE_CHECKING:
    from loopline.core.config import MonitorConfig
    from loopline.run import LabelLoad

app = typer.Typer(help="Labels (ground truth) of served predictions, for accuracy monitoring.", no_args_is_help=True)
Home = Annotated[Path | None, typer.Option("--home", help="State folder.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


@app.command("load")
def load(
    args: Annotated[
        list[str],
        typer.Argument(
            help="[PIPELINE] FILE: the labels file (CSV, Parquet, JSON Lines, or dataset:NAME).",
            metavar="[PIPELINE] FILE",
        ),
    ],
    id_column: Annotated[str, typer.Option("--id-column", help="Column holding the prediction ids.")],
    label_column: Annotated[str, typer.Option("--label-column", help="Column holding the true labels.")],
    model: Annotated[
        str | None, typer.Option("--model", help="Model name (instead of a pipeline's monitor.model).")
    ] = None,
    event_time_column: Annotated[
        str | None, typer.Option("--event-time-column", help="Column with when each outcome happened.")
    ] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Store the labels of FILE for the model of PIPELINE (its monitor.model) or --model NAME.

    Rows without a label are skipped and counted; loading the same file again changes nothing.
    """
    from loopline.run import load_label_file

    with clear_errors():
        name, path = _model_and_file(args, model)
        with open_store(home) as store:
            result = load_label_file(
                store, name, path, id_column=id_column, label_column=label_column, event_time_column=event_time_column
            )
        _print(result, as_json)


@app.command("sync")
def sync(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML file with monitor.labels.")],
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Label the model's unlabelled predictions from the dataset that monitor.labels names (by key and time)."""
    from loopline.run import sync_label_source

    with clear_errors():
        monitor = _monitor(pipeline)
        if monitor.labels is None:
            raise ConfigError(
                f"{str(pipeline)!r} has no 'monitor.labels' section.",
                key="monitor.labels",
                hint="Add one: labels: {dataset: D, key: K, label: L, time: T}.",
            )
        with open_store(home) as store:
            result = sync_label_source(store, monitor.model, monitor.labels)
        _print(result, as_json)


def _model_and_file(args: list[str], model: str | None) -> tuple[str, str]:
    if len(args) == 2 and model is None:
        monitor = _monitor(Path(args[0]))
        return monitor.model, args[1]
    if len(args) == 1 and model is not None:
        return model, args[0]
    raise ConfigError(
        "name the model once: `loopline feedback load PIPELINE FILE` or `loopline feedback load --model NAME FILE`.",
        hint="Give a pipeline file with a monitor: section, or --model, and then the labels file.",
    )


def _monitor(path: Path) -> MonitorConfig:
    from loopline.core.yamlfile import load_pipeline

    pipeline = load_pipeline(path)
    if pipeline.monitor is None:
        raise ConfigError(
            f"{str(path)!r} has no 'monitor:' section.", key="monitor", hint="Add one, e.g. monitor: {model: my-model}."
        )
    return pipeline.monitor


def _print(result: LabelLoad, as_json: bool) -> None:
    if as_json:
        print_json(asdict(result))
        return
    console.print(
        f"{result.model}: {result.stored} new, {result.updated} updated, {result.unchanged} unchanged labels "
        f"from {result.source} ({result.rows} rows, {result.skipped} without a label)"
    )
