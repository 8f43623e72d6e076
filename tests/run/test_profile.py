"""dataset_profile: computed on first request, stored with its version, read back after."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

import loopline.run._profile as profiling
from loopline.core.errors import NotFoundError
from loopline.prep import profile_table
from loopline.store import Store


def add_version(store: Store, dataset: str, frame: pl.DataFrame) -> int:
    store.datasets.set_schema(dataset, {name: str(dtype) for name, dtype in frame.schema.items()})
    seq = len(store.datasets.parts(dataset))
    store.datasets.commit_batch(
        dataset, "src", digest=store.artifacts.put_table(frame), rows=frame.height, size=1, position=seq
    )
    return store.datasets.create_version(dataset).version


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The row counts profile_table was called with."""
    seen: list[int] = []

    def counting(frame: pl.DataFrame, **kwargs: Any) -> dict[str, Any]:
        seen.append(frame.height)
        return profile_table(frame, **kwargs)

    monkeypatch.setattr(profiling, "profile_table", counting)
    return seen


def test_each_version_is_profiled_once_and_stored(store: Store, calls: list[int]) -> None:
    add_version(store, "orders", pl.DataFrame({"amount": [1.0, None], "city": ["lyon", "<b>"]}))
    add_version(store, "orders", pl.DataFrame({"amount": [3.0], "city": ["lyon"]}))

    latest = profiling.dataset_profile(store, "orders")
    assert (latest["dataset"], latest["version"], latest["rows"]) == ("orders", 2, 3)
    assert latest["checksum"] == store.datasets.version("orders", 2).checksum
    first = profiling.dataset_profile(store, "orders", 1)
    assert first["rows"] == 2 and first["columns"][0]["nulls"] == 1
    assert calls == [3, 2]

    assert profiling.dataset_profile(store, "orders") == latest  # read back: nothing computed
    assert profiling.dataset_profile(store, "orders", 1) == first
    assert calls == [3, 2]
    digest = store.datasets.version("orders", 2).profile_digest
    assert digest is not None and store.artifacts.get_json(digest) == latest

    profiling.dataset_profile(store, "orders", 1, refresh=True)
    assert calls == [3, 2, 2]


def test_a_lost_or_outdated_profile_is_computed_again(store: Store, calls: list[int]) -> None:
    add_version(store, "d", pl.DataFrame({"x": [1, 2, 3]}))
    stored = profiling.dataset_profile(store, "d")
    digest = store.datasets.version("d").profile_digest
    assert digest is not None
    store.artifacts.path(digest).unlink()
    assert profiling.dataset_profile(store, "d") == stored
    store.datasets.set_profile("d", 1, store.artifacts.put_json({**stored, "format": 0}))
    assert profiling.dataset_profile(store, "d") == stored
    assert calls == [3, 3, 3]


def test_an_empty_version_has_a_profile(store: Store) -> None:
    store.datasets.set_schema("empty", {"v": "Int64", "s": "String"})
    store.datasets.create_version("empty")
    profile = profiling.dataset_profile(store, "empty")
    assert (profile["rows"], [c["name"] for c in profile["columns"]]) == (0, ["v", "s"])


def test_unknown_datasets_and_versions_are_clear(store: Store) -> None:
    with pytest.raises(NotFoundError, match="dataset 'nope' does not exist"):
        profiling.dataset_profile(store, "nope")
    add_version(store, "d", pl.DataFrame({"x": [1]}))
    with pytest.raises(NotFoundError, match="dataset 'd' has no version 5"):
        profiling.dataset_profile(store, "d", 5)
