"""Watching the production model: its logged traffic against its training reference, and the verdict.

What happens next (retrain, gate, promote) is the loop's policy: see :mod:`loopline.run.policy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import polars as pl

from loopline.core.config import MonitorConfig
from loopline.core.errors import ConfigError, DataError
from loopline.core.records import RetrainDecision
from loopline.monitor import DriftReport, ReferenceProfile, drift_report
from loopline.run.policy import decide_retrain

if TYPE_CHECKING:
    from loopline.core.records import Features
    from loopline.store import ModelVersion, Store


@dataclass(frozen=True)
class MonitorResult:
    """The drift verdict for a production model's logged traffic and what to do about it."""

    production: ModelVersion
    report: DriftReport
    decision: RetrainDecision
    reference: pl.DataFrame
    current: pl.DataFrame


@dataclass(frozen=True)
class MonitoredVersion:
    """The production version of a model with what its traffic is compared against: its input ``features``,
    its stored ``reference`` sample (rows) and its ``profile`` (None for a version stored before profiles)."""

    production: ModelVersion
    features: Features
    reference: pl.DataFrame
    profile: ReferenceProfile | None

    @property
    def drift_reference(self) -> pl.DataFrame | ReferenceProfile:
        """The profile of the whole training split when the version has one (faster, and more than the sample)."""
        return self.reference if self.profile is None else self.profile


def monitored_version(store: Store, model: str) -> MonitoredVersion:
    """The production version of ``model`` and its drift reference; ConfigError without a production version,
    DataError when the version records no reference or no feature lists (with the fix)."""
    production = store.models.production(model)
    if production is None:
        raise ConfigError(
            f"model {model!r} has no production version to monitor.",
            hint=f"Promote one with `loopline models promote {model} VERSION`.",
        )
    if production.reference_digest is None:
        raise DataError(
            f"model {model!r} v{production.version} has no drift reference.",
            hint="Retrain it with loopline's train step, which stores one.",
        )
    features = production.typed_config.features
    if not features.names:
        raise DataError(
            f"model {model!r} v{production.version} records no feature lists to compare.",
            hint="Retrain it with loopline's train step, which records them.",
        )
    reference = store.artifacts.get_table(production.reference_digest)
    profile = (
        None
        if production.profile_digest is None
        else ReferenceProfile.from_json(store.artifacts.get_bytes(production.profile_digest).decode())
    )
    return MonitoredVersion(production, features, reference, profile)


def monitor_model(store: Store, config: MonitorConfig, *, since: datetime | None = None) -> MonitorResult:
    """Compare the production model's training reference with the traffic it answered."""
    monitored = monitored_version(store, config.model)
    production, features, reference = monitored.production, monitored.features, monitored.reference
    current = store.predictions.read(config.model, since=since, version=production.version)
    if current.height == 0:
        raise DataError(
            f"no logged predictions for {config.model!r} v{production.version} yet.",
            hint="Send traffic to `loopline serve` first, then run `loopline monitor` again.",
        )
    report = drift_report(
        monitored.drift_reference,
        current,
        numeric=list(features.numeric),
        categorical=list(features.categorical),
        config=config.drift,
        reference_rows=reference,  # the rows sample: the domain classifier's reference (monitor.drift.multivariate)
    )
    decision = decide_retrain(report, config.retrain, config.drift)
    return MonitorResult(production, report, decision, reference, current)
