from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from _candidates import stub_candidate
from loopline.store import CheckReport, ModelVersion, StepRecord, Store
from loopline.store._tables import metadata

HOURS_AGO = 2 * 3600


def candidate(store: Store, bundle: bytes = b"bundle", name: str = "churn") -> ModelVersion:
    return store.models.register_candidate(name, stub_candidate(bundle, pl.DataFrame({"x": [1.0, 2.0]})))


def referenced_everywhere(store: Store) -> dict[str, str]:
    """One artifact behind every kind of reference the store has; returns them by where they are used."""
    model = candidate(store)
    part = store.artifacts.put_table(pl.DataFrame({"y": [1, 2, 3]}))
    store.datasets.commit_batch("flights", "csv", digest=part, rows=3, size=10, position={"line": 3})
    store.datasets.create_version("flights")
    profile = store.artifacts.put_json({"rows": 3})
    store.datasets.set_profile("flights", 1, profile)
    output = store.artifacts.put_json({"metric": 0.5})
    run_id = store.runs.create_run("p", "h", {}, {})
    now = datetime.now(UTC)
    step = StepRecord(
        "train", "train", "succeeded", "k", now, now, 0.1, {}, {"out": {"digest": output, "kind": "json"}}
    )
    store.runs.record_steps(run_id, [step])
    assert model.reference_digest is not None
    return {
        "bundle": model.bundle_digest,
        "reference": model.reference_digest,
        "part": part,
        "profile": profile,
        "output": output,
    }


def age_everything(root: Path) -> None:
    past = time.time() - HOURS_AGO
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (past, past))


def temp_file(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"half a blob")
    return path


def test_every_digest_column_of_the_schema_is_checked() -> None:
    columns = {f"{t.name}.{c.name}" for t in metadata.tables.values() for c in t.columns if "digest" in c.name}
    assert columns == {
        "models.bundle_digest",
        "models.reference_digest",
        "dataset_parts.digest",
        "dataset_versions.profile_digest",
    }


def test_a_consistent_store_is_clean(store: Store) -> None:
    digests = referenced_everywhere(store)
    report = store.check()
    assert report == CheckReport(artifacts=len(digests), referenced=len(digests))
    assert report.clean


def test_fix_removes_old_temp_files_and_orphans_and_nothing_referenced(store: Store) -> None:
    digests = referenced_everywhere(store)
    orphan = store.artifacts.put_bytes(b"nobody refers to me")
    root = store.artifacts.root
    temp_file(root, ".tmp-abc.parquet")
    temp_file(root / orphan[:2], ".tmp-def.part")
    age_everything(root)
    young_orphan = store.artifacts.put_bytes(b"a writer is about to refer to me")
    young_temp = temp_file(root, ".tmp-young.part")

    found = store.check()
    assert not found.clean
    assert [f.path for f in found.temp_files] == [".tmp-abc.parquet", ".tmp-young.part", f"{orphan[:2]}/.tmp-def.part"]
    assert [(Path(f.path).name, f.kept) for f in found.orphans] == sorted([(orphan, False), (young_orphan, True)])
    assert not any(f.removed for f in found.temp_files + found.orphans)

    fixed = store.check(fix=True)
    assert [(f.path, f.removed) for f in fixed.temp_files if not f.kept] == [
        (".tmp-abc.parquet", True),
        (f"{orphan[:2]}/.tmp-def.part", True),
    ]
    assert [Path(f.path).name for f in fixed.orphans if f.removed] == [orphan]
    assert fixed.clean
    assert not store.artifacts.exists(orphan)
    assert store.artifacts.exists(young_orphan) and young_temp.exists()
    for digest in digests.values():
        store.artifacts.get_bytes(digest)  # still there, still verifies
    again = store.check(fix=True)
    assert [Path(f.path).name for f in again.orphans] == [young_orphan] and again.clean


def test_storing_an_old_orphan_again_makes_it_young(store: Store) -> None:
    orphan = store.artifacts.put_bytes(b"about to be registered again")
    age_everything(store.artifacts.root)
    store.artifacts.put_bytes(b"about to be registered again")
    report = store.check(fix=True)
    assert [(Path(f.path).name, f.kept, f.removed) for f in report.orphans] == [(orphan, True, False)]


def test_missing_and_corrupted_artifacts_are_reported_and_never_removed(store: Store) -> None:
    digests = referenced_everywhere(store)
    store.artifacts.path(digests["part"]).unlink()
    corrupted = store.artifacts.path(digests["bundle"])
    corrupted.write_bytes(b"bit rot")
    age_everything(store.artifacts.root)

    report = store.check(fix=True)
    assert [r.where for r in report.missing] == ["dataset_parts flights part 1"]
    assert [r.where for r in report.corrupted] == ["models churn v1 bundle"]
    assert report.missing[0].digest == digests["part"] and report.corrupted[0].digest == digests["bundle"]
    assert not report.clean and report.orphans == []
    assert corrupted.read_bytes() == b"bit rot"


def test_files_that_are_not_the_stores_are_left_alone(store: Store) -> None:
    root = store.artifacts.root
    root.mkdir(parents=True, exist_ok=True)
    (root / "README").write_text("mine")
    (root / "ab").mkdir()
    (root / "ab" / "notes.txt").write_text("mine too")
    age_everything(root)
    report: Any = store.check(fix=True)
    assert report == CheckReport(artifacts=0, referenced=0)
    assert (root / "README").exists() and (root / "ab" / "notes.txt").exists()
