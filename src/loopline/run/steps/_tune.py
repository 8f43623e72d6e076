"""The ``tune`` step: an Optuna study around a train configuration, its best trial refitted as a candidate.

The study lives in the run's store database (Optuna's tables beside loopline's), so a tuning stopped at any
point resumes with the same run (``loopline run --resume``) or a new one, without repeating finished trials.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from loopline.bundle import check_servable
from loopline.core.config import MODEL_NAME_PATTERN
from loopline.core.errors import ConfigError
from loopline.core.records import ThreadInfo
from loopline.core.step import StepContext, StepType
from loopline.run._dask import dask_launcher
from loopline.run.steps._models import TrainConfig, _fit
from loopline.run.steps._tables import require_columns
from loopline.train import limited_threads, resolve_estimator, thread_params
from loopline.tune import DatasetSet, TrialRecord, TuneResult, TuneSpec, tune

if TYPE_CHECKING:
    import polars as pl

    from loopline.store import Store

TUNING_KEY = "tuning"
"""The key of the candidate's ``step_config`` (the model version's ``config.resolved``) holding the study's
lineage: study name, trial counts, best trial, its values, params and per-set scores."""


class TuneConfig(TuneSpec, TrainConfig):
    """Tune a train configuration: the train step's keys (the base every trial starts from, and how the best is
    refitted), the search (:class:`loopline.tune.TuneSpec`), and ``model`` to register the result under."""

    model: Annotated[
        str | None,
        Field(
            pattern=MODEL_NAME_PATTERN,
            description="Register the refitted best candidate under this model name (else: pass it to a select "
            "step like a train step's candidate).",
        ),
    ] = None


class Tune(StepType[TuneConfig]):
    """``type: tune`` — inputs train, valid, then one table per ``dataset`` set (in order), then optionally test;
    outputs a train step's (``bundle``, ``reference``, ``profile``, ``report``, ``performance``, ``golden``) for
    the best trial refitted on the training split, and ``study`` (its lineage; with ``model``: the registered
    version)."""

    type_name = "tune"
    Config = TuneConfig
    outputs = ("bundle", "reference", "profile", "report", "performance", "golden", "study")
    min_inputs = 2
    cacheable = False  # the study is state of its own: a rerun resumes it

    def run(self, config: TuneConfig, inputs: list[Any], ctx: StepContext) -> dict[str, Any]:
        names = [s.name for s in config.sets if isinstance(s, DatasetSet)]
        if len(inputs) not in (2 + len(names), 3 + len(names)):
            raise ConfigError(
                f"step {ctx.step!r} has {len(inputs)} inputs; it takes train, valid, one per dataset set "
                f"({', '.join(names) or 'none'}) and optionally test.",
                key=f"steps.{ctx.step}.inputs",
                hint="List the inputs in that order.",
            )
        train, valid = inputs[0], inputs[1]
        datasets = dict(zip(names, inputs[2 : 2 + len(names)], strict=True))
        test = inputs[-1] if len(inputs) == 3 + len(names) and inputs[-1].height else None
        for frame, where in ((train, "the training split"), (valid, "the validation split"), *_named(datasets)):
            require_columns(frame, [*config.features(), config.target], where)
        store: Store | None = ctx.store
        url = None if store is None else store.engine.url.render_as_string(hide_password=False)
        total = config.n_trials

        def on_trial(trial: TrialRecord) -> None:
            if total:
                ctx.progress(min(1.0, (trial.number + 1) / total))
            ctx.log.info("trial %d %s: %s %s", trial.number, trial.state, trial.values, trial.params)

        result = tune(
            train,
            valid,
            config,
            storage=url,
            study=config.study or ctx.step,
            datasets=datasets,
            on_trial=on_trial,
            launch=dask_launcher(),  # on a Dask worker: the n_jobs trial workers are tasks of the same cluster
        )
        outputs = refit_best(config, result, train, valid, test, ctx)
        study = dict(result.lineage)
        if config.model is not None:
            if store is None:
                raise ConfigError("registering a tuned model needs a store.", hint="Run it with loopline's Runner.")
            from loopline.core.records import Candidate

            repository = store.models.with_check(check_servable)
            version = repository.register_candidate(config.model, Candidate.from_dict(outputs), run_id=ctx.run_id)
            study["registered"] = {"model": config.model, "version": version.version}
        return {**outputs, "study": study}


def refit_best(
    config: TuneConfig,
    result: TuneResult,
    train: pl.DataFrame,
    valid: pl.DataFrame,
    test: pl.DataFrame | None,
    ctx: StepContext,
) -> dict[str, Any]:
    """The best trial's configuration trained as the train step trains (reference, profile, slices, cv), with
    the study's lineage under ``tuning`` in its report's ``step_config``."""
    best = result.best_spec
    fields = {name: getattr(config, name) for name in TrainConfig.model_fields}
    update = {name: getattr(best, name) for name in ("estimator", "params", "prep", "transforms")}
    train_config = TrainConfig.model_validate({**fields, **update})
    spec = resolve_estimator(train_config.estimator)
    for task in spec.classes:
        spec.load(task)
    with limited_threads(train_config.threads) as threads:
        params = thread_params(spec, train_config.params, threads["granted"])
        candidate = _fit(train_config, params, train, valid, test, ctx)
    step_config = {**candidate.report.step_config, TUNING_KEY: result.lineage}
    report = replace(candidate.report, threads=ThreadInfo.from_dict(threads), step_config=step_config)
    return replace(candidate, report=report).to_dict()


def _named(datasets: dict[str, pl.DataFrame]) -> list[tuple[pl.DataFrame, str]]:
    return [(frame, f"dataset {name!r}") for name, frame in datasets.items()]
