"""Versioned datasets: parts appended by ingestion, each committed with its source's checkpoint.

A dataset is a sequence of Parquet parts (artifacts). Ingestion commits, in ONE transaction, a part,
the message ids it holds, the source's new checkpoint and the batch's dead letters; so after any crash
the checkpoint and the data agree. A version is a snapshot of the parts so far (row count, schema,
checksum, the source positions it covers) that training runs can name.
"""

from __future__ import annotations

import builtins
import random
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import Engine, and_, case, func, insert, or_, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from loopline.core.dtypes import polars_dtype
from loopline.core.errors import ConflictError, NotFoundError, did_you_mean
from loopline.core.hashing import fingerprint
from loopline.store._db import reading, upsert, utcnow, writing
from loopline.store._tables import (
    checkpoints,
    dataset_parts,
    dataset_schemas,
    dataset_versions,
    dead_letters,
    ingested_ids,
)
from loopline.store.artifacts import ArtifactStore

_LIST_HINT = "List datasets with `loopline datasets list`."
_ID_CHUNK = 500
_VERSION_ATTEMPTS = 20


@dataclass(frozen=True)
class NewRows:
    """The rows of a dataset a reader has not seen (:meth:`DatasetRepository.read_new`): ``frame``, the dataset's
    last part ``upto_seq`` (0: none) and how many ``parts`` were read."""

    frame: pl.DataFrame
    upto_seq: int
    parts: int


@dataclass(frozen=True)
class DeadLetter:
    """A row or message that ingestion could not take, kept with its reason, position and raw payload."""

    id: int
    dataset: str
    source: str
    reason: str
    position: Any
    raw: str
    created_at: datetime
    replayed_at: datetime | None


@dataclass(frozen=True)
class DatasetVersion:
    """A snapshot of a dataset: its parts up to ``upto_seq``.

    ``profile_digest`` names the JSON artifact of the version's profile once one was computed (None before).
    """

    dataset: str
    version: int
    rows: int
    upto_seq: int
    checksum: str
    schema: dict[str, str]
    positions: dict[str, Any]
    run_id: str | None
    created_at: datetime
    profile_digest: str | None = None


@dataclass(frozen=True)
class SourceActivity:
    """What one source has committed into a dataset: its running total, when its checkpoint last moved, when its
    newest part arrived, and the rows of its parts committed since a given time."""

    dataset: str
    source: str
    rows: int
    checkpoint_at: datetime | None
    newest_part_at: datetime | None
    rows_since: int


@dataclass(frozen=True)
class DatasetSummary:
    """A dataset at a glance (:meth:`DatasetRepository.summaries`): its latest ``version`` and that version's
    ``rows`` (None before the first version), the ``parts`` committed and their ``part_rows``, when an ingest
    last committed (``last_ingest_at``: the newest checkpoint), the ``dead_letters`` not replayed yet and the
    ``columns`` of its schema."""

    dataset: str
    version: int | None
    rows: int | None
    parts: int
    part_rows: int
    last_ingest_at: datetime | None
    dead_letters: int
    columns: int


@dataclass(frozen=True)
class SourceCheckpoint:
    """Where one source stands in a dataset: its committed ``position`` (what ingestion resumes from), its
    running total of ``rows``, when the checkpoint last moved, and its ``parts`` (the newest at
    ``newest_part_at``)."""

    source: str
    position: Any
    rows: int
    updated_at: datetime
    parts: int
    newest_part_at: datetime | None


@dataclass(frozen=True)
class Rejected:
    """A dead letter to write (the store's input form of :class:`DeadLetter`)."""

    reason: str
    position: Any
    raw: str


class DatasetRepository:
    """Parts, checkpoints, ids, dead letters, schemas and versions of datasets."""

    def __init__(self, engine: Engine, artifacts: ArtifactStore) -> None:
        self.engine = engine
        self.artifacts = artifacts

    # -- ingestion ----------------------------------------------------------------------------
    def checkpoint(self, dataset: str, source: str) -> Any:
        """The position committed last for ``source`` into ``dataset`` (None: nothing yet)."""
        with reading(self.engine) as conn:
            row = conn.execute(
                select(checkpoints.c.position).where(checkpoints.c.dataset == dataset, checkpoints.c.source == source)
            ).first()
        return None if row is None else row[0]

    def known_ids(self, dataset: str, source: str, ids: builtins.list[str]) -> set[str]:
        """Which of ``ids`` the dataset already holds for ``source`` (redelivered messages)."""
        found: set[str] = set()
        with reading(self.engine) as conn:
            for start in range(0, len(ids), _ID_CHUNK):
                chunk = ids[start : start + _ID_CHUNK]
                rows = conn.execute(
                    select(ingested_ids.c.message_id).where(
                        ingested_ids.c.dataset == dataset,
                        ingested_ids.c.source == source,
                        ingested_ids.c.message_id.in_(chunk),
                    )
                )
                found.update(r[0] for r in rows)
        return found

    def commit_batch(
        self,
        dataset: str,
        source: str,
        *,
        digest: str | None,
        rows: int,
        size: int,
        position: Any,
        ids: builtins.list[str] | None = None,
        rejects: builtins.list[Rejected] | None = None,
    ) -> int | None:
        """Commit a batch in one transaction: its part (when it has rows), ids, dead letters and checkpoint.

        Returns the part's sequence number, or None for a batch without rows.
        """
        now = utcnow()
        with writing(self.engine) as conn:
            seq = None
            if digest is not None and rows:
                seq = self._next_seq(conn, dataset)
                conn.execute(
                    insert(dataset_parts).values(
                        dataset=dataset,
                        seq=seq,
                        source=source,
                        digest=digest,
                        rows=rows,
                        bytes=size,
                        position=position,
                        created_at=now,
                    )
                )
            if ids:
                conn.execute(
                    insert(ingested_ids), [{"dataset": dataset, "source": source, "message_id": i} for i in ids]
                )
            if rejects:
                conn.execute(
                    insert(dead_letters),
                    [
                        {
                            "dataset": dataset,
                            "source": source,
                            "reason": r.reason,
                            "position": r.position,
                            "raw": r.raw,
                            "created_at": now,
                            "replayed_at": None,
                        }
                        for r in rejects
                    ],
                )
            total = self._rows_so_far(conn, dataset, source) + rows
            upsert(
                conn,
                checkpoints,
                [{"dataset": dataset, "source": source, "position": position, "rows": total, "updated_at": now}],
                ["dataset", "source"],
            )
        return seq

    # -- schema contract ----------------------------------------------------------------------
    def schema(self, dataset: str) -> dict[str, str] | None:
        """The dataset's schema contract (column -> dtype), or None before the first ingest."""
        with reading(self.engine) as conn:
            row = conn.execute(select(dataset_schemas.c.schema).where(dataset_schemas.c.dataset == dataset)).first()
        return None if row is None else dict(row[0])

    def set_schema(self, dataset: str, schema: dict[str, str]) -> dict[str, str]:
        """Store the contract if the dataset has none yet; returns the one in force (first writer wins)."""
        with writing(self.engine) as conn:
            row = conn.execute(select(dataset_schemas.c.schema).where(dataset_schemas.c.dataset == dataset)).first()
            if row is not None:
                return dict(row[0])
            conn.execute(insert(dataset_schemas).values(dataset=dataset, schema=schema, created_at=utcnow()))
        return schema

    # -- reading --------------------------------------------------------------------------------
    def names(self) -> builtins.list[str]:
        """Datasets that have a schema (that is, were ingested at least once)."""
        with reading(self.engine) as conn:
            return [r[0] for r in conn.execute(select(dataset_schemas.c.dataset).order_by(dataset_schemas.c.dataset))]

    def parts(self, dataset: str, upto_seq: int | None = None) -> builtins.list[dict[str, Any]]:
        """The dataset's parts in order."""
        query = select(dataset_parts).where(dataset_parts.c.dataset == dataset)
        if upto_seq is not None:
            query = query.where(dataset_parts.c.seq <= upto_seq)
        with reading(self.engine) as conn:
            return [dict(r._mapping) for r in conn.execute(query.order_by(dataset_parts.c.seq))]

    def read(self, dataset: str, version: int | None = None) -> pl.DataFrame:
        """Every row of a dataset (or of one version), parts concatenated in commit order."""
        schema = self.schema(dataset)
        if schema is None:
            raise self._not_found(dataset)
        upto = self.version(dataset, version).upto_seq if version is not None else None
        frames = [self.artifacts.get_table(p["digest"]) for p in self.parts(dataset, upto)]
        if not frames:
            return pl.DataFrame(schema={name: polars_dtype(t) for name, t in schema.items()})
        return pl.concat(frames, how="diagonal_relaxed")

    def read_new(self, dataset: str, after_seq: int, committed_after: datetime | None = None) -> NewRows:
        """The rows of the parts after ``after_seq`` (and of those committed after ``committed_after``, whatever
        their seq), in commit order: what a reader that stopped at ``after_seq`` has not seen. A dataset whose
        parts end before ``after_seq`` was rewritten: every part is read again."""
        schema = self.schema(dataset)
        if schema is None:
            raise self._not_found(dataset)
        mine = dataset_parts.c.dataset == dataset
        with reading(self.engine) as conn:
            last = conn.execute(select(func.max(dataset_parts.c.seq)).where(mine)).scalar_one()
            if last is not None and last < after_seq:
                after_seq = 0
            newer = dataset_parts.c.seq > after_seq
            if committed_after is not None:
                newer = or_(newer, dataset_parts.c.created_at > committed_after)
            query = select(dataset_parts.c.seq, dataset_parts.c.digest).where(mine, newer)
            parts = conn.execute(query.order_by(dataset_parts.c.seq)).all()
        frames = [self.artifacts.get_table(p.digest) for p in parts]
        frame = (
            pl.concat(frames, how="diagonal_relaxed")
            if frames
            else pl.DataFrame(schema={name: polars_dtype(t) for name, t in schema.items()})
        )
        return NewRows(frame, int(last or 0), len(parts))

    def rows_since(self, dataset: str, since: datetime, source: str | None = None) -> int:
        """Rows committed into ``dataset`` (by ``source``, or by any) after ``since`` (timezone-aware): the new
        data volume a retrain trigger compares with its threshold. 0 for a dataset nobody ingested."""
        query = select(func.coalesce(func.sum(dataset_parts.c.rows), 0)).where(
            dataset_parts.c.dataset == dataset, dataset_parts.c.created_at > since
        )
        if source is not None:
            query = query.where(dataset_parts.c.source == source)
        with reading(self.engine) as conn:
            return int(conn.execute(query).scalar_one())

    def source_activity(self, dataset: str, source: str, since: datetime) -> SourceActivity:
        """The committed activity of ``source`` into ``dataset`` (see :class:`SourceActivity`), in one snapshot."""
        mine = and_(dataset_parts.c.dataset == dataset, dataset_parts.c.source == source)
        recent = func.coalesce(func.sum(case((dataset_parts.c.created_at > since, dataset_parts.c.rows), else_=0)), 0)
        with reading(self.engine) as conn:
            mark = conn.execute(
                select(checkpoints.c.rows, checkpoints.c.updated_at).where(
                    checkpoints.c.dataset == dataset, checkpoints.c.source == source
                )
            ).first()
            newest, rows_since = conn.execute(select(func.max(dataset_parts.c.created_at), recent).where(mine)).one()
        return SourceActivity(
            dataset,
            source,
            rows=0 if mark is None else int(mark[0]),
            checkpoint_at=None if mark is None else mark[1],
            newest_part_at=newest,
            rows_since=int(rows_since),
        )

    # -- versions -------------------------------------------------------------------------------
    def create_version(self, dataset: str, run_id: str | None = None) -> DatasetVersion:
        """Snapshot the parts so far; returns the latest version when no part arrived since it.

        So an ingest that committed nothing (or only dead letters) leaves the version as it was, and
        identical snapshots are never stored twice: when another process takes the next version number
        first, the snapshot is taken again (and is that version when it holds the same parts).
        """
        for attempt in range(_VERSION_ATTEMPTS):
            try:
                with writing(self.engine) as conn:
                    return self._snapshot(conn, dataset, run_id)
            except sa_exc.IntegrityError as exc:
                if "dataset_versions" not in str(exc.orig):
                    raise
            time.sleep(random.uniform(0, 0.01 * (attempt + 1)))
        raise ConflictError(
            f"could not create a version of dataset {dataset!r}: "
            f"{_VERSION_ATTEMPTS} concurrent snapshots took the version number first.",
            hint="Run the ingest again; its data is committed, only the version is missing.",
        )

    def _snapshot(self, conn: Connection, dataset: str, run_id: str | None) -> DatasetVersion:
        parts = conn.execute(
            select(dataset_parts.c.seq, dataset_parts.c.digest, dataset_parts.c.rows)
            .where(dataset_parts.c.dataset == dataset)
            .order_by(dataset_parts.c.seq)
        ).all()
        upto = parts[-1][0] if parts else 0
        latest = conn.execute(
            select(dataset_versions)
            .where(dataset_versions.c.dataset == dataset)
            .order_by(dataset_versions.c.version.desc())
            .limit(1)
        ).first()
        if latest is not None and latest._mapping["upto_seq"] == upto:
            return DatasetVersion(**dict(latest._mapping))
        schema = conn.execute(select(dataset_schemas.c.schema).where(dataset_schemas.c.dataset == dataset)).first()
        positions = {
            r[0]: r[1]
            for r in conn.execute(
                select(checkpoints.c.source, checkpoints.c.position).where(checkpoints.c.dataset == dataset)
            )
        }
        values = {
            "dataset": dataset,
            "version": (latest._mapping["version"] if latest is not None else 0) + 1,
            "rows": sum(p[2] for p in parts),
            "upto_seq": upto,
            "checksum": fingerprint([p[1] for p in parts]),
            "schema": dict(schema[0]) if schema is not None else {},
            "positions": positions,
            "run_id": run_id,
            "created_at": utcnow(),
        }
        conn.execute(insert(dataset_versions).values(**values))
        return DatasetVersion(**values)

    def version(self, dataset: str, version: int | None = None) -> DatasetVersion:
        """One version (None: the latest)."""
        query = select(dataset_versions).where(dataset_versions.c.dataset == dataset)
        query = (
            query.where(dataset_versions.c.version == version)
            if version is not None
            else query.order_by(dataset_versions.c.version.desc()).limit(1)
        )
        with reading(self.engine) as conn:
            row = conn.execute(query).first()
        if row is None:
            if version is None:
                raise self._not_found(dataset)
            raise NotFoundError(
                f"dataset {dataset!r} has no version {version}.",
                hint=f"List its versions with `loopline datasets show {dataset}`.",
            )
        return DatasetVersion(**dict(row._mapping))

    def set_profile(self, dataset: str, version: int, digest: str) -> None:
        """Record ``digest`` (a stored JSON artifact) as the profile of a version; the last writer wins.

        A profile is derived from the version's rows, which never change, so two processes that profile
        the same version at once store the same statistics and either digest will do.
        """
        with writing(self.engine) as conn:
            updated = conn.execute(
                update(dataset_versions)
                .where(dataset_versions.c.dataset == dataset, dataset_versions.c.version == version)
                .values(profile_digest=digest)
            ).rowcount
        if not updated:
            raise NotFoundError(
                f"dataset {dataset!r} has no version {version}.",
                hint=f"List its versions with `loopline datasets show {dataset}`.",
            )

    def versions(self, dataset: str) -> builtins.list[DatasetVersion]:
        """Every version of a dataset, oldest first."""
        with reading(self.engine) as conn:
            rows = conn.execute(
                select(dataset_versions)
                .where(dataset_versions.c.dataset == dataset)
                .order_by(dataset_versions.c.version)
            ).all()
        return [DatasetVersion(**dict(r._mapping)) for r in rows]

    def versions_page(self, dataset: str, *, offset: int = 0, limit: int = 50) -> builtins.list[DatasetVersion]:
        """One page of a dataset's versions, newest first (:meth:`version_count` gives the total)."""
        query = (
            select(dataset_versions)
            .where(dataset_versions.c.dataset == dataset)
            .order_by(dataset_versions.c.version.desc())
            .offset(offset)
            .limit(limit)
        )
        with reading(self.engine) as conn:
            return [DatasetVersion(**dict(r._mapping)) for r in conn.execute(query)]

    def version_count(self, dataset: str) -> int:
        """How many versions ``dataset`` has."""
        query = select(func.count()).select_from(dataset_versions).where(dataset_versions.c.dataset == dataset)
        with reading(self.engine) as conn:
            return int(conn.execute(query).scalar_one())

    # -- summaries ------------------------------------------------------------------------------
    def summaries(self, *, offset: int = 0, limit: int = 50, name: str | None = None) -> builtins.list[DatasetSummary]:
        """One page of datasets (by name; only ``name`` if given) at a glance, aggregated in one query (see
        :class:`DatasetSummary`); ``len(names())`` is the total."""
        latest = _per_dataset(dataset_versions, func.max(dataset_versions.c.version).label("version"))
        parts = _per_dataset(
            dataset_parts, func.count().label("parts"), func.coalesce(func.sum(dataset_parts.c.rows), 0).label("rows")
        )
        marks = _per_dataset(checkpoints, func.max(checkpoints.c.updated_at).label("at"))
        pending = dead_letters.c.replayed_at.is_(None)
        letters = _per_dataset(dead_letters, func.count().label("letters"), where=pending)
        query = (
            select(
                dataset_schemas.c.dataset,
                dataset_schemas.c.schema,
                latest.c.version,
                dataset_versions.c.rows,
                func.coalesce(parts.c.parts, 0),
                func.coalesce(parts.c.rows, 0),
                marks.c.at,
                func.coalesce(letters.c.letters, 0),
            )
            .select_from(dataset_schemas)
            .outerjoin(latest, latest.c.dataset == dataset_schemas.c.dataset)
            .outerjoin(
                dataset_versions,
                and_(
                    dataset_versions.c.dataset == dataset_schemas.c.dataset,
                    dataset_versions.c.version == latest.c.version,
                ),
            )
            .outerjoin(parts, parts.c.dataset == dataset_schemas.c.dataset)
            .outerjoin(marks, marks.c.dataset == dataset_schemas.c.dataset)
            .outerjoin(letters, letters.c.dataset == dataset_schemas.c.dataset)
            .order_by(dataset_schemas.c.dataset)
            .offset(offset)
            .limit(limit)
        )
        if name is not None:
            query = query.where(dataset_schemas.c.dataset == name)
        with reading(self.engine) as conn:
            rows = conn.execute(query).all()
        return [
            DatasetSummary(dataset, version, rows, int(n_parts), int(n_rows), at, int(n_letters), len(schema or {}))
            for dataset, schema, version, rows, n_parts, n_rows, at, n_letters in rows
        ]

    def sources(self, dataset: str) -> builtins.list[SourceCheckpoint]:
        """Each source's checkpoint in ``dataset`` with its parts (see :class:`SourceCheckpoint`), by name."""
        mine = dataset_parts.c.dataset == dataset
        per_source = (
            select(
                dataset_parts.c.source,
                func.count().label("parts"),
                func.max(dataset_parts.c.created_at).label("newest"),
            )
            .where(mine)
            .group_by(dataset_parts.c.source)
            .subquery()
        )
        query = (
            select(
                checkpoints.c.source,
                checkpoints.c.position,
                checkpoints.c.rows,
                checkpoints.c.updated_at,
                func.coalesce(per_source.c.parts, 0),
                per_source.c.newest,
            )
            .outerjoin(per_source, per_source.c.source == checkpoints.c.source)
            .where(checkpoints.c.dataset == dataset)
            .order_by(checkpoints.c.source)
        )
        with reading(self.engine) as conn:
            rows = conn.execute(query).all()
        return [SourceCheckpoint(s, p, int(r), at, int(n), newest) for s, p, r, at, n, newest in rows]

    # -- dead letters ---------------------------------------------------------------------------
    def dead_letters_page(
        self, dataset: str, *, offset: int = 0, limit: int = 50, include_replayed: bool = True
    ) -> builtins.list[DeadLetter]:
        """One page of the dataset's dead letters, newest first (:meth:`dead_letter_count` gives the total)."""
        query = _letters(select(dead_letters), dataset, include_replayed)
        query = query.order_by(dead_letters.c.id.desc()).offset(offset).limit(limit)
        with reading(self.engine) as conn:
            return [DeadLetter(**dict(r._mapping)) for r in conn.execute(query)]

    def dead_letter_count(self, dataset: str, *, include_replayed: bool = True) -> int:
        """How many dead letters ``dataset`` has (not replayed yet only, unless ``include_replayed``)."""
        query = _letters(select(func.count()).select_from(dead_letters), dataset, include_replayed)
        with reading(self.engine) as conn:
            return int(conn.execute(query).scalar_one())

    # -- dead letters ---------------------------------------------------------------------------
    def dead_letters(self, dataset: str, *, include_replayed: bool = False) -> builtins.list[DeadLetter]:
        """The dataset's dead letters, oldest first."""
        query = select(dead_letters).where(dead_letters.c.dataset == dataset)
        if not include_replayed:
            query = query.where(dead_letters.c.replayed_at.is_(None))
        with reading(self.engine) as conn:
            return [DeadLetter(**dict(r._mapping)) for r in conn.execute(query.order_by(dead_letters.c.id))]

    def mark_replayed(self, ids: builtins.list[int]) -> None:
        """Mark dead letters as replayed (they stay, for the audit trail)."""
        if ids:
            with writing(self.engine) as conn:
                conn.execute(update(dead_letters).where(dead_letters.c.id.in_(ids)).values(replayed_at=utcnow()))

    # -- helpers --------------------------------------------------------------------------------
    def _next_seq(self, conn: Connection, dataset: str) -> int:
        current = conn.execute(select(func.max(dataset_parts.c.seq)).where(dataset_parts.c.dataset == dataset)).scalar()
        return int(current or 0) + 1

    def _rows_so_far(self, conn: Connection, dataset: str, source: str) -> int:
        row = conn.execute(
            select(checkpoints.c.rows).where(and_(checkpoints.c.dataset == dataset, checkpoints.c.source == source))
        ).first()
        return int(row[0]) if row is not None else 0

    def _not_found(self, dataset: str) -> NotFoundError:
        hint = did_you_mean(dataset, self.names()) or _LIST_HINT
        return NotFoundError(f"dataset {dataset!r} does not exist.", hint=hint)


def _per_dataset(table: Any, *aggregates: Any, where: Any = None) -> Any:
    """A subquery of ``aggregates`` over ``table`` grouped by its ``dataset`` column."""
    query = select(table.c.dataset, *aggregates).group_by(table.c.dataset)
    return (query if where is None else query.where(where)).subquery()


def _letters(query: Any, dataset: str, include_replayed: bool) -> Any:
    query = query.where(dead_letters.c.dataset == dataset)
    return query if include_replayed else query.where(dead_letters.c.replayed_at.is_(None))
