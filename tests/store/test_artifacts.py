from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopline.core.errors import IntegrityError, NotFoundError
from loopline.store import ArtifactStore, Store


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


def test_put_bytes_stores_under_two_level_sha256_path(artifacts: ArtifactStore) -> None:
    digest = artifacts.put_bytes(b"hello")
    assert digest == hashlib.sha256(b"hello").hexdigest()
    assert (artifacts.root / digest[:2] / digest).read_bytes() == b"hello"
    assert artifacts.get_bytes(digest) == b"hello"
    assert artifacts.exists(digest)


def test_put_bytes_is_idempotent_and_leaves_no_temp_files(artifacts: ArtifactStore) -> None:
    first = artifacts.put_bytes(b"same")
    second = artifacts.put_bytes(b"same")
    assert first == second
    assert [p.name for p in (artifacts.root / first[:2]).iterdir()] == [first]


def test_put_bytes_rewrites_a_truncated_blob(artifacts: ArtifactStore) -> None:
    digest = artifacts.put_bytes(b"complete content")
    artifacts.path(digest).write_bytes(b"compl")
    assert artifacts.put_bytes(b"complete content") == digest
    assert artifacts.get_bytes(digest) == b"complete content"


def test_table_round_trip(artifacts: ArtifactStore) -> None:
    df = pl.DataFrame({"a": [1, 2, None], "b": ["x", None, "z"], "c": [0.5, 1.5, 2.5]})
    digest = artifacts.put_table(df)
    assert artifacts.get_table(digest).equals(df)
    assert artifacts.put_table(df) == digest


def test_json_round_trip_is_canonical(artifacts: ArtifactStore) -> None:
    digest = artifacts.put_json({"b": [1, 2], "a": {"y": None, "x": 1.5}})
    assert digest == artifacts.put_json({"a": {"x": 1.5, "y": None}, "b": [1, 2]})
    assert artifacts.get_json(digest) == {"a": {"x": 1.5, "y": None}, "b": [1, 2]}
    assert artifacts.get_bytes(digest) == b'{"a":{"x":1.5,"y":null},"b":[1,2]}'


def test_corrupted_blob_raises_integrity_error(artifacts: ArtifactStore) -> None:
    digest = artifacts.put_bytes(b"original")
    artifacts.path(digest).write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match=r"is corrupted: its bytes hash to .*Delete .* and re-run"):
        artifacts.get_bytes(digest)


def test_missing_blob_raises_not_found(artifacts: ArtifactStore) -> None:
    digest = hashlib.sha256(b"never stored").hexdigest()
    assert not artifacts.exists(digest)
    with pytest.raises(NotFoundError, match=f"artifact {digest} does not exist.*re-run the step"):
        artifacts.get_bytes(digest)


BAD_DIGESTS = [
    "../../etc/passwd",
    "../" + "a" * 61,
    "/" + "a" * 63,
    "ab/" + "c" * 61,
    "A" * 64,
    "a" * 63,
    "a" * 65,
    "a" * 64 + "\n",
    "g" * 64,
    "",
]


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_malformed_digest_is_rejected_before_touching_the_filesystem(tmp_path: Path, digest: str) -> None:
    artifacts = ArtifactStore(tmp_path / "never-created")
    for call in (artifacts.get_bytes, artifacts.exists, artifacts.get_table, artifacts.get_json):
        with pytest.raises(IntegrityError, match="is not an artifact digest.*64-character lowercase hex"):
            call(digest)
    assert not artifacts.root.exists()


def test_store_open_uses_the_given_artifact_root(store: Store, tmp_path: Path) -> None:
    digest = store.artifacts.put_json([1, 2, 3])
    assert (tmp_path / "artifacts" / digest[:2] / digest).is_file()


@settings(max_examples=25, deadline=None)
@given(data=st.binary(max_size=2048))
def test_any_bytes_round_trip(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    artifacts = ArtifactStore(tmp_path_factory.getbasetemp() / "property")
    assert artifacts.get_bytes(artifacts.put_bytes(data)) == data
