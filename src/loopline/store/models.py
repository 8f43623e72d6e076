"""The model repository: numbered versions per model name and the stage each one is in.

Stages are ``candidate`` (just registered), ``production`` (served; at most one per name, enforced by a
partial unique index) and ``archived`` (was production). Promotions and rollbacks leave an audit row in
``model_events``.

Nothing can become production that cannot be served: registration, promotion and rollback first read the
version's bundle (the artifact store verifies its digest) and pass it to the repository's bundle check (loopline's
commands and services use :func:`loopline.bundle.verify_bundle`: the allowlist and a real load). When either
fails an :class:`~loopline.core.errors.UnservableModelError` names the model, version and reason, and nothing in
the store changes.
"""

from __future__ import annotations

import builtins
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, RowMapping

from loopline.core.errors import ConflictError, LooplineError, NotFoundError, UnservableModelError, did_you_mean
from loopline.core.records import GOLDEN_PREDICTIONS_KEY, PERFORMANCE_REFERENCE_KEY, Candidate, VersionConfig
from loopline.store._db import reading, utcnow, writing
from loopline.store._tables import model_events, models
from loopline.store.artifacts import ArtifactStore

_REGISTER_ATTEMPTS = 20
_LIST_HINT = "List models with `loopline models list`."

BundleCheck = Callable[[bytes], object]
"""Raises a :class:`~loopline.core.errors.LooplineError` when bundle bytes cannot be served (its return value is
ignored); :func:`loopline.bundle.verify_bundle` is loopline's own."""


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model; ``metrics`` maps a split or evaluation key to its metrics."""

    name: str
    version: int
    stage: str
    algorithm: str
    bundle_digest: str
    reference_digest: str | None
    metrics: dict[str, Any]
    params: dict[str, Any]
    config: dict[str, Any]
    input_schema: list[dict[str, Any]]
    data_fingerprint: str
    run_id: str | None
    timings: dict[str, Any]
    created_at: datetime
    promoted_at: datetime | None
    profile_digest: str | None = None
    """The drift reference profile (JSON bytes of ``loopline.monitor.ReferenceProfile``), or None."""

    @property
    def typed_config(self) -> VersionConfig:
        """``config`` as a record: features, target, task, cross-validation... (missing keys: defaults)."""
        return VersionConfig.from_dict(self.config)


_FIELDS = tuple(ModelVersion.__dataclass_fields__)


class ModelRepository:
    """Model versions and their stages. Safe across threads and processes: versions never collide and
    there is never more than one production version per name.

    ``check_bundle`` is what a bundle must pass, besides its digest, to be registered or made production (see
    the module doc); None checks the digest only (the store's own tests register opaque bytes).
    """

    def __init__(self, engine: Engine, artifacts: ArtifactStore, check_bundle: BundleCheck | None = None) -> None:
        self.engine = engine
        self.artifacts = artifacts
        self.check_bundle = check_bundle

    def with_check(self, check_bundle: BundleCheck) -> ModelRepository:
        """This repository if it has a bundle check already, else one over the same store that uses
        ``check_bundle`` (what loopline's services and pipeline steps change stages through)."""
        if self.check_bundle is not None:
            return self
        return ModelRepository(self.engine, self.artifacts, check_bundle)

    def register_candidate(self, name: str, candidate: Candidate, *, run_id: str | None = None) -> ModelVersion:
        """Store a trained candidate: its bundle and reference table as artifacts, then its model row.

        The row records the candidate's report: algorithm, metrics, params, the version config
        (:class:`~loopline.core.records.VersionConfig`), input schema, data fingerprint and timings.
        Crash-safe: each artifact is written atomically and the row that makes the candidate visible is
        committed last, in one transaction. A writer killed at any point leaves the whole candidate or no
        row at all; at worst an unreferenced artifact or a ``.tmp-*`` file, which ``loopline store check
        --fix`` removes. A bundle already registered under ``name`` is not registered again: that version
        is returned. A bundle that fails the bundle check is refused before anything is stored.
        """
        self._check(name, None, candidate.bundle)
        bundle_digest = self.artifacts.put_bytes(candidate.bundle)
        existing = select(models).where(models.c.name == name, models.c.bundle_digest == bundle_digest)
        with reading(self.engine) as conn:
            row = conn.execute(existing.order_by(models.c.version).limit(1)).mappings().one_or_none()
        if row is not None:
            return _model_version(row)
        report = candidate.report
        reference, profile = candidate.reference, candidate.profile
        config = report.version_config()
        if candidate.performance is not None:
            config[PERFORMANCE_REFERENCE_KEY] = self.artifacts.put_table(candidate.performance)
        if candidate.golden is not None:
            config[GOLDEN_PREDICTIONS_KEY] = self.artifacts.put_table(candidate.golden)
        return self._register(
            name=name,
            algorithm=report.algorithm,
            bundle_digest=bundle_digest,
            reference_digest=None if reference is None else self.artifacts.put_table(reference),
            profile_digest=None if profile is None else self.artifacts.put_bytes(profile),
            metrics=report.metrics,
            params=report.params,
            config=config,
            input_schema=[item.to_dict() for item in report.input_schema],
            data_fingerprint=report.data_fingerprint,
            run_id=run_id,
            timings=report.timings.to_dict(),
        )

    def register(
        self,
        *,
        name: str,
        algorithm: str,
        bundle_digest: str,
        reference_digest: str | None,
        metrics: dict[str, Any],
        params: dict[str, Any],
        config: dict[str, Any],
        input_schema: builtins.list[dict[str, Any]],
        data_fingerprint: str,
        run_id: str | None,
        timings: dict[str, Any],
        profile_digest: str | None = None,
    ) -> ModelVersion:
        """Add the next version of ``name`` as a candidate; retried when another process takes it first.

        ``bundle_digest`` must name a stored bundle that passes the checks (see the module doc);
        ``profile_digest`` a stored drift reference profile, or None.
        """
        self.verify(name, None, bundle_digest)
        return self._register(
            name=name,
            algorithm=algorithm,
            bundle_digest=bundle_digest,
            reference_digest=reference_digest,
            metrics=metrics,
            params=params,
            config=config,
            input_schema=input_schema,
            data_fingerprint=data_fingerprint,
            run_id=run_id,
            timings=timings,
            profile_digest=profile_digest,
        )

    def verify(self, name: str, version: int | None, bundle_digest: str) -> None:
        """Check that the bundle ``bundle_digest`` of ``name`` (version ``version``, if it has one yet) can be
        served: its bytes exist and match the digest, then the bundle check passes. Raises
        :class:`~loopline.core.errors.UnservableModelError`."""
        try:
            data = self.artifacts.get_bytes(bundle_digest)
        except LooplineError as exc:
            raise _unservable(name, version, exc) from None
        self._check(name, version, data)

    def _check(self, name: str, version: int | None, data: bytes) -> None:
        if self.check_bundle is None:
            return
        try:
            self.check_bundle(data)
        except LooplineError as exc:
            raise _unservable(name, version, exc) from None

    def _register(self, **fields: Any) -> ModelVersion:
        name = fields["name"]
        values = {**fields, "stage": "candidate"}
        for attempt in range(_REGISTER_ATTEMPTS):
            try:
                return self._insert_next(values)
            except sa_exc.IntegrityError as exc:
                if not _is_version_clash(exc):
                    raise
            time.sleep(random.uniform(0, 0.01 * (attempt + 1)))
        raise ConflictError(
            f"could not register a new version of model {name!r}: "
            f"{_REGISTER_ATTEMPTS} concurrent registrations took the version number first.",
            hint="Retry the registration.",
        )

    def get(self, name: str, version: int | None = None) -> ModelVersion:
        """Version ``version`` of ``name``, or its latest version when ``version`` is None."""
        stmt = select(models).where(models.c.name == name)
        if version is None:
            stmt = stmt.order_by(models.c.version.desc()).limit(1)
        else:
            stmt = stmt.where(models.c.version == version)
        with reading(self.engine) as conn:
            row = conn.execute(stmt).mappings().one_or_none()
            if row is None:
                raise _missing(conn, name, version)
        return _model_version(row)

    def production(self, name: str) -> ModelVersion | None:
        """The production version of ``name``, or None."""
        stmt = select(models).where(models.c.name == name, models.c.stage == "production")
        with reading(self.engine) as conn:
            row = conn.execute(stmt).mappings().one_or_none()
        return None if row is None else _model_version(row)

    def list(self, name: str | None = None) -> builtins.list[ModelVersion]:
        """Every version (of ``name`` if given), by name then version."""
        stmt = select(models).order_by(models.c.name, models.c.version)
        if name is not None:
            stmt = stmt.where(models.c.name == name)
        with reading(self.engine) as conn:
            rows = conn.execute(stmt).mappings().all()
        return [_model_version(row) for row in rows]

    def names(self) -> builtins.list[str]:
        """The distinct model names, sorted."""
        with reading(self.engine) as conn:
            return _names(conn)

    def promote(self, name: str, version: int, reason: str = "") -> ModelVersion:
        """Make ``version`` the production version of ``name``; the previous one becomes archived.

        The version is verified first (see the module doc); an unservable one changes nothing.
        """
        target = self.get(name, version)
        if target.stage != "production":
            self.verify(name, version, target.bundle_digest)
        with _stage_change(self.engine, name) as conn:
            rows = _lock_versions(conn, name)
            current = _production_row(rows)
            if current is not None and current["version"] == version:
                return _fetch(conn, name, version)
            _switch(conn, name, current, version, action="promote", reason=reason)
            return _fetch(conn, name, version)

    def rollback(self, name: str, reason: str = "") -> ModelVersion:
        """Make the version that was production before the current one production again.

        That version is verified first (see the module doc); an unservable one changes nothing.
        """
        with reading(self.engine) as conn:
            current, previous = _rollback_target(conn, name, _versions(conn, name))
        self.verify(name, previous["version"], previous["bundle_digest"])
        with _stage_change(self.engine, name) as conn:
            now_current, now_previous = _rollback_target(conn, name, _lock_versions(conn, name))
            if (now_current["version"], now_previous["version"]) != (current["version"], previous["version"]):
                raise ConflictError(
                    f"another process changed the stages of model {name!r} while the rollback was checked.",
                    hint="Check `loopline models list` and retry.",
                )
            _switch(conn, name, now_current, now_previous["version"], action="rollback", reason=reason)
            return _fetch(conn, name, now_previous["version"])

    def record_evaluation(self, name: str, version: int, key: str, metrics: dict[str, Any]) -> None:
        """Store ``metrics`` under ``key`` in the version's metrics (replacing an earlier ``key``)."""
        where = (models.c.name == name, models.c.version == version)
        with writing(self.engine) as conn:
            row = conn.execute(select(models.c.metrics).where(*where).with_for_update()).one_or_none()
            if row is None:
                raise _missing(conn, name, version)
            conn.execute(update(models).where(*where).values(metrics={**row.metrics, key: metrics}))

    def record_config(self, name: str, version: int, key: str, value: Any) -> None:
        """Store ``value`` (JSON) under ``key`` in the version's config (replacing an earlier ``key``): the
        deployment gate's verdict on it, for one."""
        where = (models.c.name == name, models.c.version == version)
        with writing(self.engine) as conn:
            row = conn.execute(select(models.c.config).where(*where).with_for_update()).one_or_none()
            if row is None:
                raise _missing(conn, name, version)
            conn.execute(update(models).where(*where).values(config={**row.config, key: value}))

    def events(self, name: str) -> builtins.list[dict[str, Any]]:
        """The audit trail of ``name``, oldest first: ``{"action", "from_version", "to_version", "reason", "at"}``."""
        columns = [model_events.c[c] for c in ("action", "from_version", "to_version", "reason", "at")]
        stmt = select(*columns).where(model_events.c.name == name).order_by(model_events.c.id)
        with reading(self.engine) as conn:
            if not conn.execute(select(models.c.id).where(models.c.name == name).limit(1)).first():
                raise _missing(conn, name, None)
            return [dict(row) for row in conn.execute(stmt).mappings()]

    def _insert_next(self, values: dict[str, Any]) -> ModelVersion:
        with writing(self.engine) as conn:
            latest = select(func.max(models.c.version)).where(models.c.name == values["name"])
            version = (conn.execute(latest).scalar() or 0) + 1
            conn.execute(insert(models).values(**values, version=version, created_at=utcnow()))
            return _fetch(conn, values["name"], version)


@contextmanager
def _stage_change(engine: Engine, name: str) -> Iterator[Connection]:
    """A write transaction in which a unique-production violation (a concurrent change) is a ConflictError."""
    try:
        with writing(engine) as conn:
            yield conn
    except sa_exc.IntegrityError:
        raise ConflictError(
            f"another process changed the stages of model {name!r} at the same time.",
            hint="Check `loopline models list` and retry.",
        ) from None


def _switch(conn: Connection, name: str, current: RowMapping | None, version: int, *, action: str, reason: str) -> None:
    now = utcnow()
    if current is not None:
        conn.execute(update(models).where(models.c.id == current["id"]).values(stage="archived"))
    conn.execute(
        update(models)
        .where(models.c.name == name, models.c.version == version)
        .values(stage="production", promoted_at=now)
    )
    conn.execute(
        insert(model_events).values(
            name=name,
            action=action,
            from_version=None if current is None else current["version"],
            to_version=version,
            reason=reason,
            at=now,
        )
    )


def _rollback_target(conn: Connection, name: str, rows: builtins.list[RowMapping]) -> tuple[RowMapping, RowMapping]:
    """The production row of ``name`` and the row a rollback makes production; ConflictError when none."""
    if not rows:
        raise _missing(conn, name, None)
    current = _production_row(rows)
    if current is None:
        raise ConflictError(
            f"model {name!r} has no production version to roll back from.",
            hint=f"Promote a version with `loopline models promote {name} VERSION`.",
        )
    previous = _previous_production(conn, name, current["version"])
    target = None if previous is None else _find(rows, previous)
    if target is None:
        raise ConflictError(
            f"model {name!r} has no earlier production version to roll back to.",
            hint=f"Promote a version with `loopline models promote {name} VERSION`.",
        )
    return current, target


def _unservable(name: str, version: int | None, exc: LooplineError) -> UnservableModelError:
    """The refusal of a bundle that failed a check: the cause's message as one line, its fix, then ours."""
    if version is None:
        ours = "Nothing was registered: re-train the model"
    else:
        ours = "Nothing was changed: promote another version (see `loopline models list`), or re-train the model"
    ours += "; `loopline store check` lists damaged artifacts."
    hint = f"{' '.join(exc.hint.split())} {ours}" if exc.hint else ours
    return UnservableModelError(name, version, " ".join(exc.message.split()), hint=hint)


def _previous_production(conn: Connection, name: str, current: int) -> int | None:
    """Replay the audit trail as a stack: a promotion pushes, a rollback pops."""
    stmt = select(model_events.c.action, model_events.c.to_version)
    stmt = stmt.where(model_events.c.name == name).order_by(model_events.c.id)
    history: builtins.list[int] = []
    for action, to_version in conn.execute(stmt):
        if action == "rollback" and history:
            history.pop()
        else:
            history.append(to_version)
    if len(history) < 2 or history[-1] != current:
        return None
    return history[-2]


def _lock_versions(conn: Connection, name: str) -> builtins.list[RowMapping]:
    stmt = select(models).where(models.c.name == name).order_by(models.c.version).with_for_update()
    return builtins.list(conn.execute(stmt).mappings().all())


def _versions(conn: Connection, name: str) -> builtins.list[RowMapping]:
    stmt = select(models).where(models.c.name == name).order_by(models.c.version)
    return builtins.list(conn.execute(stmt).mappings().all())


def _find(rows: builtins.list[RowMapping], version: int) -> RowMapping | None:
    return next((row for row in rows if row["version"] == version), None)


def _production_row(rows: builtins.list[RowMapping]) -> RowMapping | None:
    return next((row for row in rows if row["stage"] == "production"), None)


def _fetch(conn: Connection, name: str, version: int) -> ModelVersion:
    stmt = select(models).where(models.c.name == name, models.c.version == version)
    return _model_version(conn.execute(stmt).mappings().one())


def _names(conn: Connection) -> builtins.list[str]:
    return builtins.list(conn.execute(select(models.c.name).distinct().order_by(models.c.name)).scalars())


def _missing(conn: Connection, name: str, version: int | None) -> NotFoundError:
    versions = conn.execute(select(models.c.version).where(models.c.name == name).order_by(models.c.version))
    known = [str(v) for v in versions.scalars()]
    if known and version is not None:
        return NotFoundError(
            f"model {name!r} has no version {version}; its versions are {', '.join(known)}.",
            hint=_LIST_HINT,
        )
    suggestion = did_you_mean(name, _names(conn))
    hint = f"{suggestion} {_LIST_HINT}" if suggestion else _LIST_HINT
    return NotFoundError(f"model {name!r} does not exist.", hint=hint)


def _is_version_clash(exc: sa_exc.IntegrityError) -> bool:
    text = str(exc.orig)
    return "uq_models_name_version" in text or "models.name, models.version" in text


def _model_version(row: RowMapping) -> ModelVersion:
    return ModelVersion(**{name: row[name] for name in _FIELDS})
