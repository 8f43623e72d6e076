"""`store check` on every backend: SQLite and PostgreSQL with a local artifact folder, SQLite with S3."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from _candidates import stub_candidate
from loopline.store import CheckReport, ModelVersion, StepRecord, Store
from loopline.store._tables import metadata

from ._raw import Raw

WITH_S3 = True


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


def temp_file(raw: Raw, name: str) -> str:
    raw.write(name, b"half a blob")
    return name


def test_every_digest_column_of_the_schema_is_checked() -> None:
    columns = {f"{t.name}.{c.name}" for t in metadata.tables.values() for c in t.columns if "digest" in c.name}
    assert columns == {
        "models.bundle_digest",
        "models.reference_digest",
        "models.profile_digest",
        "dataset_parts.digest",
        "dataset_versions.profile_digest",
    }


def test_a_consistent_store_is_clean(store: Store) -> None:
    digests = referenced_everywhere(store)
    report = store.check()
    assert report == CheckReport(artifacts=len(digests), referenced=len(digests))
    assert report.clean


def test_fix_removes_old_temp_files_and_orphans_and_nothing_referenced(store: Store, raw: Raw) -> None:
    digests = referenced_everywhere(store)
    orphan = store.artifacts.put_bytes(b"nobody refers to me")
    temp_file(raw, ".tmp-abc.parquet")
    temp_file(raw, f"{orphan[:2]}/.tmp-def.part")
    raw.age_everything()
    young_orphan = store.artifacts.put_bytes(b"a writer is about to refer to me")
    young_temp = temp_file(raw, ".tmp-young.part")

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
    assert not fixed.clean  # the young ones are still there
    assert sorted(Path(f.path).name for f in fixed.left) == sorted([young_orphan, ".tmp-young.part"])
    assert not store.artifacts.exists(orphan)
    assert store.artifacts.exists(young_orphan) and raw.exists(young_temp)
    assert not raw.exists(".tmp-abc.parquet") and not raw.exists(f"{orphan[:2]}/.tmp-def.part")
    for digest in digests.values():
        store.artifacts.get_bytes(digest)  # still there, still verifies
    again = store.check(fix=True)
    assert [Path(f.path).name for f in again.orphans] == [young_orphan] and not again.clean
    assert store.check(fix=True, grace=timedelta(0)).clean


def test_storing_an_old_orphan_again_makes_it_young(store: Store, raw: Raw) -> None:
    orphan = store.artifacts.put_bytes(b"about to be registered again")
    raw.age_everything()
    store.artifacts.put_bytes(b"about to be registered again")
    report = store.check(fix=True)
    assert [(Path(f.path).name, f.kept, f.removed) for f in report.orphans] == [(orphan, True, False)]


def test_missing_and_corrupted_artifacts_are_reported_and_never_removed(store: Store, raw: Raw) -> None:
    digests = referenced_everywhere(store)
    raw.remove(f"{digests['part'][:2]}/{digests['part']}")
    corrupted = f"{digests['bundle'][:2]}/{digests['bundle']}"
    raw.write(corrupted, b"bit rot")
    raw.age_everything()

    report = store.check(fix=True)
    assert [r.where for r in report.missing] == ["dataset_parts flights part 1"]
    assert [r.where for r in report.corrupted] == ["models churn v1 bundle"]
    assert report.missing[0].digest == digests["part"] and report.corrupted[0].digest == digests["bundle"]
    assert not report.clean and report.orphans == []
    assert raw.read(corrupted) == b"bit rot"


def test_files_that_are_not_the_stores_are_left_alone(store: Store, raw: Raw) -> None:
    raw.write("README", b"mine")
    raw.write("ab/notes.txt", b"mine too")
    raw.age_everything()
    report: Any = store.check(fix=True)
    assert report == CheckReport(artifacts=0, referenced=0)
    assert raw.names() == ["README", "ab/notes.txt"]
