"""The ingestion engine: one source into one versioned dataset, exactly once.

For every batch, in this order: drop rows whose message ids the dataset already holds (redeliveries),
check the schema contract, write the rows as a Parquet artifact (atomic, content-addressed), then commit
the part, its ids, its dead letters and the source's new checkpoint in ONE transaction, and only then
acknowledge the batch to the source. A ``kill -9`` at any point leaves either the whole batch committed
with its checkpoint, or neither; the restarted ingest resumes from the checkpoint, and a broker redelivers
what was never acknowledged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from loopline.core.errors import ConfigError, DataError, LooplineError, MissingExtraError, SourceUnavailableError
from loopline.ingest import Batch, Limits, Source, apply_contract, infer_schema

if TYPE_CHECKING:
    from loopline.store import DatasetVersion, Store

log = logging.getLogger("loopline.ingest")

MAX_BACKOFF_S = 30.0

#: errors that retrying cannot fix, whatever the source says: bad config, data breaking a 'fail' contract,
#: a missing driver
PERMANENT = (ConfigError, DataError, MissingExtraError)


@dataclass
class IngestReport:
    """What one ingest did: rows and bytes committed, duplicates dropped, rows sent to dead letters."""

    dataset: str
    source: str
    rows: int = 0
    bytes: int = 0
    batches: int = 0
    duplicates: int = 0
    rejected: int = 0
    retries: int = 0
    duration_s: float = 0.0
    status: str = "succeeded"
    errors: list[str] = field(default_factory=list)
    schema_changes: list[str] = field(default_factory=list)
    version: int | None = None


def ingest_source(
    store: Store,
    source: Source,
    *,
    dataset: str,
    source_name: str | None = None,
    follow: bool = False,
    limits: Limits = Limits(),
    policy: str = "fail",
    stop: threading.Event | None = None,
    max_batches: int | None = None,
    retries: int = 5,
    backoff: float = 0.5,
    run_id: str | None = None,
) -> IngestReport:
    """Ingest ``source`` into ``dataset`` from its last checkpoint; see the module docstring.

    Transient failures (a dropped connection, a restarting broker) are retried ``retries`` times with
    exponential backoff, each time from the last committed checkpoint. Returns the report; a permanent
    error (bad config, data that breaks a ``fail`` contract) is raised after the report is filled in.
    """
    name = source_name or source.type_name
    report = IngestReport(dataset, name)
    started = time.perf_counter()
    attempt = 0
    try:
        while True:
            try:
                _consume(
                    store,
                    source,
                    dataset,
                    name,
                    report,
                    follow=follow,
                    limits=limits,
                    policy=policy,
                    stop=stop,
                    max_batches=max_batches,
                )
                break
            except Exception as exc:
                permanent = isinstance(exc, PERMANENT) and not isinstance(exc, SourceUnavailableError)
                if permanent or not source.is_transient(exc):
                    raise
                # transient: reconnect from the committed checkpoint
                attempt += 1
                report.retries = attempt
                report.errors.append(f"{type(exc).__name__}: {exc}")
                if attempt > retries:
                    raise LooplineError(
                        f"ingesting {name!r} failed after {retries} retries: {exc}",
                        hint="Check that the source is reachable; the checkpoint did not advance past committed data.",
                    ) from exc
                delay = min(MAX_BACKOFF_S, backoff * 2 ** min(attempt - 1, 20))
                log.warning("source %r failed (%s); retry %d/%d in %.1f s", name, exc, attempt, retries, delay)
                if stop is not None and stop.wait(delay):
                    break
                if stop is None:
                    time.sleep(delay)
    except BaseException as exc:
        report.status = "failed"
        if not report.errors or not report.errors[-1].endswith(str(exc)):
            report.errors.append(str(exc))
        raise
    finally:
        report.duration_s = time.perf_counter() - started
        source.close()
    if report.rows or store.datasets.schema(dataset) is not None:
        version: DatasetVersion = store.datasets.create_version(dataset, run_id=run_id)
        report.version = version.version
    return report


def _consume(
    store: Store,
    source: Source,
    dataset: str,
    name: str,
    report: IngestReport,
    *,
    follow: bool,
    limits: Limits,
    policy: str,
    stop: threading.Event | None,
    max_batches: int | None,
) -> None:
    position = store.datasets.checkpoint(dataset, name)
    schema = store.datasets.schema(dataset)
    batches: Iterator[Batch] = source.batches(position, follow=follow, limits=limits)
    for batch in batches:
        if batch.parquet_file is not None:
            whole, schema = _whole_file(store, dataset, batch, schema, policy, report)
            if whole is None:
                if (stop is not None and stop.is_set()) or (max_batches is not None and report.batches >= max_batches):
                    return
                continue
            batch = whole
        rows, ids = _drop_redelivered(store, dataset, name, batch, report)
        rejects = list(batch.rejects)
        digest, size = None, 0
        if rows.height:
            if schema is None:
                schema = store.datasets.set_schema(dataset, infer_schema(rows))
            where = batch.origin if batch.origin is not None else batch.position
            checked = apply_contract(rows, schema, policy, source=name, position=where)
            _note_changes(report, checked.added, checked.dropped, checked.cast)
            rejects += checked.rejects
            rows = checked.rows
            if rows.height:
                # parts favour write speed: lz4, no row-group statistics
                digest = store.artifacts.put_table(rows, compression="lz4", statistics=False)
                size = int(rows.estimated_size())
        store.datasets.commit_batch(
            dataset,
            name,
            digest=digest,
            rows=rows.height if digest else 0,
            size=size,
            position=batch.position,
            ids=ids,
            rejects=[_rejected(r) for r in rejects],
        )
        source.ack(batch)
        report.batches += 1
        report.rows += rows.height if digest else 0
        report.bytes += batch.bytes_read or size
        report.rejected += len(rejects)
        if (stop is not None and stop.is_set()) or (max_batches is not None and report.batches >= max_batches):
            return


def _whole_file(
    store: Store, dataset: str, batch: Batch, schema: dict[str, str] | None, policy: str, report: IngestReport
) -> tuple[Batch | None, dict[str, str] | None]:
    """A Parquet file whose schema matches the contract becomes a part as it is (no decode, no re-encode);
    any other file is decoded and goes through the contract like every batch."""
    found = infer_schema(batch.rows)
    if schema is None:
        schema = store.datasets.set_schema(dataset, found)
    if found == schema and batch.file_rows:
        digest = store.artifacts.put_file(batch.parquet_file)
        store.datasets.commit_batch(
            dataset, report.source, digest=digest, rows=batch.file_rows, size=batch.bytes_read, position=batch.position
        )
        report.batches += 1
        report.rows += batch.file_rows
        report.bytes += batch.bytes_read
        return None, schema
    batch.rows = pl.read_parquet(batch.parquet_file)
    batch.parquet_file = None
    return batch, schema


def _drop_redelivered(
    store: Store, dataset: str, name: str, batch: Batch, report: IngestReport
) -> tuple[pl.DataFrame, list[str] | None]:
    if not batch.ids:
        return batch.rows, None
    if len(batch.ids) != batch.rows.height:
        raise DataError(
            f"source {name!r} gave {len(batch.ids)} ids for {batch.rows.height} rows.",
            hint="A source's Batch.ids must hold one id per row.",
        )
    known = store.datasets.known_ids(dataset, name, batch.ids)
    if not known and len(set(batch.ids)) == len(batch.ids):
        return batch.rows, batch.ids
    seen: set[str] = set(known)
    keep = []
    for message_id in batch.ids:
        keep.append(message_id not in seen)
        seen.add(message_id)
    report.duplicates += keep.count(False)
    mask = pl.Series(keep)
    return batch.rows.filter(mask), [i for i, k in zip(batch.ids, keep, strict=True) if k]


def _note_changes(report: IngestReport, added: list[str], dropped: list[str], cast: list[str]) -> None:
    for change in (
        [f"added missing column {c!r} as nulls" for c in added]
        + [f"dropped unexpected column {c!r}" for c in dropped]
        + [f"cast column {c!r} to the contract's type" for c in cast]
    ):
        if change not in report.schema_changes:
            report.schema_changes.append(change)


def _rejected(reject: Any) -> Any:
    from loopline.store import Rejected

    return Rejected(reason=reject.reason, position=reject.position, raw=reject.raw)
