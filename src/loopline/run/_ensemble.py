"""Build the retrain's ensemble version (``monitor.retrain.strategy: ensemble``) and register it with its lineage.

The members (``monitor.retrain.ensemble.members``) are model versions: ``initial``, the model's first production
version; ``window``, the retrain's best candidate refitted on the whole retrain window (its train, valid and,
unless ``refit_holdout`` is false, the holdout: :func:`loopline.run._refit.refit_version`); ``expanding``, the same
candidate's recipe (its parameters, its boosting rounds) refitted on every labelled period from the pipeline's own
``start`` param to the retrain's ``end``: the pipeline's data steps are re-run on that window (no training, no
registration), then the refit registers as ``window``'s does. The ensemble is an
:class:`~loopline.bundle.EnsembleBundle` of the members' bundles, registered as a new candidate whose config
records the members (:class:`~loopline.core.records.EnsembleLineage`); its drift reference and profile are the
``window`` member's (the newest data), its input fields, features and importance too; its performance reference
(what estimation calibrates on) is the mean of the members as they were before any refit, scored on the retrain's
holdout, which none of them saw. Whether it is promoted is the loop policy's decision
(:func:`loopline.run.policy.retrain_and_gate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopline.bundle import ModelBundle, check_servable, ensemble_of
from loopline.core.errors import ConfigError, DataError, LooplineError
from loopline.core.hashing import fingerprint
from loopline.core.records import (
    Candidate,
    EnsembleLineage,
    EnsembleMember,
    Timings,
    TrainReport,
    input_fields,
)

if TYPE_CHECKING:
    import polars as pl

    from loopline.run.policy._retrain import RetrainRun
    from loopline.store import ModelVersion, Store


@dataclass(frozen=True)
class EnsembleBuilt:
    """The registered ensemble ``version`` (None: none was built) and what was done, in words."""

    version: ModelVersion | None
    reason: str


def build_ensemble(run: RetrainRun) -> EnsembleBuilt:
    """Fit the members the ensemble lacks, then register the ensemble of ``retrain.ensemble.members`` (see the
    module docstring) for the retrain ``run`` (its ``params`` empty for a pipeline without a window:
    ``expanding`` then raises ConfigError). Raises what training raises; ConfigError naming
    ``monitor.retrain.ensemble.members`` when the members are not versions of the same model (see
    :func:`loopline.bundle.ensemble_of`)."""
    store, selection, retrain = run.store, run.selection, run.retrain
    members: list[tuple[str, ModelVersion]] = []
    notes: list[str] = []
    window: ModelVersion | None = None
    for role in retrain.ensemble.members:
        if role == "initial":
            initial = _initial(store, selection.model)
            if initial is None:
                notes.append("no version was ever in production: no initial member")
            else:
                members += _flattened(store, initial, role)
        elif role == "window":
            window = window or _window(run, notes)
            members.append((role, window))
        else:
            window = window or _window(run, notes)
            members.append((role, _expanding(run, window)))
    unique: dict[int, tuple[str, ModelVersion]] = {}
    for role, version in members:
        unique.setdefault(version.version, (role, version))
    if not unique:
        return EnsembleBuilt(None, "; ".join(notes) or "no members")
    chosen = list(unique.values())
    lineage = EnsembleLineage(tuple(EnsembleMember(v.version, role) for role, v in chosen))
    bundles = [ModelBundle.from_bytes(store.artifacts.get_bytes(v.bundle_digest)) for _, v in chosen]
    try:
        bundle = ensemble_of(bundles, metadata={"ensemble": lineage.to_dict(), "model": selection.model})
    except DataError as exc:
        described = ", ".join(f"v{v.version} ({role})" for role, v in chosen)
        raise ConfigError(
            f"model {selection.model!r}: the ensemble of {described} cannot be built: {exc.message}",
            key="monitor.retrain.ensemble.members",
            hint="Leave out the member trained on other inputs (often initial, after the features changed).",
        ) from None
    base = window or chosen[-1][1]
    candidate = Candidate(
        bundle.to_bytes(),
        None if base.reference_digest is None else store.artifacts.get_table(base.reference_digest),
        _report(base, [v for _, v in chosen], lineage, bundle.target, bundle.task),
        None if base.profile_digest is None else store.artifacts.get_bytes(base.profile_digest),
        performance=_performance(store, [v for _, v in chosen], run.holdout),
    )
    version = store.models.with_check(check_servable).register_candidate(
        selection.model, candidate, run_id=run.result.run_id
    )
    described = ", ".join(f"v{m.version} {m.role}" for m in lineage.members)
    why = f"ensemble v{version.version}: the mean of {described}"
    return EnsembleBuilt(version, f"{why} ({'; '.join(notes)})" if notes else why)


def _performance(store: Store, members: list[ModelVersion], holdout: pl.DataFrame | None) -> pl.DataFrame | None:
    """The ensemble's performance reference (what estimation calibrates on): the mean of members that never saw
    ``holdout`` — a refit stands in by the version it refits, fitted on the rows before it — scored on the
    holdout. None without a holdout, for a regression, or when those members cannot be combined."""
    from loopline.run.steps._models import performance_reference

    if holdout is None or not holdout.height:
        return None
    unseen = []
    for member in members:
        refit = member.typed_config.refit
        unseen.append(store.models.get(member.name, refit.of) if refit is not None else member)
    bundles = [ModelBundle.from_bytes(store.artifacts.get_bytes(v.bundle_digest)) for v in unseen]
    try:
        combined = ensemble_of(bundles, metadata={})
    except DataError:
        return None
    if combined.target not in holdout.columns:
        return None
    return performance_reference(combined, holdout)


def _report(
    base: ModelVersion, versions: list[ModelVersion], lineage: EnsembleLineage, target: str, task: str
) -> TrainReport:
    """The ensemble version's record: ``base``'s inputs, features and importance, the members' lineage."""
    config = base.typed_config
    rows = {f"v{v.version}": sum(v.typed_config.rows.values()) for v in versions}
    return TrainReport(
        algorithm="ensemble",
        metrics={},
        params={"combine": lineage.combine, "members": list(lineage.versions)},
        timings=Timings(),
        input_schema=input_fields(base.input_schema),
        features=config.features,
        target=config.target or target,
        task=config.task or task,
        data_fingerprint=fingerprint("ensemble", lineage.combine, [v.data_fingerprint for v in versions]),
        rows=rows,
        step_config=config.resolved,
        importance=config.importance,
        ensemble=lineage,
    )


def _initial(store: Store, model: str) -> ModelVersion | None:
    """The model's first production version (its first promotion in the audit trail), or None."""
    for event in store.models.events(model):
        if event.get("to_version") is not None:
            return store.models.get(model, int(event["to_version"]))
    return None


def _flattened(store: Store, version: ModelVersion, role: str) -> list[tuple[str, ModelVersion]]:
    """``version`` as members: itself, or an ensemble's own members (an ensemble never nests)."""
    lineage = version.typed_config.ensemble
    if lineage is None:
        return [(role, version)]
    return [(role, store.models.get(version.name, m.version)) for m in lineage.members]


def _window(run: RetrainRun, notes: list[str]) -> ModelVersion:
    """The retrain's best candidate refitted on the retrain window (as gated when ``retrain.refit`` is false,
    when it was not produced by a train step, or when its refit fails: the note says so)."""
    from loopline.run._refit import train_step_of

    store, selection = run.store, run.selection
    gated = store.models.get(selection.model, selection.best)
    if not run.retrain.refit:
        notes.append(f"v{gated.version} as gated: monitor.retrain.refit is false")
        return gated
    step = train_step_of(run.pipeline, run.result, run.select, [c.version for c in selection.candidates], gated.version)
    if step is None:
        notes.append(f"v{gated.version} as gated: not produced by a train step of this run")
        return gated
    try:
        refit = run.refit(step, gated)
    except LooplineError as exc:
        notes.append(f"v{gated.version} as gated: its refit failed ({exc})")
        return gated
    if refit.version is None:
        notes.append(f"v{gated.version} as gated: {refit.reason}")
        return gated
    return store.models.get(selection.model, refit.version)


def _expanding(run: RetrainRun, window: ModelVersion) -> ModelVersion:
    """The best candidate's recipe refitted on the pipeline's ``start`` to the retrain's ``end`` (the window
    member itself when the window already starts there)."""
    from loopline.run._refit import refit_version, train_step_of
    from loopline.run._runner import Runner
    from loopline.run.policy._retrain import _holdout, selection_of

    store, pipeline, params, select, selection = run.store, run.pipeline, run.params, run.select, run.selection
    first = pipeline.params.get("start")
    if not params or first is None:
        raise ConfigError(
            f"pipeline {pipeline.name!r}: the ensemble's expanding member needs a moving window.",
            key="monitor.retrain.ensemble.members",
            hint="Declare params start, valid_from, test_from and end (start: the first labelled period), or "
            "leave expanding out of monitor.retrain.ensemble.members.",
        )
    if _instant(first) >= _instant(params["start"]):
        return window
    gated = store.models.get(selection.model, selection.best)
    step = train_step_of(pipeline, run.result, select, [c.version for c in selection.candidates], gated.version)
    if step is None:
        return window
    expanded = {**params, "start": first}
    spec = pipeline.steps[select]
    needed = [ref.partition(".")[0] for ref in [*pipeline.steps[step].inputs[:2], spec.inputs[-1]]]
    data = Runner(store).run(pipeline, expanded, targets=list(dict.fromkeys(needed)), raise_on_error=False)
    if data.status != "succeeded":
        selection_of(data, pipeline)  # raises the failed step's StepError
    holdout = _holdout(data, pipeline, select)
    refit = refit_version(store, pipeline, expanded, data, step, gated, holdout, with_holdout=run.retrain.refit_holdout)
    return window if refit.version is None else store.models.get(selection.model, refit.version)


def _instant(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
