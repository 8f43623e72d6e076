"""Orchestration: run pipelines (DAG, cache, records, resume) and the loop policy (rank, gate, retrain, promote)."""

from loopline.run._choice import make_executor
from loopline.run._compare import compare_models, data_versions
from loopline.run._dask import DaskExecutor
from loopline.run._evaluate import Evaluation, evaluate_models, evaluation_key
from loopline.run._executor import Executor, LocalExecutor, SequentialExecutor
from loopline.run._export import Export, export_model, model_card
from loopline.run._feedback import LabelLoad, load_label_file, sync_label_source
from loopline.run._ingest import IngestReport, ingest_source
from loopline.run._leaderboard import run_leaderboard
from loopline.run._live import LiveComparison, LiveSide, compare_live
from loopline.run._loop import MonitorResult, monitor_model
from loopline.run._profile import dataset_profile, stored_profile
from loopline.run._replay import replay_dead_letters
from loopline.run._runner import Runner, RunResult, StepOutcome
from loopline.run._score import BatchScore, ScoreProgress, score_batch
from loopline.run._source_status import SourceStatus
from loopline.run._supervisor import (
    ContinuousSource,
    RestartPolicy,
    Supervisor,
    continuous_sources,
    sources_status,
)
from loopline.run._task import StepResult, StepTask, execute_step
from loopline.run._windows import WindowCheck, check_windows, stored_windows, window_drift
from loopline.run.policy import (
    MIN_RETRAIN_ROWS,
    WINDOW_PARAMS,
    Promotion,
    PromotionRule,
    compete,
    decide_probation,
    decide_retrain,
    gate,
    probation,
    promote,
    rank_candidates,
    retrain_and_gate,
    retrain_params,
    selection_of,
    suspicion,
)

__all__ = [
    "MIN_RETRAIN_ROWS",
    "WINDOW_PARAMS",
    "BatchScore",
    "ContinuousSource",
    "DaskExecutor",
    "Evaluation",
    "Executor",
    "Export",
    "IngestReport",
    "LabelLoad",
    "LiveComparison",
    "LiveSide",
    "LocalExecutor",
    "MonitorResult",
    "Promotion",
    "PromotionRule",
    "RestartPolicy",
    "RunResult",
    "Runner",
    "ScoreProgress",
    "SequentialExecutor",
    "SourceStatus",
    "StepOutcome",
    "StepResult",
    "StepTask",
    "Supervisor",
    "WindowCheck",
    "check_windows",
    "compare_live",
    "compare_models",
    "compete",
    "continuous_sources",
    "data_versions",
    "dataset_profile",
    "decide_probation",
    "decide_retrain",
    "evaluate_models",
    "evaluation_key",
    "execute_step",
    "export_model",
    "gate",
    "ingest_source",
    "load_label_file",
    "make_executor",
    "model_card",
    "monitor_model",
    "probation",
    "promote",
    "rank_candidates",
    "replay_dead_letters",
    "retrain_and_gate",
    "retrain_params",
    "run_leaderboard",
    "score_batch",
    "selection_of",
    "sources_status",
    "stored_profile",
    "stored_windows",
    "suspicion",
    "sync_label_source",
    "window_drift",
]
