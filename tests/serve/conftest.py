from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from loopline.store import ModelVersion, Store
from loopline.train import TrainSpec, train_candidate


def make_frame(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    group = rng.choice(["a", "b", "c"], size=rows)
    label = (x + (group == "a") * 1.5 + rng.normal(scale=0.5, size=rows)) > 0.5
    return pl.DataFrame({"x": x, "n": rng.integers(0, 10, rows), "group": group, "label": label})


def register(store: Store, *, estimator: str = "logistic_regression", seed: int = 0) -> ModelVersion:
    train, valid = make_frame(400, seed), make_frame(200, seed + 1)
    result = train_candidate(
        train,
        valid,
        TrainSpec(target="label", numeric=["x", "n"], categorical=["group"], estimator=estimator, seed=seed),
    )
    return store.models.register(
        name="toy",
        algorithm=estimator,
        bundle_digest=store.artifacts.put_bytes(result.bundle.to_bytes()),
        reference_digest=store.artifacts.put_table(train.select(["x", "n", "group"])),
        metrics=result.metrics,
        params=result.params,
        config={"features": {"numeric": ["x", "n"], "categorical": ["group"]}},
        input_schema=result.bundle.input_schema,
        data_fingerprint="test",
        run_id=None,
        timings=result.timings,
    )


def register_bytes(store: Store, data: bytes, name: str = "toy") -> ModelVersion:
    """Register ``data`` as the next version of ``name`` with the other fields of ``toy`` version 1 (a store
    opened without a bundle check takes any bytes whose digest matches)."""
    first = store.models.get("toy", 1)
    skip = {"name", "version", "stage", "bundle_digest", "created_at", "promoted_at", "archived_at", "aliases"}
    fields = {k: v for k, v in vars(first).items() if k not in skip}
    return store.models.register(name=name, bundle_digest=store.artifacts.put_bytes(data), **fields)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'loopline.db'}", tmp_path / "artifacts")
    version = register(opened)
    opened.models.promote("toy", version.version)
    yield opened
    opened.close()
