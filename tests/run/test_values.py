"""Step output values as artifacts: tables, bytes, JSON, and dataset versions by reference."""

from __future__ import annotations

import polars as pl
import pytest

from loopline.core import DatasetRef
from loopline.core.errors import IntegrityError
from loopline.run._values import load_value, save_value
from loopline.store import Store


def dataset_with_one_part(store: Store, name: str, ids: list[int]) -> DatasetRef:
    store.datasets.set_schema(name, {"id": "Int64"})
    digest = store.artifacts.put_table(pl.DataFrame({"id": ids}))
    store.datasets.commit_batch(name, "src", digest=digest, rows=len(ids), size=8, position=len(ids))
    version = store.datasets.create_version(name)
    return DatasetRef(name, version.version, version.checksum)


@pytest.mark.parametrize("value", [pl.DataFrame({"a": [1, 2]}), b"\x00raw", {"k": [1, "two"]}])
def test_values_come_back_as_they_went_in(store: Store, value: object) -> None:
    loaded = load_value(store, save_value(store, value))
    assert loaded.equals(value) if isinstance(value, pl.DataFrame) else loaded == value


def test_a_dataset_ref_is_stored_as_a_reference_and_loads_the_version_rows(store: Store) -> None:
    ref = dataset_with_one_part(store, "d", [1, 2, 3])
    stored = save_value(store, ref)
    assert stored["kind"] == "dataset"
    assert store.artifacts.get_json(stored["digest"]) == {"dataset": "d", "version": 1, "checksum": ref.checksum}
    assert save_value(store, DatasetRef("d", 1, ref.checksum)) == stored  # same version, same identity
    assert load_value(store, stored)["id"].to_list() == [1, 2, 3]


def test_a_reference_whose_checksum_no_longer_matches_is_refused(store: Store) -> None:
    ref = dataset_with_one_part(store, "d", [1])
    stale = save_value(store, DatasetRef("d", ref.version, "0" * 64))
    with pytest.raises(IntegrityError, match=r"dataset 'd' version 1 has checksum .* Start a new run"):
        load_value(store, stale)
