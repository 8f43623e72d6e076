"""``loopline alerts [PIPELINE] [--model NAME]`` lists fired alerts; ``loopline alerts ack ID`` acknowledges one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from loopline.cli._context import clear_errors, open_store
from loopline.cli._registry import actor
from loopline.cli._render import console, print_json, table
from loopline.cli._windows import alert_json
from loopline.core.errors import ConfigError


def alerts(
    target: Annotated[
        str | None,
        typer.Argument(help="A pipeline file (its monitor.model's alerts), or `ack` to acknowledge alert ID."),
    ] = None,
    alert_id: Annotated[int | None, typer.Argument(help="With `ack`: the alert to acknowledge.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only this model's alerts.")] = None,
    unacknowledged: Annotated[bool, typer.Option("--unacknowledged", help="Only alerts nobody acknowledged.")] = False,
    limit: Annotated[int, typer.Option(help="How many alerts, newest first.", min=1)] = 50,
    home: Annotated[Path | None, typer.Option("--home", help="State folder.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """List the alerts monitoring windows fired (newest first), or acknowledge one: `loopline alerts ack ID`."""
    with clear_errors(), open_store(home) as store:
        if target == "ack":
            if alert_id is None:
                raise ConfigError("`loopline alerts ack` needs the alert's id.", hint="Run `loopline alerts ack 12`.")
            event = store.alerts.acknowledge(alert_id, actor=actor())
            if as_json:
                print_json(alert_json(event))
            else:
                when = f"{event.acknowledged_at:%Y-%m-%d %H:%M:%S} UTC"
                console.print(f"alert {event.id} acknowledged at {when} by {event.acknowledged_by}")
            return
        if alert_id is not None:
            raise ConfigError(f"unexpected argument {alert_id}.", hint="Only `loopline alerts ack ID` takes an id.")
        name = model if target is None else _pipeline_model(Path(target))
        events = store.alerts.list(name, unacknowledged=unacknowledged, limit=limit)
        if as_json:
            print_json([alert_json(event) for event in events])
            return
        console.print(
            table(
                "alerts" if name is None else f"alerts of {name}",
                ["id", "model", "window", "rule", "value", "fired", "acknowledged", "webhook"],
                [
                    (
                        event.id,
                        event.model_name,
                        f"{event.spec} {event.window_start:%Y-%m-%d %H:%M}",
                        escape(event.rule),
                        event.value,
                        f"{event.created_at:%Y-%m-%d %H:%M}",
                        "-" if event.acknowledged_at is None else f"{event.acknowledged_at:%Y-%m-%d %H:%M}",
                        event.delivery if not event.delivery_error else f"{event.delivery}: {event.delivery_error}",
                    )
                    for event in events
                ],
                whole=("id",),
            )
        )


def _pipeline_model(path: Path) -> str:
    from loopline.core.yamlfile import load_pipeline

    pipeline = load_pipeline(path)
    if pipeline.monitor is None:
        raise ConfigError(f"{str(path)!r} has no 'monitor:' section.", key="monitor", hint="Pass --model NAME instead.")
    return pipeline.monitor.model
