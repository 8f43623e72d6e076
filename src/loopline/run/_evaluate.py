"""Re-scoring stored model versions on a dataset version, recorded with each version.

An old candidate can be reconsidered on today's data: its bundle is read from the store (digest verified,
loaded through the safe bundle loader), scored on the labelled rows of one dataset version, and the
metrics are stored in the version's ``metrics`` under ``eval:DATASET@vN``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopline.bundle import ModelBundle
from loopline.core.errors import DataError

if TYPE_CHECKING:
    import polars as pl

    from loopline.store import Store
    from loopline.store.models import ModelVersion


@dataclass(frozen=True)
class Evaluation:
    """The metrics of one model version on one dataset version, as recorded under ``key``."""

    name: str
    version: int
    dataset: str
    dataset_version: int
    rows: int
    key: str
    metrics: dict[str, Any]


def evaluation_key(dataset: str, version: int) -> str:
    """The key a dataset version's evaluation is recorded under in a model version's metrics."""
    return f"eval:{dataset}@v{version}"


def load_bundle(store: Store, found: ModelVersion) -> ModelBundle:
    """The bundle of a model version: its bytes verified against the recorded digest, then loaded safely."""
    return ModelBundle.from_bytes(store.artifacts.get_bytes(found.bundle_digest))


def evaluate_models(
    store: Store,
    name: str,
    dataset: str,
    *,
    version: int | None = None,
    all_versions: bool = False,
    dataset_version: int | None = None,
) -> list[Evaluation]:
    """Score version ``version`` of ``name`` (latest if None; every version with ``all_versions``) on
    ``dataset`` at ``dataset_version`` (latest if None) and record each result with its model version.

    Raises DataError, naming the missing column, when the dataset lacks a model's target column; nothing
    is recorded for any version in that case.
    """
    found = store.models.list(name) if all_versions else [store.models.get(name, version)]
    if not found:
        store.models.get(name)  # raises the repository's "does not exist" error
    snapshot = store.datasets.version(dataset, dataset_version)
    df = store.datasets.read(dataset, snapshot.version)
    bundles = [(model, load_bundle(store, model)) for model in found]
    for model, bundle in bundles:
        _check_target(df, bundle, model, dataset)
    key = evaluation_key(dataset, snapshot.version)
    results = []
    for model, bundle in bundles:
        metrics = bundle.evaluate(df)
        store.models.record_evaluation(model.name, model.version, key, metrics)
        results.append(Evaluation(model.name, model.version, dataset, snapshot.version, df.height, key, metrics))
    return results


def _check_target(df: pl.DataFrame, bundle: ModelBundle, model: ModelVersion, dataset: str) -> None:
    if bundle.target not in df.columns:
        raise DataError(
            f"dataset {dataset!r} has no column {bundle.target!r}, the target of model "
            f"{model.name!r} v{model.version}; its columns are {', '.join(df.columns)}.",
            column=bundle.target,
            hint="Evaluate on a labelled dataset that holds the model's target column.",
        )
