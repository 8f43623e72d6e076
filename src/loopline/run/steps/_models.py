"""Model steps: split a table, train a candidate, register candidates and promote the best."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import polars as pl
from pydantic import Field, field_validator, model_validator

from loopline.core.config import MODEL_NAME_PATTERN
from loopline.core.errors import ConfigError, DataError, LooplineError
from loopline.core.hashing import fingerprint
from loopline.core.step import StepConfig, StepContext, StepType
from loopline.monitor import gate
from loopline.run._leaderboard import rank_candidates
from loopline.run.steps._tables import require_columns
from loopline.train import (
    METRIC_DIRECTION,
    TRAIN_METRICS_ROWS,
    ModelBundle,
    cross_validate,
    limited_threads,
    parse_gap,
    resolve_estimator,
    slice_metrics,
    split_table,
    thread_params,
    train_candidate,
)


class SplitConfig(StepConfig):
    """Split a labelled table into train, valid and test (rows with a null target are dropped and counted)."""

    target: str
    method: Literal["time", "stratified", "group", "random"] = "time"
    time_column: str | None = None
    valid_from: datetime | None = None
    test_from: datetime | None = None
    gap: Annotated[
        timedelta | None,
        Field(description='time: rows this long before valid_from / test_from are dropped, e.g. "7d", "12h".'),
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
        if self.gap is not None and self.gap < timedelta(0):
            raise ValueError(f"gap {self.gap} is negative; use a positive duration such as 7d.")
        return self


class EarlyStoppingConfig(StepConfig):
    """``early_stopping:`` of a train step; see ``loopline.train._iterative.EarlyStopping``."""

    patience: Annotated[int, Field(ge=1, description="Rounds without improvement on valid before stopping.")] = 20
    metric: Annotated[
        Literal["auto", "logloss", "error", "auc", "rmse", "mae"],
        Field(description="Watched on the validation split; auto: log loss / RMSE (HGB: its own loss)."),
    ] = "auto"


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


class TrainConfig(StepConfig):
    """Train one candidate: fitted preprocessing + estimator, scored on every split given."""

    target: str
    numeric: list[str] = []
    categorical: list[str] = []
    estimator: Annotated[
        str,
        Field(
            description="Registered estimator alias (hist_gradient_boosting) or a scikit-learn estimator's "
            "import path (sklearn.ensemble:ExtraTreesClassifier; only sklearn., lightgbm., xgboost.)."
        ),
    ]
    params: dict[str, Any] = {}
    prep: dict[str, Any] = {}
    transforms: Annotated[
        list[dict[str, Any]],
        Field(description="Transform chain fitted on the training split, carried in the bundle: [{type: ...}]."),
    ] = []
    task: Literal["auto", "binary", "multiclass", "regression"] = "auto"
    seed: int = 0
    reference_rows: Annotated[int, Field(ge=100, description="Training rows kept as the drift reference.")] = 5000
    early_stopping: Annotated[
        EarlyStoppingConfig | None,
        Field(description="lightgbm, xgboost, hist_gradient_boosting: stop when valid stops improving."),
    ] = None
    time_budget_s: Annotated[
        float | None, Field(gt=0, description="lightgbm, xgboost: stop adding rounds after this many seconds.")
    ] = None
    learning_curve: Annotated[
        bool,
        Field(
            description="lightgbm, xgboost: record the metric per round on valid without early_stopping or "
            "time_budget_s too (each round then also scores valid; with them it is always recorded)."
        ),
    ] = False
    train_metrics_rows: Annotated[
        int | None,
        Field(
            ge=1,
            description="Training rows the train metrics and curve are measured on: a sample seeded by seed "
            "(null: every row). Valid and test metrics always use every row.",
        ),
    ] = TRAIN_METRICS_ROWS
    class_weight: Annotated[
        Literal["balanced"] | dict[str | int | bool, Annotated[float, Field(gt=0)]] | None,
        Field(description="Classification: balanced, or {label: weight} (other labels weigh 1)."),
    ] = None
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

    @field_validator("estimator")
    @classmethod
    def _importable_estimator(cls, value: str) -> str:
        """Import paths are checked when the pipeline loads (module rule, class, kind); aliases when it runs."""
        if ":" in value or "." in value:
            try:
                resolve_estimator(value)
            except LooplineError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("transforms")
    @classmethod
    def _known_transforms(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from loopline.prep import Chain

        try:
            Chain.from_config(value)
        except LooplineError as exc:
            raise ValueError(str(exc)) from None
        return value


class SelectConfig(StepConfig):
    """Register every candidate under ``model``; pick the best by ``metric`` on the validation split;
    promote it if it beats the production model on the holdout (the last input, when it is a table)."""

    model: Annotated[str, Field(pattern=MODEL_NAME_PATTERN)]
    metric: str = "roc_auc"
    promote: Literal["if_better", "always", "never"] = "if_better"
    min_improvement: float = 0.0


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
    """``type: train`` — inputs train, valid[, test]; outputs ``bundle``, ``reference`` and ``report``."""

    type_name = "train"
    Config = TrainConfig
    outputs = ("bundle", "reference", "report")
    min_inputs, max_inputs = 2, 3

    def run(self, config: TrainConfig, inputs: list[Any], ctx: StepContext) -> dict[str, Any]:
        train, valid = inputs[0], inputs[1]
        test = inputs[2] if len(inputs) == 3 and inputs[2].height else None
        features = [*config.numeric, *config.categorical]
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
        params = thread_params(spec, config.params, config.threads)
        with limited_threads(config.threads) as threads:
            outputs = _fit(config, train, valid, test, params, ctx)
        outputs["report"]["threads"] = threads  # what the fit saw: {requested, openmp, blas}
        return outputs


def _fit(
    config: Any,
    train: pl.DataFrame,
    valid: pl.DataFrame,
    test: pl.DataFrame | None,
    params: dict[str, Any],
    ctx: StepContext,
) -> dict[str, Any]:
    """The train step's work: the candidate on the whole training split, its scores, cross-validation."""
    options = _candidate_options(config, params)
    result = train_candidate(train, valid, **options)
    metrics = dict(result.metrics)
    scored = {"valid": valid}
    if test is not None:
        metrics["test"] = result.bundle.evaluate(test)
        scored["test"] = test
    slices = {
        split: slice_metrics(result.bundle, frame, config.slices, top=config.slice_top, min_rows=config.slice_min_rows)
        for split, frame in scored.items()
    }
    cv = _cross_validate(config, train, valid, options, ctx.step)
    if cv is not None:
        metrics["cv"] = cv["mean"]
    features = [*config.numeric, *config.categorical]
    reference = train.select(features).sample(n=min(config.reference_rows, train.height), seed=config.seed)
    report = {
        "algorithm": config.estimator,
        "metrics": metrics,
        "params": result.params,
        # how the fit went (stopped, iterations, learning_curve, peak_rss_increase_mb) rides in timings,
        # which the select step stores with the model version as it is
        "timings": {**result.timings, "training": result.training},
        "input_schema": result.bundle.input_schema,
        "features": {"numeric": config.numeric, "categorical": config.categorical},
        "target": config.target,
        "task": result.bundle.task,
        "data_fingerprint": fingerprint(_frame_hash(train), _frame_hash(valid)),
        "rows": {"train": train.height, "valid": valid.height},
        "step_config": config.model_dump(mode="json"),
        "lineage": result.bundle.metadata.get("lineage"),  # output feature -> input columns (None: no chain)
        "slice_metrics": slices if config.slices else None,  # {split: {column: {value: {rows, metrics}}}}
        "cv": cv,  # {method, folds, seed, fold_rows, fold_metrics, mean, std, ...}; None without cv
    }
    return {"bundle": result.bundle.to_bytes(), "reference": reference, "report": report}


def _candidate_options(config: Any, params: dict[str, Any]) -> dict[str, Any]:
    """``train_candidate``'s keyword arguments for the step's configuration."""
    return {
        "target": config.target,
        "numeric": config.numeric,
        "categorical": config.categorical,
        "estimator": config.estimator,
        "params": params,
        "task": config.task,
        "prep": config.prep,
        "transforms": config.transforms,
        "seed": config.seed,
        "early_stopping": config.early_stopping.model_dump() if config.early_stopping else None,
        "time_budget_s": config.time_budget_s,
        "class_weight": config.class_weight,
        "learning_curve": config.learning_curve,
        "train_metrics_rows": config.train_metrics_rows,
    }


def _cross_validate(
    config: Any, train: pl.DataFrame, valid: pl.DataFrame, options: dict[str, Any], step: str
) -> dict[str, Any] | None:
    if config.cv is None:
        return None
    cv = config.cv
    return cross_validate(
        train,
        valid,
        folds=cv.folds,
        method=cv.method,
        group_column=cv.group_column,
        time_column=cv.time_column,
        fold_seed=config.seed if cv.seed is None else cv.seed,
        where=f"steps.{step}.cv",
        **options,
    )


class Select(StepType[SelectConfig]):
    """``type: select`` — the model repository's door: register, rank, gate, promote."""

    type_name = "select"
    Config = SelectConfig
    min_inputs = 1
    cacheable = False
    input_mode = "all"

    def run(self, config: SelectConfig, inputs: list[Any], ctx: StepContext) -> dict[str, Any]:
        holdout = inputs[-1] if isinstance(inputs[-1], pl.DataFrame) else None
        candidates = [i for i in inputs if isinstance(i, dict) and {"bundle", "report"} <= set(i)]
        if not candidates:
            raise ConfigError(
                f"step {ctx.step!r} has no candidate among its inputs.",
                key=f"steps.{ctx.step}.inputs",
                hint="List the 'train' steps whose candidates to compare.",
            )
        if ctx.store is None:
            raise ConfigError("the select step needs a store.", hint="Run the pipeline with loopline's Runner.")
        registered = [_register(ctx, config.model, c) for c in candidates]
        for version in registered:
            _metric(version.metrics, "valid", config.metric, ctx.step)  # every candidate is ranked
        first = rank_candidates(registered, config.metric)[0]["version"]
        best = next(v for v in registered if v.version == first)
        decision = _decide(ctx, config, best, holdout, METRIC_DIRECTION.get(config.metric, True))
        if decision["promote"]:
            ctx.store.models.promote(config.model, best.version, reason=decision["reason"])
        promoted = best.version if decision["promote"] else None
        return {
            "out": {
                "model": config.model,
                "candidates": [
                    {"version": v.version, "algorithm": v.algorithm, "metrics": v.metrics} for v in registered
                ],
                "best": best.version,
                **decision,
                "metric": config.metric,
                # every candidate, best first by the metric on valid (see loopline.run._leaderboard)
                "leaderboard": rank_candidates(registered, config.metric, promoted=promoted),
            }
        }


def _register(ctx: StepContext, model: str, candidate: dict[str, Any]) -> Any:
    store = ctx.store
    report = candidate["report"]
    return store.models.register_candidate(
        name=model,
        algorithm=report["algorithm"],
        bundle=candidate["bundle"],
        reference=candidate["reference"],
        metrics=report["metrics"],
        params=report["params"],
        config={
            "features": report["features"],
            "target": report["target"],
            "task": report["task"],
            "rows": report["rows"],
            "resolved": report["step_config"],
            "lineage": report.get("lineage"),  # reports cached before lineage was recorded lack it
            # per-slice metrics ride in the config: the model record's metrics stay {split: {metric: value}}
            "slice_metrics": report.get("slice_metrics"),
            # cross-validation: folds, seed, per-fold metrics and std; the means are the metrics' split "cv"
            "cv": report.get("cv"),
            "threads": report.get("threads"),
        },
        input_schema=report["input_schema"],
        data_fingerprint=report["data_fingerprint"],
        run_id=ctx.run_id,
        timings=report["timings"],
    )


def _decide(ctx: StepContext, config: Any, best: Any, holdout: pl.DataFrame | None, higher: bool) -> dict[str, Any]:
    store = ctx.store
    champion = store.models.production(config.model)
    if config.promote == "never":
        return {"promote": False, "reason": "promotion disabled (promote: never)", "gate": None}
    if champion is None:
        return {"promote": True, "reason": "no production model yet", "gate": None}
    if champion.version == best.version:
        return {"promote": False, "reason": f"version {best.version} is already in production", "gate": None}
    if config.promote == "always" or holdout is None or holdout.height == 0:
        why = "promote: always" if config.promote == "always" else "no holdout to compare on; best candidate wins"
        return {"promote": True, "reason": why, "gate": None}
    champion_bundle = ModelBundle.from_bytes(store.artifacts.get_bytes(champion.bundle_digest))
    challenger_bundle = ModelBundle.from_bytes(store.artifacts.get_bytes(best.bundle_digest))
    champion_metrics = champion_bundle.evaluate(holdout)
    challenger_metrics = challenger_bundle.evaluate(holdout)
    store.models.record_evaluation(config.model, champion.version, f"holdout_{ctx.run_id[:8]}", champion_metrics)
    store.models.record_evaluation(config.model, best.version, f"holdout_{ctx.run_id[:8]}", challenger_metrics)
    decision = gate(
        champion_metrics,
        challenger_metrics,
        metric=config.metric,
        min_improvement=config.min_improvement,
        higher_is_better=higher,
    )
    return {
        "promote": decision.promote,
        "reason": decision.reason,
        "gate": {
            "champion": champion.version,
            "challenger": best.version,
            "metric": config.metric,
            "champion_score": decision.champion,
            "challenger_score": decision.challenger,
        },
    }


def _metric(metrics: dict[str, Any], split: str, metric: str, step: str) -> float:
    try:
        return float(metrics[split][metric])
    except KeyError:
        known = sorted(metrics.get(split, {}))
        raise DataError(
            f"step {step!r}: candidates have no {split} metric {metric!r}.",
            hint=f"Set 'metric:' to one of {', '.join(known)}.",
        ) from None


def _frame_hash(frame: pl.DataFrame) -> str:
    return f"{frame.height}:{int(frame.hash_rows(seed=0).sum()) if frame.height else 0}"
