"""The model repository: numbered versions per model name, their aliases and their audit trail.

A version's stage column says ``candidate`` (registered) or ``archived`` (retired: production moved away from
it, or :meth:`ModelRepository.archive`). Aliases name versions: ``production`` (served; promote and rollback
move it), ``staging``, ``shadow``, ``canary`` or any name matching ``ALIAS_PATTERN``; one version per alias per
model is a rule of the database, and concurrent changes take turns (see :mod:`loopline.store._aliases`).
:attr:`ModelVersion.stage` reports ``production`` for the version the ``production`` alias points at, so code
written against stages keeps working. Every transition is a row of the audit trail (:class:`ModelEvent`).

Nothing can become production that cannot be served: registration, promotion, setting an alias and rollback
first read the version's bundle (the artifact store verifies its digest) and pass it to the repository's bundle
check (loopline's commands and services use :func:`loopline.bundle.verify_bundle`: the allowlist and a real
load). When either fails an :class:`~loopline.core.errors.UnservableModelError` names the model, version and
reason, and nothing in the store changes.
"""

from __future__ import annotations

import builtins
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, case, func, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, RowMapping

from loopline.core.errors import ConflictError, LooplineError, NotFoundError, UnservableModelError, did_you_mean
from loopline.core.records import GOLDEN_PREDICTIONS_KEY, PERFORMANCE_REFERENCE_KEY, Candidate, VersionConfig
from loopline.store._aliases import (
    alias_map,
    aliases_by_version,
    check_alias,
    check_expected,
    drop,
    point,
    transact,
)
from loopline.store._audit import PRODUCTION, ModelEvent, os_actor, record
from loopline.store._db import reading, utcnow, writing
from loopline.store._model_gc import DEFAULT_GC_GRACE, DEFAULT_KEEP, GcReport, Retention, collect
from loopline.store._tables import model_aliases, model_events, models
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
    archived_at: datetime | None = None
    """When the version was archived (None while it is not)."""
    aliases: tuple[str, ...] = ()
    """The aliases that point at this version, sorted (``production`` among them for the production one)."""

    @property
    def typed_config(self) -> VersionConfig:
        """``config`` as a record: features, target, task, cross-validation... (missing keys: defaults)."""
        return VersionConfig.from_dict(self.config)


_ROW_FIELDS = tuple(f for f in ModelVersion.__dataclass_fields__ if f not in ("stage", "aliases"))
_LISTED: tuple[str, ...] = ("version", "stage", "algorithm", "metrics", "data_fingerprint", "run_id")
_LISTED += ("created_at", "promoted_at", "archived_at")


class ModelRepository:
    """Model versions, their aliases and audit trail. Safe across threads and processes: versions never collide
    and an alias (``production`` included) points at one version per name.

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
                return _with_aliases(conn, row)
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
            return _with_aliases(conn, row)

    def production(self, name: str) -> ModelVersion | None:
        """The production version of ``name`` (where its ``production`` alias points), or None."""
        return self.by_alias(name, PRODUCTION)

    def by_alias(self, name: str, alias: str) -> ModelVersion | None:
        """The version the alias ``alias`` of ``name`` points at, or None."""
        stmt = (
            select(models).join(model_aliases, _alias_join).where(models.c.name == name, model_aliases.c.alias == alias)
        )
        with reading(self.engine) as conn:
            row = conn.execute(stmt).mappings().one_or_none()
            return None if row is None else _with_aliases(conn, row)

    def resolve(self, name: str, alias: str) -> int | None:
        """The version number the alias ``alias`` of ``name`` points at, or None (one indexed read: what a
        service polls)."""
        stmt = select(model_aliases.c.version).where(model_aliases.c.name == name, model_aliases.c.alias == alias)
        with reading(self.engine) as conn:
            return conn.execute(stmt).scalar_one_or_none()

    def aliases(self, name: str) -> dict[str, int]:
        """alias -> version of ``name`` (NotFoundError for an unknown model)."""
        with reading(self.engine) as conn:
            found = alias_map(conn, name)
            if not found and not _exists(conn, name):
                raise _missing(conn, name, None)
            return dict(sorted(found.items()))

    def list(self, name: str | None = None) -> builtins.list[ModelVersion]:
        """Every version (of ``name`` if given), by name then version."""
        stmt = select(models).order_by(models.c.name, models.c.version)
        if name is not None:
            stmt = stmt.where(models.c.name == name)
        with reading(self.engine) as conn:
            rows = conn.execute(stmt).mappings().all()
            tags = aliases_by_version(conn, None if name is None else [name])
        return [_model_version(row, tags.get((row["name"], row["version"]), ())) for row in rows]

    def page(
        self, name: str, offset: int = 0, limit: int = 50, *, archived: bool = False
    ) -> builtins.list[ModelVersion]:
        """One page of the versions of ``name``, newest first: ``limit`` versions after the ``offset`` newest
        (archived versions only with ``archived``). An unknown name is an empty page."""
        rows, tags = self._newest(list(models.c), name, offset, limit, archived=archived)
        return [_model_version(row, tags.get((name, row["version"]), ())) for row in rows]

    def _newest(
        self, columns: builtins.list[Any], name: str, offset: int, limit: int, *, archived: bool
    ) -> tuple[Sequence[RowMapping], dict[tuple[str, int], tuple[str, ...]]]:
        """``columns`` of one page of ``name``'s versions, newest first, and the aliases by version."""
        stmt = select(*columns).where(models.c.name == name)
        if not archived:
            stmt = stmt.where(models.c.stage != "archived")
        stmt = stmt.order_by(models.c.version.desc()).offset(offset).limit(limit)
        with reading(self.engine) as conn:
            rows = conn.execute(stmt).mappings().all()
            tags = aliases_by_version(conn, [name])
        return rows, tags

    def listing(
        self, name: str, offset: int = 0, limit: int = 50, *, archived: bool = False
    ) -> builtins.list[dict[str, Any]]:
        """:meth:`page` without the heavy columns (params, config, schema, timings): ``{"version", "stage",
        "aliases", "algorithm", "metrics", "data_fingerprint", "run_id", "created_at", "promoted_at",
        "archived_at"}``, ``stage`` ``production`` for the production version (what a list of versions shows)."""
        rows, tags = self._newest([models.c[key] for key in _LISTED], name, offset, limit, archived=archived)
        out = []
        for row in rows:
            aliases = tags.get((name, row["version"]), ())
            stage = "production" if PRODUCTION in aliases else row["stage"]
            out.append({**row, "stage": stage, "aliases": builtins.list(aliases)})
        return out

    def metric_rows(self, name: str, limit: int = 200, *, archived: bool = True) -> builtins.list[dict[str, Any]]:
        """The metrics of the ``limit`` newest versions of ``name``, newest first, and nothing else:
        ``{"version", "stage", "created_at", "metrics"}`` (what a chart or a ranking needs, without the
        configs and schemas of :meth:`page`)."""
        columns = (models.c.version, models.c.stage, models.c.created_at, models.c.metrics)
        stmt = select(*columns).where(models.c.name == name)
        if not archived:
            stmt = stmt.where(models.c.stage != "archived")
        with reading(self.engine) as conn:
            rows = conn.execute(stmt.order_by(models.c.version.desc()).limit(limit)).mappings().all()
        return [dict(row) for row in rows]

    def count(self, name: str, *, archived: bool = False) -> int:
        """How many versions ``name`` has (archived ones only counted with ``archived``); 0 for an unknown name."""
        stmt = select(func.count()).select_from(models).where(models.c.name == name)
        if not archived:
            stmt = stmt.where(models.c.stage != "archived")
        with reading(self.engine) as conn:
            return int(conn.execute(stmt).scalar_one())

    def summaries(self, offset: int = 0, limit: int = 50) -> builtins.list[dict[str, Any]]:
        """One page of model names (sorted) with SQL aggregates of their versions: ``{"name", "versions",
        "archived", "latest_version", "last_registered", "aliases"}`` (``aliases``: alias -> version)."""
        archived = func.sum(case((models.c.stage == "archived", 1), else_=0))
        stmt = (
            select(
                models.c.name,
                func.count().label("versions"),
                archived.label("archived"),
                func.max(models.c.version).label("latest_version"),
                func.max(models.c.created_at).label("last_registered"),
            )
            .group_by(models.c.name)
            .order_by(models.c.name)
            .offset(offset)
            .limit(limit)
        )
        with reading(self.engine) as conn:
            rows = [dict(row) for row in conn.execute(stmt).mappings()]
            stmt_aliases = select(model_aliases.c.name, model_aliases.c.alias, model_aliases.c.version)
            stmt_aliases = stmt_aliases.where(model_aliases.c.name.in_([row["name"] for row in rows]))
            found: dict[str, dict[str, int]] = {}
            for name, alias, version in conn.execute(stmt_aliases.order_by(model_aliases.c.alias)):
                found.setdefault(name, {})[alias] = version
        return [{**row, "archived": int(row["archived"] or 0), "aliases": found.get(row["name"], {})} for row in rows]

    def count_names(self) -> int:
        """How many distinct model names the repository holds."""
        with reading(self.engine) as conn:
            return int(conn.execute(select(func.count(func.distinct(models.c.name)))).scalar_one())

    def names(self) -> builtins.list[str]:
        """The distinct model names, sorted."""
        with reading(self.engine) as conn:
            return _names(conn)

    def promote(
        self, name: str, version: int, reason: str = "", *, actor: str | None = None, expect: int | None = None
    ) -> ModelVersion:
        """Point the ``production`` alias of ``name`` at ``version``; the previous production is archived.

        The version is verified first (see the module doc); an unservable one changes nothing. ``expect``:
        compare-and-set, the version production must be now (0: none), else ConflictError and nothing changes.
        ``actor`` (default: the OS user) and ``reason`` go to the audit trail.
        """
        target = self.get(name, version)
        if target.stage != "production":
            self.verify(name, version, target.bundle_digest)

        def work(conn: Connection) -> ModelVersion:
            _locked(conn, name, version)
            current = alias_map(conn, name).get(PRODUCTION)
            check_expected(name, PRODUCTION, current, expect)
            if current != version:
                _switch(conn, name, current, version, action="promote", reason=reason, actor=actor)
            return _fetch(conn, name, version)

        return transact(self.engine, name, work)

    def rollback(self, name: str, reason: str = "", *, actor: str | None = None) -> ModelVersion:
        """Point ``production`` back at the version that was production before the current one.

        That version is verified first (see the module doc); an unservable one changes nothing.
        """
        with reading(self.engine) as conn:
            current, previous = _rollback_target(conn, name)
        self.verify(name, previous["version"], previous["bundle_digest"])

        def work(conn: Connection) -> ModelVersion:
            _locked(conn, name, None)
            now_current, now_previous = _rollback_target(conn, name)
            if (now_current, now_previous["version"]) != (current, previous["version"]):
                raise ConflictError(
                    f"another process changed the production version of model {name!r} while the rollback was checked.",
                    hint=f"Check `loopline models history {name}` and retry.",
                )
            _switch(conn, name, current, previous["version"], action="rollback", reason=reason, actor=actor)
            return _fetch(conn, name, previous["version"])

        return transact(self.engine, name, work)

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        reason: str = "",
        *,
        actor: str | None = None,
        expect: int | None = None,
    ) -> ModelVersion:
        """Point ``alias`` of ``name`` at ``version`` (set it, or move it from another version).

        ``production`` is :meth:`promote`. The version must be servable, like a promoted one (see the module
        doc). ``expect``: compare-and-set, the version the alias must point at now (0: none).
        """
        check_alias(alias)
        if alias == PRODUCTION:
            return self.promote(name, version, reason, actor=actor, expect=expect)
        target = self.get(name, version)
        if alias not in target.aliases:
            self.verify(name, version, target.bundle_digest)

        def work(conn: Connection) -> ModelVersion:
            _locked(conn, name, version)
            current = alias_map(conn, name).get(alias)
            check_expected(name, alias, current, expect)
            if current != version:
                now, who = utcnow(), actor or os_actor()
                point(conn, name, alias, version, at=now, actor=who)
                record(
                    conn,
                    name,
                    "alias",
                    at=now,
                    actor=who,
                    reason=reason,
                    alias=alias,
                    from_version=current,
                    to_version=version,
                )
            return _fetch(conn, name, version)

        return transact(self.engine, name, work)

    def remove_alias(
        self, name: str, alias: str, reason: str = "", *, actor: str | None = None, expect: int | None = None
    ) -> int:
        """Remove ``alias`` of ``name``; returns the version it pointed at. ``production`` cannot be removed
        (promote another version, or roll back)."""
        check_alias(alias)
        if alias == PRODUCTION:
            raise ConflictError(
                f"the production alias of model {name!r} cannot be removed: the service would have nothing to serve.",
                hint=f"Promote another version (`loopline models promote {name} VERSION`) or roll back.",
            )

        def work(conn: Connection) -> int:
            _locked(conn, name, None)
            current = alias_map(conn, name)
            if alias not in current:
                known = ", ".join(sorted(current)) or "none"
                raise NotFoundError(
                    f"model {name!r} has no alias {alias!r}; its aliases are: {known}.",
                    hint=f"See `loopline models list {name}`.",
                )
            check_expected(name, alias, current[alias], expect)
            drop(conn, name, alias)
            record(
                conn, name, "unalias", at=utcnow(), actor=actor, reason=reason, alias=alias, from_version=current[alias]
            )
            return current[alias]

        return transact(self.engine, name, work)

    def archive(self, name: str, version: int, reason: str = "", *, actor: str | None = None) -> ModelVersion:
        """Retire ``version`` (its stage becomes ``archived``, so ``gc`` may delete it later). A version an
        alias points at is refused: remove the alias first."""

        def work(conn: Connection) -> ModelVersion:
            row = _locked(conn, name, version)
            pointing = sorted(a for a, v in alias_map(conn, name).items() if v == version)
            if pointing:
                raise ConflictError(
                    f"model {name!r} version {version} cannot be archived: alias {', '.join(pointing)} points at it.",
                    hint=f"Move or remove the alias first (`loopline models unalias {name} ALIAS`); "
                    "production moves with `loopline models promote`.",
                )
            if row is not None and row["stage"] != "archived":
                now = utcnow()
                where = (models.c.name == name, models.c.version == version)
                conn.execute(update(models).where(*where).values(stage="archived", archived_at=now))
                record(conn, name, "archive", at=now, actor=actor, reason=reason, from_version=version)
            return _fetch(conn, name, version)

        return transact(self.engine, name, work)

    def gc(
        self,
        name: str,
        *,
        keep: int = DEFAULT_KEEP,
        older_than: timedelta | None = None,
        dry_run: bool = False,
        reason: str = "",
        actor: str | None = None,
        grace: timedelta = DEFAULT_GC_GRACE,
    ) -> GcReport:
        """Delete the archived versions of ``name`` beyond the retention rule, then their orphaned artifacts.

        See :func:`loopline.store._model_gc.collect`: the ``keep`` newest archived versions stay, and with
        ``older_than`` only versions archived longer ago than that go; a version any alias points at never goes.
        """
        rule = Retention(keep=keep, older_than=older_than)
        return collect(self, name, rule, dry_run=dry_run, reason=reason, actor=actor, grace=grace)

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
        """The production changes of ``name``, oldest first: ``{"action", "from_version", "to_version", "reason",
        "at"}`` (promotions and rollbacks; :meth:`history` has every transition)."""
        return [
            {
                "action": e.action,
                "from_version": e.from_version,
                "to_version": e.to_version,
                "reason": e.reason,
                "at": e.at,
            }
            for e in self.history(name)
            if e.alias == PRODUCTION
        ]

    def history(self, name: str) -> builtins.list[ModelEvent]:
        """Every transition of ``name``, oldest first (see :mod:`loopline.store._audit`)."""
        stmt = select(model_events).where(model_events.c.name == name).order_by(model_events.c.id)
        with reading(self.engine) as conn:
            rows = conn.execute(stmt).mappings().all()
            if not rows and not _exists(conn, name):
                raise _missing(conn, name, None)
        return [ModelEvent.from_row(row) for row in rows]

    def latest_history(self, name: str, limit: int = 50) -> builtins.list[ModelEvent]:
        """The ``limit`` newest transitions of ``name``, newest first (NotFoundError for an unknown model)."""
        stmt = select(model_events).where(model_events.c.name == name)
        stmt = stmt.order_by(model_events.c.id.desc()).limit(limit)
        with reading(self.engine) as conn:
            rows = conn.execute(stmt).mappings().all()
            if not rows and not _exists(conn, name):
                raise _missing(conn, name, None)
        return [ModelEvent.from_row(row) for row in rows]

    def _insert_next(self, values: dict[str, Any]) -> ModelVersion:
        with writing(self.engine) as conn:
            version = _next_version(conn, values["name"])
            conn.execute(insert(models).values(**values, version=version, created_at=utcnow()))
            return _fetch(conn, values["name"], version)


_alias_join = (model_aliases.c.name == models.c.name) & (model_aliases.c.version == models.c.version)


def _next_version(conn: Connection, name: str) -> int:
    """One above every version ``name`` ever had: the live ones and those gc deleted (the audit trail keeps
    them), so a number is never given twice."""
    live = select(func.max(models.c.version)).where(models.c.name == name).scalar_subquery()
    gone = select(func.max(model_events.c.from_version)).where(model_events.c.name == name).scalar_subquery()
    live_max, gone_max = conn.execute(select(func.coalesce(live, 0), func.coalesce(gone, 0))).one()
    return max(int(live_max), int(gone_max)) + 1


def _locked(conn: Connection, name: str, version: int | None) -> RowMapping | None:
    """Lock the version rows of ``name`` (writers of one model take turns); ``version`` and ``stage`` of the row
    of ``version`` if given. NotFoundError when the model, or that version, does not exist (any more)."""
    columns = (models.c.version, models.c.stage)
    stmt = select(*columns).where(models.c.name == name).order_by(models.c.version).with_for_update()
    rows = builtins.list(conn.execute(stmt).mappings().all())
    found = None if version is None else next((r for r in rows if r["version"] == version), None)
    if not rows or (version is not None and found is None):
        raise _missing(conn, name, version)
    return found


def _switch(
    conn: Connection, name: str, current: int | None, version: int, *, action: str, reason: str, actor: str | None
) -> None:
    """Move ``production`` from ``current`` to ``version``: the old one archived, the event recorded."""
    now, who = utcnow(), actor or os_actor()
    if current is not None:
        where = (models.c.name == name, models.c.version == current)
        conn.execute(update(models).where(*where).values(stage="archived", archived_at=now))
    point(conn, name, PRODUCTION, version, at=now, actor=who)
    conn.execute(
        update(models)
        .where(models.c.name == name, models.c.version == version)
        .values(stage="candidate", archived_at=None, promoted_at=now)
    )
    record(
        conn, name, action, at=now, actor=who, reason=reason, alias=PRODUCTION, from_version=current, to_version=version
    )


def _rollback_target(conn: Connection, name: str) -> tuple[int, RowMapping]:
    """The production version of ``name`` and the row a rollback makes production; ConflictError when none."""
    if not _exists(conn, name):
        raise _missing(conn, name, None)
    current = alias_map(conn, name).get(PRODUCTION)
    if current is None:
        raise ConflictError(
            f"model {name!r} has no production version to roll back from.",
            hint=f"Promote a version with `loopline models promote {name} VERSION`.",
        )
    previous = _previous_production(conn, name, current)
    stmt = select(models).where(models.c.name == name, models.c.version == previous)
    target = None if previous is None else conn.execute(stmt).mappings().one_or_none()
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
    """Replay the moves of ``production`` as a stack: a promotion pushes, a rollback pops."""
    stmt = select(model_events.c.action, model_events.c.to_version)
    stmt = stmt.where(model_events.c.name == name, model_events.c.alias == PRODUCTION).order_by(model_events.c.id)
    history: builtins.list[int] = []
    for action, to_version in conn.execute(stmt):
        if action == "rollback" and history:
            history.pop()
        else:
            history.append(to_version)
    if len(history) < 2 or history[-1] != current:
        return None
    return history[-2]


def _fetch(conn: Connection, name: str, version: int) -> ModelVersion:
    stmt = select(models).where(models.c.name == name, models.c.version == version)
    return _with_aliases(conn, conn.execute(stmt).mappings().one())


def _with_aliases(conn: Connection, row: RowMapping) -> ModelVersion:
    stmt = select(model_aliases.c.alias).where(
        model_aliases.c.name == row["name"], model_aliases.c.version == row["version"]
    )
    return _model_version(row, tuple(sorted(conn.execute(stmt).scalars())))


def _exists(conn: Connection, name: str) -> bool:
    return conn.execute(select(models.c.id).where(models.c.name == name).limit(1)).first() is not None


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


def _model_version(row: RowMapping, aliases: tuple[str, ...]) -> ModelVersion:
    fields = {name: row[name] for name in _ROW_FIELDS}
    stage = "production" if PRODUCTION in aliases else row["stage"]
    return ModelVersion(**{**fields, "stage": stage, "aliases": aliases})
