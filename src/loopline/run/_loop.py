"""Closing the loop: watch the production model's traffic for drift, retrain on fresh data, gate.

Pipelines that can be retrained declare the params ``start``, ``valid_from``, ``test_from`` and
``end`` (a time window); :func:`retrain_params` moves that window to the most recent data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl

from loopline.core.config import MonitorConfig
from loopline.core.errors import ConfigError, DataError
from loopline.monitor import DriftReport, RetrainDecision, decide_retrain, drift_report

if TYPE_CHECKING:
    from loopline.store import ModelVersion, Store

WINDOW_PARAMS = ("start", "valid_from", "test_from", "end")


@dataclass
class MonitorResult:
    """The drift verdict for a production model's logged traffic and what to do about it."""

    production: ModelVersion
    report: DriftReport
    decision: RetrainDecision
    reference: pl.DataFrame
    current: pl.DataFrame


def monitor_model(store: Store, config: MonitorConfig, *, since: datetime | None = None) -> MonitorResult:
    """Compare the production model's training reference with the traffic it answered."""
    production = store.models.production(config.model)
    if production is None:
        raise ConfigError(
            f"model {config.model!r} has no production version to monitor.",
            hint=f"Promote one with `loopline models promote {config.model} VERSION`.",
        )
    if production.reference_digest is None:
        raise DataError(
            f"model {config.model!r} v{production.version} has no drift reference.",
            hint="Retrain it with loopline's train step, which stores one.",
        )
    reference = store.artifacts.get_table(production.reference_digest)
    current = store.predictions.read(config.model, since=since, version=production.version)
    if current.height == 0:
        raise DataError(
            f"no logged predictions for {config.model!r} v{production.version} yet.",
            hint="Send traffic to `loopline serve` first, then run `loopline monitor` again.",
        )
    features = production.config["features"]
    report = drift_report(
        reference, current, numeric=features["numeric"], categorical=features["categorical"], config=config.drift
    )
    decision = decide_retrain(report, config.retrain, config.drift)
    return MonitorResult(production, report, decision, reference, current)


def retrain_params(end: datetime, months: int) -> dict[str, Any]:
    """A window of ``months`` ending at ``end``: train on all but the last month, whose first half
    validates and second half tests (the gate's holdout)."""
    end = end.astimezone(UTC) if end.tzinfo else end.replace(tzinfo=UTC)
    start = _add_months(end, -months)
    last = _add_months(end, -1)
    middle = last + (end - last) / 2
    middle = middle.replace(hour=0, minute=0, second=0, microsecond=0)
    return {"start": _iso(start), "valid_from": _iso(last), "test_from": _iso(middle), "end": _iso(end)}


def _add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.year * 12 + moment.month - 1 + months
    return (
        moment.replace(
            year=month_index // 12, month=month_index % 12 + 1, day=1, hour=0, minute=0, second=0, microsecond=0
        )
        if moment.day == 1
        else _add_months(moment.replace(day=1), months) + timedelta(days=moment.day - 1)
    )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
