"""The artifact-store contract, on every backend: a local folder, fsspec on a local folder (temp name + move),
fsspec in memory, and S3 (a fresh bucket on the moto test server)."""

from __future__ import annotations

import hashlib
import multiprocessing
import pickle
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopline.core.errors import ConfigError, IntegrityError, MissingExtraError, NotFoundError, StoreError
from loopline.store import (
    ArtifactEntry,
    ArtifactStore,
    FsspecArtifactStore,
    LocalArtifactStore,
    Store,
    open_artifacts,
)

from ._raw import Raw
from ._workers import artifacts_at, put_blobs_until_killed, put_same_blobs

WITH_S3 = True  # the store-level test at the end runs on the S3 backend of conftest.py too
ARTIFACT_BACKENDS = ["local", "fsspec-file", "memory", pytest.param("s3", marks=pytest.mark.s3)]
PROCESS_BACKENDS = ["local", "fsspec-file", pytest.param("s3", marks=pytest.mark.s3)]  # memory is per process


def blob(digest: str) -> str:
    return f"{digest[:2]}/{digest}"


def _location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty location of the requested kind (``fsspec-file``: the fsspec store on a local folder)."""
    kind = request.param
    if kind == "memory":
        url = f"memory://loopline-test-{uuid.uuid4().hex}"
        yield url
        memory = fsspec.filesystem("memory")
        if memory.exists(url):
            memory.rm(url, recursive=True)
    elif kind == "s3":
        yield request.getfixturevalue("s3_url")
    else:
        yield ("file://" if kind == "fsspec-file" else "") + str(tmp_path / "artifacts")


@pytest.fixture(params=ARTIFACT_BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from _location(request, tmp_path)


@pytest.fixture(params=PROCESS_BACKENDS)
def shared_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A location several processes can reach."""
    yield from _location(request, tmp_path)


@pytest.fixture
def artifacts(location: str) -> ArtifactStore:
    return artifacts_at(location)


@pytest.fixture
def raw(location: str, monkeypatch: pytest.MonkeyPatch) -> Raw:
    return Raw(location, monkeypatch)


def test_put_bytes_stores_under_two_level_sha256_path(artifacts: ArtifactStore, raw: Raw) -> None:
    digest = artifacts.put_bytes(b"hello")
    assert digest == hashlib.sha256(b"hello").hexdigest()
    assert raw.read(blob(digest)) == b"hello"
    assert artifacts.get_bytes(digest) == b"hello"
    assert artifacts.exists(digest)


def test_put_bytes_is_idempotent_and_leaves_no_temp_files(artifacts: ArtifactStore, raw: Raw) -> None:
    first = artifacts.put_bytes(b"same")
    second = artifacts.put_bytes(b"same")
    assert first == second
    assert raw.names() == [blob(first)]


def test_put_bytes_rewrites_a_truncated_blob(artifacts: ArtifactStore, raw: Raw) -> None:
    digest = artifacts.put_bytes(b"complete content")
    raw.write(blob(digest), b"compl")
    assert artifacts.put_bytes(b"complete content") == digest
    assert artifacts.get_bytes(digest) == b"complete content"


def test_table_round_trip(artifacts: ArtifactStore, raw: Raw) -> None:
    df = pl.DataFrame({"a": [1, 2, None], "b": ["x", None, "z"], "c": [0.5, 1.5, 2.5]})
    digest = artifacts.put_table(df)
    assert artifacts.get_table(digest).equals(df)
    assert artifacts.put_table(df) == digest
    assert raw.read(blob(digest))[:4] == b"PAR1"  # stored as Parquet
    assert raw.names() == [blob(digest)]


def test_json_round_trip_is_canonical(artifacts: ArtifactStore) -> None:
    digest = artifacts.put_json({"b": [1, 2], "a": {"y": None, "x": 1.5}})
    assert digest == artifacts.put_json({"a": {"x": 1.5, "y": None}, "b": [1, 2]})
    assert artifacts.get_json(digest) == {"a": {"x": 1.5, "y": None}, "b": [1, 2]}
    assert artifacts.get_bytes(digest) == b'{"a":{"x":1.5,"y":null},"b":[1,2]}'


def test_put_file_stores_a_copy(artifacts: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "part.bin"
    source.write_bytes(b"a file's bytes")
    digest = artifacts.put_file(source)
    source.write_bytes(b"changed afterwards")
    assert digest == hashlib.sha256(b"a file's bytes").hexdigest()
    assert artifacts.get_bytes(digest) == b"a file's bytes"


def test_tampered_blob_is_detected_on_every_read(artifacts: ArtifactStore, raw: Raw) -> None:
    digest = artifacts.put_table(pl.DataFrame({"x": [1, 2, 3]}))
    raw.write(blob(digest), b"tampered")
    message = rf"artifact {digest} is corrupted: its bytes hash to {hashlib.sha256(b'tampered').hexdigest()}"
    for read in (artifacts.get_bytes, artifacts.get_table, artifacts.get_json):
        with pytest.raises(IntegrityError, match=message + r".*Delete .* and re-run the step"):
            read(digest)
    with pytest.raises(IntegrityError, match=message):
        _read_verified_file(artifacts, digest)
    with artifacts.open(digest) as handle:  # the raw stream is what is stored, unverified
        assert handle.read() == b"tampered"


def _read_verified_file(artifacts: ArtifactStore, digest: str) -> bytes:
    with artifacts.verified_file(digest) as path:
        return path.read_bytes()


def test_verified_file_is_a_local_file_with_the_blob(artifacts: ArtifactStore) -> None:
    digest = artifacts.put_bytes(b"scan me")
    with artifacts.verified_file(digest) as path:
        assert path.read_bytes() == b"scan me"
    assert path.exists() == isinstance(artifacts, LocalArtifactStore)  # a download is removed afterwards


def test_missing_blob_raises_not_found(artifacts: ArtifactStore) -> None:
    digest = hashlib.sha256(b"never stored").hexdigest()
    assert not artifacts.exists(digest)
    with pytest.raises(NotFoundError, match=f"artifact {digest} does not exist.*re-run the step"):
        artifacts.get_bytes(digest)
    with pytest.raises(NotFoundError, match=f"artifact {digest} does not exist"):
        artifacts.open(digest)
    with pytest.raises(NotFoundError, match=f"artifact {digest} does not exist"), artifacts.verified_file(digest):
        pass


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
def test_malformed_digest_is_rejected_before_any_io(artifacts: ArtifactStore, raw: Raw, digest: str) -> None:
    calls = (
        artifacts.get_bytes,
        artifacts.exists,
        artifacts.get_table,
        artifacts.get_json,
        artifacts.open,
        artifacts.local_path,
        lambda d: artifacts.verified_file(d).__enter__(),
    )
    for call in calls:
        with pytest.raises(IntegrityError, match="is not an artifact digest.*64-character lowercase hex"):
            call(digest)
    assert raw.names() == []


@pytest.mark.parametrize("name", ["../outside", "ab/../../outside", "/etc/passwd", "ab/cd/ef", "README"])
def test_remove_stale_refuses_names_that_are_not_the_stores(artifacts: ArtifactStore, raw: Raw, name: str) -> None:
    raw.write(".tmp-keep.part", b"x")
    with pytest.raises(IntegrityError, match="is not a blob or temp object of the artifact store"):
        artifacts.remove_stale(ArtifactEntry(name, 1, 0.0, None), modified_before=float("inf"))
    assert raw.names() == [".tmp-keep.part"]


def test_entries_list_blobs_and_temp_objects_and_nothing_else(artifacts: ArtifactStore, raw: Raw) -> None:
    digest = artifacts.put_bytes(b"a blob")
    other = hashlib.sha256(b"in the wrong shard").hexdigest()
    wrong_shard = "00" if other[:2] != "00" else "01"
    shard = digest[:2]
    strangers = ["README", f"{shard}/notes.txt", f"zz/{other}", f"{wrong_shard}/{other}", f"{shard}/cd/{digest}"]
    for name in [".tmp-1.part", f"{shard}/.tmp-2.part", *strangers]:
        raw.write(name, b"not a blob")
    entries = artifacts.entries()
    assert [(e.name, e.digest, e.size) for e in entries] == [
        (".tmp-1.part", None, 10),
        (f"{shard}/.tmp-2.part", None, 10),
        (blob(digest), digest, 6),
    ]
    assert all(e.mtime > 0 for e in entries)


def test_remove_stale_keeps_what_was_modified_since(artifacts: ArtifactStore, raw: Raw) -> None:
    digest = artifacts.put_bytes(b"orphan")
    (entry,) = artifacts.entries()
    assert not artifacts.remove_stale(entry, modified_before=entry.mtime)  # touched at or after: kept
    assert artifacts.exists(digest)
    assert artifacts.remove_stale(entry, modified_before=entry.mtime + 1)
    assert not artifacts.exists(digest) and raw.names() == []
    assert not artifacts.remove_stale(entry, modified_before=entry.mtime + 1)  # already gone


def test_storing_the_same_bytes_again_refreshes_the_modification_time(artifacts: ArtifactStore, raw: Raw) -> None:
    digest = artifacts.put_bytes(b"stored twice")
    raw.age_everything()  # a local blob gets an old mtime; on object storage, time passes
    (aged,) = artifacts.entries()
    artifacts.put_bytes(b"stored twice")
    (again,) = artifacts.entries()
    assert again.digest == digest and again.mtime > aged.mtime
    assert artifacts.get_bytes(digest) == b"stored twice"


def test_two_processes_store_the_same_blobs_at_once(shared_location: str) -> None:
    location = shared_location
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results: Any = ctx.Queue()
    count, size = 20, 300_000
    workers = [ctx.Process(target=put_same_blobs, args=(location, barrier, count, size, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=180) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert [detail for status, detail in outcomes if status == "error"] == []
    assert outcomes[0][1] == outcomes[1][1] and len(set(outcomes[0][1])) == count
    artifacts = artifacts_at(location)
    assert sorted(e.name for e in artifacts.entries()) == sorted(blob(d) for d in outcomes[0][1])  # no temp left
    for digest in outcomes[0][1]:
        assert hashlib.sha256(artifacts.get_bytes(digest)).hexdigest() == digest


def test_a_killed_writer_never_leaves_a_partial_blob_under_a_digest(
    shared_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    location, raw = shared_location, Raw(shared_location, monkeypatch)
    ctx = multiprocessing.get_context("spawn")
    for _ in range(4):
        ready = ctx.Event()
        writer = ctx.Process(target=put_blobs_until_killed, args=(location, ready, 6_000_000))
        writer.start()
        assert ready.wait(timeout=120), "the writer did not store its first blob"
        writer.join(timeout=random.uniform(0.05, 0.6))
        assert writer.exitcode is None, "the writer stopped before it was killed"
        writer.kill()  # SIGKILL, wherever it is in a write
        writer.join(timeout=30)
    artifacts = artifacts_at(location)
    blobs = [e for e in artifacts.entries() if e.digest is not None]
    assert len(blobs) >= 4
    for entry in blobs:  # every object under a digest is whole: its bytes hash to its name
        assert hashlib.sha256(raw.read(entry.name)).hexdigest() == entry.digest


def test_a_store_pickles_as_its_location(artifacts: ArtifactStore) -> None:
    digest = artifacts.put_bytes(b"sent to a worker")
    copy = pickle.loads(pickle.dumps(artifacts))
    assert type(copy) is type(artifacts) and copy.location == artifacts.location
    assert copy.get_bytes(digest) == b"sent to a worker"


def test_local_paths_only_for_a_local_folder(artifacts: ArtifactStore, location: str, tmp_path: Path) -> None:
    digest = artifacts.put_bytes(b"where am I")
    path = artifacts.local_path(digest)
    if "://" in location and not location.startswith("file://"):
        assert path is None
        assert not artifacts.is_inside(tmp_path / "artifacts" / "x")
        return
    assert path == tmp_path / "artifacts" / digest[:2] / digest and path.read_bytes() == b"where am I"
    assert artifacts.is_inside(tmp_path / "artifacts" / "ab" / "out.parquet")
    assert artifacts.is_inside(tmp_path / "elsewhere" / ".." / "artifacts")
    assert not artifacts.is_inside(tmp_path / "elsewhere")


@pytest.mark.parametrize(
    ("location", "kind"),
    [
        ("/srv/artifacts", LocalArtifactStore),
        ("relative/artifacts", LocalArtifactStore),
        ("file:///srv/artifacts", LocalArtifactStore),
        ("memory://bucket/prefix", FsspecArtifactStore),
        ("s3://bucket/prefix", FsspecArtifactStore),
    ],
)
def test_open_artifacts_picks_the_backend_by_scheme(location: str, kind: type[ArtifactStore]) -> None:
    opened = open_artifacts(location)
    assert type(opened) is kind
    assert open_artifacts(opened.location).location == opened.location  # the location reopens it


def test_open_artifacts_keeps_a_path_as_a_local_folder(tmp_path: Path) -> None:
    opened = open_artifacts(tmp_path / "a")
    assert isinstance(opened, LocalArtifactStore) and opened.root == tmp_path / "a"
    assert open_artifacts(opened) is opened


@pytest.mark.parametrize(
    "url", ["s3://AKIAEXAMPLEKEY:wJalrXUtnFEMIK7MDENG@bucket/prefix", "s3://AKIAEXAMPLEKEY@bucket/prefix"]
)
def test_credentials_in_the_url_are_refused_and_never_shown(url: str, tmp_path: Path) -> None:
    for call in (lambda: open_artifacts(url), lambda: FsspecArtifactStore(url), lambda: Store.open(None, url)):
        with pytest.raises(
            ConfigError, match=r"s3://\*\*\*@bucket/prefix carries credentials.*AWS_ACCESS_KEY_ID"
        ) as info:
            call()
        assert "AKIAEXAMPLEKEY" not in str(info.value) and "wJalrXUtnFEMIK7MDENG" not in str(info.value)


def test_credentials_in_the_environment_variable_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOOPLINE_HOME", str(tmp_path))
    monkeypatch.setenv("LOOPLINE_ARTIFACTS_URL", "s3://key:hunter2@bucket/prefix")
    with pytest.raises(ConfigError, match="carries credentials") as info:
        Store.open()
    assert "hunter2" not in str(info.value) and "key:" not in str(info.value)
    assert not (tmp_path / "loopline.db").exists()  # refused before the metadata store is created


def test_an_unknown_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"nope://bucket/x cannot be opened.*LOOPLINE_ARTIFACTS_URL"):
        open_artifacts("nope://bucket/x")


def test_a_missing_fsspec_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "gcsfs", None)  # not installed, whatever this machine has
    with pytest.raises(MissingExtraError, match=r"'gcsfs' is not installed.*pip install 'loopline\[gcs\]'"):
        open_artifacts("gs://bucket/prefix")


@pytest.mark.s3
def test_a_missing_bucket_is_a_store_error_without_secrets(s3_env: str) -> None:
    artifacts = open_artifacts(f"s3://loopline-no-such-bucket-{uuid.uuid4().hex[:8]}/prefix")
    with pytest.raises(StoreError, match=r"cannot store artifact .* at s3://loopline-no-such-bucket-.*bucket") as info:
        artifacts.put_bytes(b"x")
    assert "loopline-test-secret" not in str(info.value) and "AWS_ENDPOINT_URL" in str(info.value)
    assert "secret" not in repr(artifacts)


@settings(max_examples=25, deadline=None)
@given(data=st.binary(max_size=2048))
def test_any_bytes_round_trip(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    artifacts = LocalArtifactStore(tmp_path_factory.getbasetemp() / "property")
    assert artifacts.get_bytes(artifacts.put_bytes(data)) == data


def test_store_open_uses_the_given_artifacts(
    store: Store, artifact_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = store.artifacts.put_json([1, 2, 3])
    assert store.artifacts.location == artifact_location
    assert Raw(artifact_location, monkeypatch).read(blob(digest)) == b"[1,2,3]"


# -- a full disk (issue 11, item 6) -----------------------------------------------------------------


@pytest.mark.parametrize("write", ["bytes", "table", "file"])
def test_a_full_disk_is_reported_as_itself_and_leaves_nothing_partial(
    tiny_disk: Path, tmp_path: Path, write: str
) -> None:
    store = LocalArtifactStore(tiny_disk / "artifacts")
    small = store.put_bytes(b"kept")
    big = tmp_path / "big.bin"
    rng = random.Random(0)
    big.write_bytes(rng.randbytes(3 * 2**20))
    action = {
        "bytes": lambda: store.put_bytes(big.read_bytes()),
        "table": lambda: store.put_table(pl.DataFrame({"x": [rng.random() for _ in range(600_000)]})),
        "file": lambda: store.put_file(big),
    }[write]
    with pytest.raises(StoreError, match=f"no space left on the device holding {tiny_disk / 'artifacts'} \\(needs"):
        action()
    assert [e.name for e in store.entries()] == [f"{small[:2]}/{small}"]  # no temp file, no partial blob
    assert not list(tiny_disk.rglob(".tmp-*"))
