"""Files behind fsspec URLs ingest like local ones: listing, manifests, compression, hive partitions."""

from __future__ import annotations

import gzip
import io
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import fsspec
import polars as pl
import pytest

from loopline import DataError
from loopline.core.errors import MissingExtraError
from loopline.ingest import SOURCES, Limits, Source
from loopline.ingest._file_locations import LocalFiles, file_location
from loopline.testing import check_source


@pytest.fixture
def bucket() -> Iterator[str]:
    """A fresh folder in fsspec's in-memory filesystem, removed afterwards."""
    root = f"memory://bucket-{uuid.uuid4().hex[:8]}"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


def make(path: str, **config: Any) -> Source:
    cls = SOURCES.get("file")
    return cls(cls.Config.model_validate({"path": path, **config}))


def put(url: str, data: bytes) -> None:
    with fsspec.open(url, "wb") as handle:
        handle.write(data)


def rows(source: Source, position: Any = None) -> list[dict[str, Any]]:
    return [r for b in source.batches(position, limits=Limits(max_rows=100)) for r in b.rows.to_dicts()]


def test_a_url_source_conforms(bucket: str) -> None:
    counter = iter(range(1000))

    def produce(records: list[dict[str, Any]]) -> None:
        put(f"{bucket}/part-{next(counter):04d}.csv", pl.DataFrame(records).write_csv().encode())

    check_source(
        lambda: make(f"{bucket}/*.csv"),
        produce,
        key="id",
        rows=lambda start, n: [{"id": i, "x": i * 0.5} for i in range(start, start + n)],
    )


def test_a_prefix_with_hive_folders_compressed_csv_and_parquet(bucket: str) -> None:
    put(f"{bucket}/lake/year=2024/a.csv.gz", gzip.compress(b"id,v\n1,0.5\n2,1.5\n"))
    buffer = io.BytesIO()
    pl.DataFrame({"id": [3], "v": [2.5]}).write_parquet(buffer)
    put(f"{bucket}/lake/year=2025/b.parquet", buffer.getvalue())
    put(f"{bucket}/lake/notes.txt", b"not data")
    got = rows(make(f"{bucket}/lake"))
    assert sorted((r["id"], r["year"]) for r in got) == [(1, 2024), (2, 2024), (3, 2025)]


def test_the_manifest_names_full_urls_and_a_changed_object_is_a_dead_letter(bucket: str) -> None:
    url = f"{bucket}/data.csv"
    put(url, b"id\n1\n2\n")
    batches = list(make(url).batches(None))
    done = batches[-1].position
    (key,) = done["files"]
    assert key.startswith("memory://") and key.endswith(url.removeprefix("memory://"))  # the canonical URL
    put(url, b"id\n1\n2\n3\n")
    again = list(make(url).batches(done))
    assert sum(b.rows.height for b in again) == 0
    assert [r.position for b in again for r in b.rejects] == [{"path": key}]


def test_a_missing_object_is_a_data_error_naming_the_url(bucket: str) -> None:
    with pytest.raises(DataError, match="does not exist"):
        rows(make(f"{bucket}/nothing.csv"))


def test_an_object_store_without_its_package_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # not installed, whatever this machine has
    monkeypatch.delitem(sys.modules["fsspec.registry"]._registry, "s3", raising=False)  # no class cached either
    with pytest.raises(MissingExtraError, match=r"loopline\[s3\]"):
        rows(make("s3://some-bucket/data/*.csv"))


def test_file_urls_and_plain_paths_are_local() -> None:
    assert isinstance(file_location("file:///data/x.csv"), LocalFiles)
    assert isinstance(file_location("data/*.csv"), LocalFiles)
    assert file_location("file:///data/x.csv").path == "/data/x.csv"  # type: ignore[union-attr]
