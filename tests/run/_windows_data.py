"""A production model with a drift reference, and prediction rows to log, for the window tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from loopline.core.config import AlertRule, MonitorConfig
from loopline.store import PredictionRow, Store

T0 = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)  # a Monday
FEATURES = {"numeric": ["age"], "categorical": ["city"]}


def production(store: Store, name: str = "churn") -> int:
    """Register and promote a version whose reference has ages around 40 and cities a/b."""
    rng = np.random.default_rng(0)
    reference = pl.DataFrame({"age": rng.normal(40, 5, 500), "city": rng.choice(["a", "b"], 500)})
    version = store.models.register(
        name=name,
        algorithm="logistic_regression",
        bundle_digest=store.artifacts.put_bytes(b"bundle"),
        reference_digest=store.artifacts.put_table(reference),
        metrics={},
        params={},
        config={"features": FEATURES},
        input_schema=[],
        data_fingerprint="f" * 64,
        run_id=None,
        timings={},
    )
    store.models.promote(name, version.version)
    return version.version


def rows(
    start: datetime,
    count: int,
    *,
    every: timedelta = timedelta(minutes=1),
    age: float = 40.0,
    city: str = "a",
    latency_ms: float = 2.0,
    prefix: str = "p",
    model: str = "churn",
    offset: int = 0,
) -> list[PredictionRow]:
    """``count`` predictions from ``start``, one every ``every``; ages spread around ``age``."""
    rng = np.random.default_rng(offset + 1)
    ages = rng.normal(age, 5, count)
    return [
        PredictionRow(
            prediction_id=f"{prefix}{offset + i:07d}",
            model_name=model,
            model_version=1,
            created_at=start + i * every,
            inputs={"age": float(ages[i]), "city": city if i % 2 else "a"},
            output={"prediction": i % 2},
            latency_ms=latency_ms,
        )
        for i in range(count)
    ]


def config(alerts: Sequence[dict[str, object]] = (), **extra: object) -> MonitorConfig:
    return MonitorConfig(model="churn", alerts=[AlertRule(**rule) for rule in alerts], **extra)  # type: ignore[arg-type]
