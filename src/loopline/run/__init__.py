"""Orchestration: run pipelines (DAG, cache, records, resume) and the loop policy (rank, gate, retrain, promote)."""

from loopline.run._choice import make_executor
from loopline.run._compare import compare_models, data_versions
from loopline.run._dask import DaskExecutor
from loopline.run._evaluate import Evaluation, evaluate_models, evaluation_key
from loopline.run._executor import Executor, LocalExecutor, SequentialExecutor
from loopline.run._export import Export, export_model, model_card
from loopline.run._ingest import IngestReport, ingest_source
from loopline.run._leaderboard import run_leaderboard
from loopline.run._loop import MonitorResult, monitor_model
from loopline.run._policy import (
    MIN_RETRAIN_ROWS,
    WINDOW_PARAMS,
    Promotion,
    PromotionRule,
    decide_retrain,
    gate,
    promote,
    rank_candidates,
    retrain_and_gate,
    retrain_params,
    selection_of,
    suspicion,
)
from loopline.run._profile import dataset_profile
from loopline.run._replay import replay_dead_letters
from loopline.run._runner import Runner, RunResult, StepOutcome
from loopline.run._score import BatchScore, ScoreProgress, score_batch
from loopline.run._task import StepResult, StepTask, execute_step
from loopline.run._windows import WindowCheck, check_windows, stored_windows, window_drift

__all__ = [
    "MIN_RETRAIN_ROWS",
    "WINDOW_PARAMS",
    "BatchScore",
    "DaskExecutor",
    "Evaluation",
    "Executor",
    "Export",
    "IngestReport",
    "LocalExecutor",
    "MonitorResult",
    "Promotion",
    "PromotionRule",
    "RunResult",
    "Runner",
    "ScoreProgress",
    "SequentialExecutor",
    "StepOutcome",
    "StepResult",
    "StepTask",
    "WindowCheck",
    "check_windows",
    "compare_models",
    "data_versions",
    "dataset_profile",
    "decide_retrain",
    "evaluate_models",
    "evaluation_key",
    "execute_step",
    "export_model",
    "gate",
    "ingest_source",
    "make_executor",
    "model_card",
    "monitor_model",
    "promote",
    "rank_candidates",
    "replay_dead_letters",
    "retrain_and_gate",
    "retrain_params",
    "run_leaderboard",
    "score_batch",
    "selection_of",
    "stored_windows",
    "suspicion",
    "window_drift",
]
