"""Model steps: split a table, train a candidate, register candidates and promote the best."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

import polars as pl
from pydantic import Field, field_validator, model_validator

from loopline.bundle import check_servable, golden_sample, target_values
from loopline.core.config import MODEL_NAME_PATTERN, GateConfig
from loopline.core.errors import ConfigError, DataError, LooplineError, did_you_mean
from loopline.core.hashing import fingerprint
from loopline.core.records import Candidate, CandidateSummary, CrossValidation, Selection, SliceMetrics, ThreadInfo
from loopline.core.step import StepConfig, StepContext, StepType
from loopline.monitor import ReferenceProfile, profile_outputs
from loopline.run.policy import PromotionRule, check_gate_metrics, promote, rank_candidates
from loopline.run.steps._tables import require_columns
from loopline.train import (
    METRIC_DIRECTION,
    TrainSpec,
    cross_validate,
    limited_threads,
    parse_gap,
    resolve_estimator,
    slice_metrics,
    split_table,
    thread_params,
    train_candidate,
)

if TYPE_CHECKING:
    from loopline.bundle import ModelBundle
    from loopline.store import Store


_TimePoint = int | float | datetime | date
"""A time split's boundary: numbers first, so that 2013 stays a year (pydantic reads a number as a datetime in
seconds since 1970), then datetimes, then dates (YAML's 2013-10-01)."""


class SplitConfig(StepConfig):
    """Split a labelled table into train, valid and test (rows with a null target are dropped and counted)."""

    target: str
    method: Literal["time", "stratified", "group", "random"] = "time"
    time_column: Annotated[
        str | None, Field(description="time: a column of datetimes, dates, ISO 8601 strings or numbers (a year).")
    ] = None
    valid_from: Annotated[
        _TimePoint | None,
        Field(description="time: the first time (or number, for a column of numbers: 2013) of valid."),
    ] = None
    test_from: Annotated[_TimePoint | None, Field(description="time: the first time (or number) of test.")] = None
    gap: Annotated[
        timedelta | int | float | None,
        Field(
            description='time: rows this long before valid_from / test_from are dropped, e.g. "7d", "12h"; '
            "for a column of numbers, a number in its units (1)."
        ),
    ] = None
    group_column: Annotated[str | None, Field(description="group: rows with one value stay in one part.")] = None
    valid_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2
    test_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.2
    seed: int = 0

    @field_validator("gap", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.lstrip("+-").upper().startswith("P"):  # ISO 8601 "P7D": pydantic
            try:
                return parse_gap(value)
            except LooplineError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _options_fit_the_method(self) -> SplitConfig:
        if self.method == "group" and self.group_column is None:
            raise ValueError("method 'group' needs group_column: the column whose rows must stay together.")
        if self.group_column is not None and self.method != "group":
            raise ValueError(f"group_column only applies to method 'group', not {self.method!r}; set method: group.")
        if self.gap is not None and self.method != "time":
            raise ValueError(f"gap only applies to method 'time', not {self.method!r}; remove gap or use method: time.")
        negative = self.gap < timedelta(0) if isinstance(self.gap, timedelta) else (self.gap or 0) < 0
        if negative:
            raise ValueError(f"gap {self.gap} is negative; use a positive duration such as 7d.")
        bounds = [b for b in (self.valid_from, self.test_from) if b is not None]
        if len({isinstance(b, int | float) for b in bounds}) > 1:
            raise ValueError("valid_from and test_from mix a number and a time; write both the same way.")
        return self


class CVConfig(StepConfig):
    """``cv:`` of a train step: cross-validate the candidate's configuration on the training split."""

    folds: Annotated[
        int,
        Field(description="Folds (>= 2). Each refits transforms, preprocessing and estimator on its training rows."),
    ] = 5
    method: Annotated[
        Literal["auto", "kfold", "stratified", "group", "time"],
        Field(
            description="auto: stratified for classification, kfold for regression; group: rows sharing "
            "group_column are held out together; time: expanding window on time_column (past -> future)."
        ),
    ] = "auto"
    group_column: Annotated[str | None, Field(description="method group: the column whose rows stay together.")] = None
    time_column: Annotated[
        str | None, Field(description="method time: the column ordering the folds; each trains strictly before.")
    ] = None
    seed: Annotated[
        int | None, Field(description="Shuffles kfold/stratified/group folds; default: the train step's seed.")
    ] = None

    @field_validator("folds")
    @classmethod
    def _two_folds(cls, value: int) -> int:
        if value < 2:
            raise ValueError(f"folds={value} cannot cross-validate; use folds >= 2 (5 is common), or remove cv.")
        return value

    @model_validator(mode="after")
    def _columns_fit_the_method(self) -> CVConfig:
        for method, key in (("group", "group_column"), ("time", "time_column")):
            if self.method == method and getattr(self, key) is None:
                raise ValueError(f"method {method!r} needs {key}; set {key}: the column to fold by.")
            if getattr(self, key) is not None and self.method != method:
                raise ValueError(f"{key} only applies to method {method!r}; set method: {method} or remove {key}.")
        return self


class TrainConfig(TrainSpec, StepConfig):
    """Train one candidate: fitted preprocessing + estimator, scored on every split given.

    The training keys are :class:`loopline.train.TrainSpec`'s (the config is passed to
    ``train_candidate`` whole); the ones below are the step's own.
    """

    reference_rows: Annotated[int, Field(ge=100, description="Training rows kept as the drift reference.")] = 5000
    slices: Annotated[
        list[str],
        Field(description="Categorical input columns: metrics per value on valid and test (report: slice_metrics)."),
    ] = []
    slice_top: Annotated[int, Field(ge=1, description="Slices per column: the most frequent values; rest 'other'.")] = (
        10
    )
    slice_min_rows: Annotated[int, Field(ge=1, description="Slices with fewer rows report their rows only.")] = 30
    threads: Annotated[
        int | None,
        Field(
            ge=1,
            description="CPU threads of the step's fits and predictions: the OpenMP pool of its runner thread "
            "(hist_gradient_boosting, LightGBM, XGBoost) and n_jobs of LightGBM, XGBoost and forests unless "
            "params set it; null: the libraries' default, all cores. Candidates run side by side: on 2 cores, "
            "two train steps with threads: 1 each train at once. The process-wide BLAS pool is not limited.",
        ),
    ] = None
    cv: Annotated[
        CVConfig | None,
        Field(
            description="Also cross-validate on the training split: per-fold metrics, their mean (model "
            "metrics split 'cv') and std; the model kept is still the one fitted on the whole training split."
        ),
    ] = None


class SelectConfig(StepConfig):
    """Register every candidate under ``model``; pick the best by ``metric`` on the validation split;
    promote it if it beats the production model on the holdout (the last input, when it is a table).

    In a retrain (``loopline monitor --retrain``) the step registers and ranks only; the holdout gate then
    uses ``monitor.retrain.metric``, ``monitor.retrain.min_improvement`` and ``monitor.retrain.gate``.

    ``gate`` is the deployment gate (:class:`~loopline.core.config.GateConfig`): margins per metric, floors,
    budgets and the infrastructure validation; with no ``gate.metrics`` its margin is ``min_improvement`` on
    ``metric``.

    A suspicious best candidate (its train step's diagnostics found a target-derived feature or a
    near-perfect validation score) is not promoted unless ``allow_suspicious`` is true."""

    model: Annotated[str, Field(pattern=MODEL_NAME_PATTERN)]
    metric: str = "roc_auc"
    promote: Literal["if_better", "always", "never"] = "if_better"
    min_improvement: float = 0.0
    allow_suspicious: Annotated[
        bool,
        Field(
            description="Promote the best candidate even when its train step flagged target leakage or a "
            "near-perfect validation score (the flags stay on the leaderboard)."
        ),
    ] = False
    gate: Annotated[
        GateConfig,
        Field(
            description="The deployment gate: metrics: {roc_auc: {min_improvement: 0.002}, log_loss: "
            "{max_regression: 0.01}}, floors: {roc_auc: 0.7}, budgets: {latency_p99_ms: 5, bundle_mb: 50}, "
            "infra_validation: true."
        ),
    ] = GateConfig()

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        """Checked when the pipeline loads, not after every candidate has trained."""
        if value not in METRIC_DIRECTION:
            hint = did_you_mean(value, METRIC_DIRECTION) or f"Metrics: {', '.join(sorted(METRIC_DIRECTION))}."
            raise ConfigError(f"unknown metric {value!r}.", key="metric", hint=hint)
        return value

    @field_validator("gate")
    @classmethod
    def _known_gate_metrics(cls, value: GateConfig) -> GateConfig:
        check_gate_metrics(value, "gate")
        return value

    @model_validator(mode="after")
    def _one_margin(self) -> SelectConfig:
        if self.gate.metrics and "min_improvement" in self.model_fields_set:
            raise ConfigError(
                "min_improvement and gate.metrics both set the gate's margin.",
                key="min_improvement",
                hint=f"Move it into gate.metrics: {{{self.metric}: {{min_improvement: {self.min_improvement:g}}}}}.",
            )
        return self


class Split(StepType[SplitConfig]):
    """``type: split`` — outputs ``train``, ``valid``, ``test`` and ``report``.

    The report records the split in the run: method, seed, the rows of the input and
    of each part, and the rows dropped (null target, inside a time gap).
    """

    type_name = "split"
    Config = SplitConfig
    outputs = ("train", "valid", "test", "report")
    min_inputs = max_inputs = 1

    def run(self, config: SplitConfig, inputs: list[Any], ctx: StepContext) -> dict[str, Any]:
        frame: pl.DataFrame = inputs[0]
        require_columns(frame, [config.target], "the input of split")
        rows_in = frame.height
        missing = frame[config.target].null_count()
        if missing:
            ctx.log.info("dropped %d rows with a null target %r", missing, config.target)
            frame = frame.filter(pl.col(config.target).is_not_null())
        parts = split_table(
            frame,
            method=config.method,
            target=config.target,
            time_column=config.time_column,
            valid_from=config.valid_from,
            test_from=config.test_from,
            valid_fraction=config.valid_fraction,
            test_fraction=config.test_fraction,
            seed=config.seed,
            group_column=config.group_column,
            gap=config.gap,
        )
        rows = {name: part.height for name, part in parts.items()}
        in_gap = frame.height - sum(rows.values())
        if in_gap:
            ctx.log.info("dropped %d rows inside the %s gap before a boundary", in_gap, config.gap)
        report = {
            "method": config.method,
            "seed": config.seed,
            "rows": {"input": rows_in, **rows},
            "dropped": {"null_target": missing, "gap": in_gap},
            "step_config": config.model_dump(mode="json"),
        }
        return {**parts, "report": report}


class Train(StepType[TrainConfig]):
    """``type: train`` — inputs train, valid[, test]; outputs ``bundle``, ``reference``, ``profile`` (the drift
    reference profile of the training split), ``report``, ``performance`` (a binary classifier's performance
    reference: validation probabilities and labels) and ``golden`` (a few validation rows and the bundle's
    outputs on them: what the deployment gate's infrastructure validation reproduces)."""

    type_name = "train"
    Config = TrainConfig
    outputs = ("bundle", "reference", "profile", "report", "performance", "golden")
    min_inputs, max_inputs = 2, 3

    def run(self, config: TrainConfig, inputs: list[Any], ctx: StepContext) -> dict[str, Any]:
        train, valid = inputs[0], inputs[1]
        test = inputs[2] if len(inputs) == 3 and inputs[2].height else None
        features = config.features()
        if not features:
            raise ConfigError(
                f"step {ctx.step!r} names no feature.",
                key=f"steps.{ctx.step}.numeric",
                hint="List feature columns under 'numeric:' and/or 'categorical:'.",
            )
        for frame, where in ((train, "the training split"), (valid, "the validation split")):
            require_columns(frame, [*features, config.target], where)
        require_columns(valid, config.slices, "the validation split")
        spec = resolve_estimator(config.estimator)
        for task in spec.classes:  # imported now: thread pools loaded inside the limit below would escape it
            spec.load(task)
        with limited_threads(config.threads) as threads:  # cores leased from the process's budget
            params = thread_params(spec, config.params, threads["granted"])
            candidate = _fit(config, params, train, valid, test, ctx)
        # what the fit saw: {requested, granted, openmp, blas}
        return replace(candidate, report=replace(candidate.report, threads=ThreadInfo.from_dict(threads))).to_dict()


def _fit(
    config: TrainConfig,
    params: dict[str, Any],
    train: pl.DataFrame,
    valid: pl.DataFrame,
    test: pl.DataFrame | None,
    ctx: StepContext,
) -> Candidate:
    """The train step's work: the candidate on the whole training split, its scores, cross-validation.

    The config is passed to ``train_candidate`` whole (it is a TrainSpec), with ``params`` (the step's
    params plus its thread settings) in place of its own."""
    spec = config.model_copy(update={"params": params})
    result = train_candidate(train, valid, spec)
    for finding in result.findings:
        ctx.log.warning("%s: %s", finding.kind, finding.detail)
    if result.importance is not None and (result.importance.skipped or result.importance.note):
        ctx.log.info("feature importance: %s", result.importance.skipped or result.importance.note)
    metrics = dict(result.metrics)
    scored = {"valid": valid}
    if test is not None:
        metrics["test"] = result.bundle.evaluate(test)
        scored["test"] = test
    slices = {
        split: slice_metrics(result.bundle, frame, config.slices, top=config.slice_top, min_rows=config.slice_min_rows)
        for split, frame in scored.items()
    }
    cv = _cross_validate(spec, train, valid, ctx.step)
    if cv is not None:
        metrics["cv"] = cv.mean
    reference = train.select(config.features()).sample(n=min(config.reference_rows, train.height), seed=config.seed)
    # how the fit went (stopped, iterations, learning_curve, peak_rss_increase_mb) rides in the report's
    # timings, which the select step stores with the model version as it is
    report = replace(
        result.report(config, data_fingerprint=fingerprint(frame_hash(train), frame_hash(valid))),
        metrics=metrics,
        rows={"train": train.height, "valid": valid.height},
        slice_metrics=SliceMetrics.from_dict(slices) if config.slices else None,
        cv=cv,
        support={split: split_support(result.bundle, frame) for split, frame in scored.items()},
    )
    profile = ReferenceProfile.from_frame(
        train, numeric=config.numeric, categorical=config.categorical, seed=config.seed
    )
    scores = result.bundle.predict_table(valid)  # once: the output profile and the performance reference share it
    profile = profile_outputs(  # the model's outputs on the validation split, the training labels
        profile, scores, train.get_column(config.target), classes=result.bundle.classes, seed=config.seed
    )
    performance = performance_reference(result.bundle, valid, seed=config.seed, scores=scores)
    golden = golden_sample(result.bundle, valid, seed=config.seed)
    return Candidate(result.bundle.to_bytes(), reference, report, profile.to_json().encode(), performance, golden)


def split_support(bundle: ModelBundle, frame: pl.DataFrame) -> dict[str, int]:
    """The labelled rows ``frame``'s metrics were measured on (:data:`loopline.core.records.SplitSupport`):
    ``rows``, and a binary classifier's ``positives`` (its second class)."""
    counts = {"rows": frame.height}
    classes = bundle.classes
    if bundle.task == "binary" and classes is not None and len(classes) == 2:
        counts["positives"] = int((target_values(frame, bundle.target) == classes[1]).sum())
    return counts


PERFORMANCE_REFERENCE_ROWS = 5000
"""Validation rows kept as a classifier's performance reference (a sample when there are more)."""


def performance_reference(
    bundle: ModelBundle,
    valid: pl.DataFrame,
    *,
    seed: int = 0,
    rows: int = PERFORMANCE_REFERENCE_ROWS,
    scores: Mapping[str, Any] | None = None,
) -> pl.DataFrame | None:
    """A binary classifier's predicted ``probability`` of the positive class and the true ``label`` (True: the
    positive class) on at most ``rows`` validation rows: what performance estimation calibrates on. A
    multi-class classifier's: one ``probability:{class}`` column per class (in the model's order) and the true
    ``label`` (the class itself). None for a regression. ``scores``: the bundle's ``predict_table`` of all of
    ``valid`` when already computed."""
    if bundle.task not in ("binary", "multiclass") or not bundle.classes or len(bundle.classes) < 2:
        return None
    if bundle.task == "binary" and len(bundle.classes) != 2:
        return None
    valid = valid.with_row_index("__row").filter(pl.col(bundle.target).is_not_null())
    if not valid.height:
        return None
    sample = valid.sample(n=min(rows, valid.height), seed=seed) if valid.height > rows else valid
    if scores is None:
        matrix = bundle.predict_table(sample.drop("__row"))["probability"]
    else:
        matrix = scores["probability"][sample.get_column("__row").to_numpy()]
    truth = target_values(sample, bundle.target)
    if len(bundle.classes) > 2:
        columns = {f"probability:{c}": matrix[:, i] for i, c in enumerate(bundle.classes)}
        return pl.DataFrame({**columns, "label": pl.Series("label", truth).cast(pl.String)})
    return pl.DataFrame({"probability": matrix[:, 1], "label": truth == bundle.classes[1]})


def _cross_validate(config: TrainConfig, train: pl.DataFrame, valid: pl.DataFrame, step: str) -> CrossValidation | None:
    if config.cv is None:
        return None
    cv = config.cv
    return cross_validate(
        train,
        valid,
        config,
        folds=cv.folds,
        method=cv.method,
        group_column=cv.group_column,
        time_column=cv.time_column,
        fold_seed=config.seed if cv.seed is None else cv.seed,
        where=f"steps.{step}.cv",
    )


class Select(StepType[SelectConfig]):
    """``type: select`` — the model repository's door: register, rank, gate, promote.

    Its inputs are train steps (each a :class:`~loopline.core.records.Candidate`) and, last, the holdout
    table the gate compares the best candidate and the production model on. The decision is the loop
    policy's (:mod:`loopline.run.policy`); the output is a :class:`~loopline.core.records.Selection`.
    """

    type_name = "select"
    Config = SelectConfig
    min_inputs = 1
    cacheable = False
    input_mode = "all"

    def run(self, config: SelectConfig, inputs: list[Any], ctx: StepContext) -> dict[str, Any]:
        holdout = inputs[-1] if isinstance(inputs[-1], pl.DataFrame) else None
        candidates = _candidates(inputs, ctx.step)
        if ctx.store is None:
            raise ConfigError("the select step needs a store.", hint="Run the pipeline with loopline's Runner.")
        store: Store = ctx.store
        repository = store.models.with_check(check_servable)  # a bundle that cannot be served is not registered
        registered = [repository.register_candidate(config.model, c, run_id=ctx.run_id) for c in candidates]
        for version in registered:
            _metric(version.metrics, "valid", config.metric, ctx.step)  # every candidate is ranked
        first = rank_candidates(registered, config.metric)[0].version
        best = next(v for v in registered if v.version == first)
        rule = PromotionRule(
            config.promote,
            config.metric,
            config.min_improvement,
            f"steps.{ctx.step}.metric",
            allow_suspicious=config.allow_suspicious,
            allow_key=f"steps.{ctx.step}.allow_suspicious",
            gate=config.gate,
        )
        decision = promote(store, config.model, best, holdout, rule, run_id=ctx.run_id)
        selection = Selection(
            model=config.model,
            candidates=tuple(CandidateSummary(v.version, v.algorithm, v.metrics) for v in registered),
            best=best.version,
            promote=decision.promote,
            reason=decision.reason,
            gate=decision.gate,
            metric=config.metric,
            # every candidate, best first by the metric on valid
            leaderboard=tuple(
                rank_candidates(registered, config.metric, promoted=best.version if decision.promote else None)
            ),
        )
        return {"out": selection.to_dict()}


def _candidates(inputs: list[Any], step: str) -> list[Candidate]:
    """The candidates among the select step's inputs (train steps' outputs, told by their report's marker).

    A step's outputs that look like a candidate but are malformed, or the outputs of another kind of step,
    are a ConfigError naming the input."""
    candidates = []
    for index, value in enumerate(inputs):
        where = f"steps.{step}.inputs[{index}]"
        if Candidate.is_one(value) or (isinstance(value, dict) and "report" in value):
            candidates.append(Candidate.from_dict(value, where=where))
        elif isinstance(value, dict):
            raise ConfigError(
                f"{where} is not a candidate: it has outputs {', '.join(map(str, value)) or 'none'}, "
                "not a train step's bundle, reference and report.",
                key=where,
                hint="List train steps (and, last, the holdout table such as split.test) as the select step's inputs.",
            )
    if not candidates:
        raise ConfigError(
            f"step {step!r} has no candidate among its inputs.",
            key=f"steps.{step}.inputs",
            hint="List the 'train' steps whose candidates to compare.",
        )
    return candidates


def _metric(metrics: dict[str, Any], split: str, metric: str, step: str) -> float:
    try:
        return float(metrics[split][metric])
    except KeyError:
        known = sorted(metrics.get(split, {}))
        raise DataError(
            f"step {step!r}: candidates have no {split} metric {metric!r}.",
            hint=f"Set steps.{step}.metric to one of {', '.join(known)}.",
        ) from None


def frame_hash(frame: pl.DataFrame) -> str:
    """A cheap content hash of ``frame`` (its rows and row hashes), the part of a data fingerprint per split."""
    return f"{frame.height}:{int(frame.hash_rows(seed=0).sum()) if frame.height else 0}"
