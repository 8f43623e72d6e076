"""The loop's policy, in one place (one module per concept): rank, gate, decide to retrain, promote.

One entry point each, called by the select step, ``loopline monitor``, the quickstart, and whatever
runs the loop next (a dashboard, a long-running service):

- :func:`rank_candidates` — best first by one metric on one split, in the metric's direction
  (:data:`loopline.train.METRIC_DIRECTION`; unknown metrics: higher is better), ties in the order given,
  candidates without the metric last and unranked.
- :func:`gate` — the challenger replaces the champion only when it gains more than ``min_improvement``.
- :func:`run_gate` / :func:`judge` — the deployment gate: margins per metric against the champion on the same
  holdout, floors, budgets (one-record p99 latency, bundle size: :func:`one_record_p99_ms`) and the
  infrastructure validation (:func:`validate_infra`: a fresh ``python -I`` process without network reproduces
  the golden predictions bit for bit); the verdict keeps every check and is stored on the challenger.
- :func:`decide_retrain` — retrain when enough features drifted on enough rows.
- :func:`promote` — the select step's rule (``if_better``, ``always``, ``never``) applied to the best
  candidate, gated on the holdout against the production model, and the store's promotion. A suspicious
  candidate (its training diagnostics found target leakage or a near-perfect validation score) is never
  promoted unless the rule allows it (the select step's ``allow_suspicious``); see :func:`suspicion`.
- :func:`compete` — the production model, the retrain's best candidate and the retained earlier versions
  scored on the same newest labelled window; the best of them is gated against the champion.
- :func:`retrain_and_gate` — re-run a pipeline on the most recent window (or, without one, on the newest
  data); its select step registers and ranks the candidates, :func:`compete` decides with
  ``monitor.retrain.metric`` and ``monitor.retrain.min_improvement``, and a new winner is refitted on
  its whole window (train, valid, holdout) before it is promoted.
- :func:`decide_probation` / :func:`probation` — after a promotion, roll back to the previous version when
  it does better on the probation window by more than a margin, or the new one fails more requests.
"""

from loopline.run.policy._compete import compete
from loopline.run.policy._gate import Measured, check_gate_metrics, judge, one_record_p99_ms, run_gate
from loopline.run.policy._infra import InfraResult, validate_infra
from loopline.run.policy._probation import decide_probation, probation
from loopline.run.policy._retrain import RunPipeline, retrain_and_gate, retrain_params, select_step, selection_of
from loopline.run.policy._rules import (
    MIN_RETRAIN_ROWS,
    WINDOW_PARAMS,
    PromoteMode,
    Promotion,
    PromotionRule,
    Rankable,
    decide_retrain,
    gate,
    higher_is_better,
    metric_value,
    promote,
    rank_candidates,
    suspicion,
)
from loopline.run.policy._significance import MetricSample, hanley_mcneil, standard_error
from loopline.run.policy._triggers import (
    Cooldown,
    LoopSignals,
    TriggerDecision,
    TriggerName,
    cooldown,
    drift_importance,
    drift_trigger,
    drifted_weights,
    evaluate_triggers,
    labels_decide,
    metric_trigger,
    schedule_trigger,
    volume_trigger,
)

__all__ = [
    "MIN_RETRAIN_ROWS",
    "WINDOW_PARAMS",
    "Cooldown",
    "InfraResult",
    "LoopSignals",
    "Measured",
    "MetricSample",
    "PromoteMode",
    "Promotion",
    "PromotionRule",
    "Rankable",
    "RunPipeline",
    "TriggerDecision",
    "TriggerName",
    "check_gate_metrics",
    "compete",
    "cooldown",
    "decide_probation",
    "decide_retrain",
    "drift_importance",
    "drift_trigger",
    "drifted_weights",
    "evaluate_triggers",
    "gate",
    "hanley_mcneil",
    "higher_is_better",
    "judge",
    "labels_decide",
    "metric_trigger",
    "metric_value",
    "one_record_p99_ms",
    "probation",
    "promote",
    "rank_candidates",
    "retrain_and_gate",
    "retrain_params",
    "run_gate",
    "schedule_trigger",
    "select_step",
    "selection_of",
    "standard_error",
    "suspicion",
    "validate_infra",
    "volume_trigger",
]
