"""Test helpers shared by modules that need stored candidates and datasets: a toy table, a registered
logistic regression on it, and a dataset version holding a frame."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import numpy as np
import polars as pl

from loopline.core.records import Candidate, Features, Timings, TrainReport
from loopline.store import Store
from loopline.store.models import ModelVersion
from loopline.train import ModelBundle, TrainSpec, train_candidate


def frame(rows: int, seed: int) -> pl.DataFrame:
    """``x`` (number), ``group`` (a/b) and a ``label`` both predict."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    group = rng.choice(["a", "b"], size=rows)
    label = (x + (group == "a") * 1.0 + rng.normal(scale=0.7, size=rows)) > 0.3
    return pl.DataFrame({"x": x, "group": group, "label": label})


def register(store: Store, params: dict[str, Any] | None = None) -> ModelVersion:
    """Train a logistic regression on the toy table and register it as the next version of ``churn``."""
    spec = TrainSpec(
        target="label", numeric=["x"], categorical=["group"], estimator="logistic_regression", params=params or {}
    )
    result = train_candidate(frame(300, 1), frame(100, 2), spec)
    return store.models.register_candidate("churn", result.candidate(spec, data_fingerprint="fp"))


def stub_candidate(bundle: bytes = b"bundle", reference: pl.DataFrame | None = None) -> Candidate:
    """A candidate whose bundle is opaque bytes (the repository does not look inside), for store tests."""
    report = TrainReport(
        algorithm="a",
        metrics={},
        params={},
        timings=Timings(),
        input_schema=(),
        features=Features(),
        target="y",
        task="binary",
        data_fingerprint="f",
        rows={},
        step_config={},
    )
    return Candidate(bundle, reference, report)


def register_bundle(
    store: Store, name: str, bundle: ModelBundle, *, reference: pl.DataFrame | None = None, promote: bool = False
) -> ModelVersion:
    """Store a trained ``bundle`` (and its drift ``reference``) as the next version of ``name``; maybe promote it."""
    version = store.models.register(
        name=name,
        algorithm="test",
        bundle_digest=store.artifacts.put_bytes(bundle.to_bytes()),
        reference_digest=None if reference is None else store.artifacts.put_table(reference),
        metrics={},
        params={},
        config={},
        input_schema=bundle.input_schema,
        data_fingerprint="test",
        run_id=None,
        timings={},
    )
    if promote:
        store.models.promote(name, version.version)
    return version


def put_dataset(store: Store, name: str, df: pl.DataFrame) -> int:
    """Commit ``df`` as one part of dataset ``name`` and return the new version number."""
    store.datasets.set_schema(name, {c: str(t) for c, t in df.schema.items()})
    digest = store.artifacts.put_table(df)
    store.datasets.commit_batch(name, "src", digest=digest, rows=df.height, size=1, position={"offset": df.height})
    return store.datasets.create_version(name).version


def refused_type_bundle(bundle: ModelBundle) -> bytes:
    """``bundle``'s bytes with its estimator wrapped in a scikit-learn ``Pipeline``: a well-formed bundle whose
    top-level type loopline's allowlist refuses."""
    import skops.io as sio
    from sklearn.pipeline import Pipeline

    with zipfile.ZipFile(io.BytesIO(bundle.to_bytes())) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["estimator.skops"] = sio.dumps(Pipeline([("model", bundle.estimator)]))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return buffer.getvalue()
