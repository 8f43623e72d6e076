"""The deployment gate: margins per metric in their own direction, floors, budgets and the infrastructure
validation (a fresh ``python -I`` process without network reproduces the golden predictions bit for bit); a
refused challenger stays a candidate with every check stored on its version."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from tests._candidates import frame, stub_candidate

from loopline.bundle import ESTIMATORS, EstimatorSpec, golden_sample
from loopline.core.config import GateConfig, MetricMargin, RetrainConfig
from loopline.core.errors import ConfigError
from loopline.core.records import GATE_VERDICT_KEY, GOLDEN_PREDICTIONS_KEY, GateVerdict
from loopline.core.yamlfile import parse_pipeline
from loopline.run import PromotionRule, compete, promote
from loopline.run.policy import Measured, judge, one_record_p99_ms, validate_infra
from loopline.run.policy._infra import _unshare
from loopline.run.steps._models import SelectConfig
from loopline.store import Store
from loopline.store.models import ModelVersion
from loopline.train import ModelBundle, TrainSpec, train_candidate

TRAIN, VALID, HOLDOUT = frame(400, 1), frame(150, 2), frame(200, 3)


def register(
    store: Store, estimator: str = "logistic_regression", *, golden: bool = True, numeric: tuple[str, ...] = ("x",)
) -> ModelVersion:
    spec = TrainSpec(target="label", numeric=list(numeric), categorical=["group"], estimator=estimator)
    result = train_candidate(TRAIN, VALID, spec)
    candidate = result.candidate(spec, data_fingerprint=estimator)
    if golden:
        candidate = dataclasses.replace(candidate, golden=golden_sample(result.bundle, VALID))
    return store.models.register_candidate("m", candidate)


def champion_and_challenger(store: Store) -> tuple[ModelVersion, ModelVersion]:
    """v1 (a weak model: the group alone) in production, v2 (the group and x) a candidate."""
    weak = register(store, numeric=())
    store.models.promote("m", weak.version)
    return weak, register(store)


def stored_verdict(store: Store, version: int) -> GateVerdict:
    verdict = GateVerdict.from_dict(store.models.get("m", version).config.get(GATE_VERDICT_KEY))
    assert verdict is not None
    return verdict


def checks_by_name(verdict: GateVerdict) -> dict[str, tuple[bool | None, float | None, float | None]]:
    return {c.name: (c.passed, c.value, c.threshold) for c in verdict.checks}


# -- the config ----------------------------------------------------------------------------------


def test_the_old_keys_are_the_gates_margin_when_no_metrics_are_declared() -> None:
    assert GateConfig().margins("roc_auc", 0.01) == {"roc_auc": MetricMargin(min_improvement=0.01)}
    declared = GateConfig.model_validate({"metrics": {"roc_auc": {"min_improvement": 0.002}, "log_loss": None}})
    assert declared.margins("roc_auc", 0.5) == {
        "roc_auc": MetricMargin(min_improvement=0.002),
        "log_loss": MetricMargin(),
    }
    assert GateConfig().infra_validation and RetrainConfig().gate == GateConfig()


def test_a_metric_takes_one_margin() -> None:
    with pytest.raises(ValueError, match="min_improvement or max_regression, not both"):
        MetricMargin(min_improvement=0.1, max_regression=0.1)
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        MetricMargin(max_regression=-1)


def select_pipeline(gate: str, extra: str = "") -> str:
    return textwrap.dedent(f"""
        name: gated
        steps:
          data: {{type: file, path: data.csv}}
          split: {{type: split, inputs: [data], target: label, method: random}}
          lr:
            type: train
            inputs: [split.train, split.valid]
            target: label
            numeric: [x]
            estimator: logistic_regression
          best:
            type: select
            inputs: [lr, split.test]
            model: m
            {extra}
            gate: {gate}
        """)


@pytest.mark.parametrize(
    ("gate", "extra", "match"),
    [
        ("{metrics: {roc_aux: {min_improvement: 0.01}}}", "", "unknown metric 'roc_aux'.*Did you mean 'roc_auc'"),
        ("{floors: {logloss: 0.5}}", "", "unknown metric 'logloss' in gate.floors.*Did you mean 'log_loss'"),
        ("{budgets: {latency_p99: 5}}", "", "latency_p99.*Did you mean 'latency_p99_ms'"),
        ("{infra_validaton: false}", "", "infra_validaton.*Did you mean 'infra_validation'"),
        ("{metrics: {roc_auc: {min_improvment: 0.1}}}", "", "min_improvment.*Did you mean 'min_improvement'"),
        ("{metrics: {roc_auc: {}}}", "min_improvement: 0.01", "Move it into gate.metrics"),
    ],
)
def test_a_wrong_gate_key_is_named_with_the_fix(gate: str, extra: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_pipeline(select_pipeline(gate, extra)).bind()


def test_a_declared_gate_loads() -> None:
    gate = "{metrics: {roc_auc: {min_improvement: 0.002}, log_loss: {max_regression: 0.01}}, floors: {roc_auc: 0.7}}"
    config = parse_pipeline(select_pipeline(gate)).bind()["best"].config
    assert isinstance(config, SelectConfig)
    assert config.gate.metrics["log_loss"] == MetricMargin(max_regression=0.01)
    assert config.gate.floors == {"roc_auc": 0.7} and config.gate.infra_validation


# -- the checks ----------------------------------------------------------------------------------


def measured(version: int, p99: float | None = 1.0, mb: float = 0.01, **scores: float) -> Measured:
    return Measured(version, scores, "holdout_r", p99, mb)


def test_each_metric_has_its_own_direction_and_margin() -> None:
    gate = GateConfig.model_validate(
        {"metrics": {"roc_auc": {"min_improvement": 0.002}, "log_loss": {"max_regression": 0.01}}}
    )
    old = measured(1, roc_auc=0.80, log_loss=0.40)

    def verdict(**scores: float) -> dict[str, tuple[bool | None, float | None, float | None]]:
        return checks_by_name(
            judge(measured(2, **scores), old, gate, metric="roc_auc", min_improvement=0.0, infra=None, evaluated_on="")
        )

    passing = verdict(roc_auc=0.803, log_loss=0.409)  # log loss 0.009 worse: within its 0.01
    assert passing["roc_auc margin"][:2] == (True, 0.803) and passing["roc_auc margin"][2] == pytest.approx(0.802)
    assert passing["log_loss margin"][:2] == (True, 0.409) and passing["log_loss margin"][2] == pytest.approx(0.41)
    assert verdict(roc_auc=0.8015, log_loss=0.3)["roc_auc margin"][0] is False  # gains 0.0015 <= 0.002
    assert verdict(roc_auc=0.9, log_loss=0.411)["log_loss margin"][0] is False  # lower is better: 0.011 worse


def test_floors_hold_in_the_metrics_direction_and_budgets_cap() -> None:
    gate = GateConfig.model_validate(
        {"floors": {"roc_auc": 0.7, "log_loss": 0.5}, "budgets": {"latency_p99_ms": 2, "bundle_mb": 1}}
    )
    result = judge(
        measured(2, p99=2.5, mb=0.5, roc_auc=0.69, log_loss=0.45),
        None,
        gate,
        metric="roc_auc",
        min_improvement=0.0,
        infra=(True, "ok", 1.0),
        evaluated_on="holdout",
    )
    checks = checks_by_name(result)
    assert checks["roc_auc margin"][0] is None  # no champion: nothing to beat
    assert checks["roc_auc floor"] == (False, 0.69, 0.7)
    assert checks["log_loss floor"] == (True, 0.45, 0.5)  # a ceiling: lower is better
    assert checks["latency_p99_ms"] == (False, 2.5, 2.0) and checks["bundle_mb"] == (True, 0.5, 1.0)
    assert not result.passed and [c.name for c in result.failed] == ["roc_auc floor", "latency_p99_ms"]
    assert "roc_auc floor: 0.6900, must be at least 0.7" in result.reasons()


def test_one_record_latency_is_timed_for_both_versions_on_the_same_records() -> None:
    spec = TrainSpec(target="label", numeric=["x"], categorical=["group"], estimator="logistic_regression")
    bundle = train_candidate(TRAIN, VALID, spec).bundle
    p99 = one_record_p99_ms([bundle, bundle], HOLDOUT, 50)
    assert all(value is not None and 0 < value < 1000 for value in p99)
    assert one_record_p99_ms([bundle], None, 50) == [None]


# -- the infrastructure validation -----------------------------------------------------------------


def test_the_fresh_process_has_no_network() -> None:
    """The guard the fresh process runs first: connecting to the machine's PostgreSQL raises."""
    from loopline.run.policy._infra import _GUARD

    guard = _GUARD.split("import runpy")[0]
    probe = guard + "\nimport socket\nsocket.create_connection(('127.0.0.1', 5432), timeout=5)\n"
    done = subprocess.run([*_unshare(), sys.executable, "-I", "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "network is disabled" in done.stderr
    socket.create_connection(("127.0.0.1", 5432), timeout=5).close()  # reachable from here


def test_golden_predictions_are_reproduced_bit_for_bit_or_the_first_difference_is_named() -> None:
    spec = TrainSpec(target="label", numeric=["x"], categorical=["group"], estimator="hist_gradient_boosting")
    bundle = train_candidate(TRAIN, VALID, spec).bundle
    golden = golden_sample(bundle, VALID)
    data = bundle.to_bytes()
    good = validate_infra(data, golden)
    assert good.passed and "32 golden rows reproduced bit for bit (table and records paths)" in good.detail
    column = "__golden__probability_1"
    nudged = golden.with_columns(
        pl.when(pl.int_range(pl.len()) == 5)
        .then(pl.col(column).map_elements(_next_float, pl.Float64))
        .otherwise(pl.col(column))
        .alias(column)
    )
    bad = validate_infra(data, nudged)
    assert not bad.passed
    assert "the table path does not reproduce the golden predictions: row 5, probability_1: expected" in bad.detail


def _next_float(value: float) -> float:
    import math

    return math.nextafter(value, 2.0)


@pytest.fixture
def user_estimator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An estimator whose module exists only on this process's path (as a dependency missing from the
    serving environment): a subclass of scikit-learn's logistic regression, registered in code here."""
    package = tmp_path / "only_here"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from sklearn.linear_model import LogisticRegression\n\n\nclass Mine(LogisticRegression):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    ESTIMATORS.names()
    spec = EstimatorSpec("mine_only_here", {"binary": "only_here:Mine"}, seed_param=None)
    monkeypatch.setitem(ESTIMATORS._items, spec.name, spec)
    yield spec.name
    sys.modules.pop("only_here", None)


def test_a_bundle_whose_dependency_is_missing_in_a_fresh_process_is_refused(store: Store, user_estimator: str) -> None:
    champion_and_challenger(store)
    mine = register(store, user_estimator)
    decision = promote(store, "m", mine, HOLDOUT, PromotionRule(), run_id="run-missing")
    assert not decision.promote and store.models.get("m", mine.version).stage == "candidate"
    assert "refused by the deployment gate" in decision.reason
    assert "infra_validation: the bundle does not load and predict in a fresh process" in decision.reason
    infra = next(c for c in stored_verdict(store, mine.version).checks if c.name == "infra_validation")
    assert infra.passed is False and "only_here" in infra.detail


# -- the gate in the loop --------------------------------------------------------------------------


def test_a_challenger_that_passes_every_check_is_promoted_and_its_verdict_kept(store: Store) -> None:
    champion, challenger = champion_and_challenger(store)
    assert GOLDEN_PREDICTIONS_KEY in challenger.config
    rule = PromotionRule(gate=GateConfig.model_validate({"floors": {"roc_auc": 0.6}, "budgets": {"bundle_mb": 50}}))
    decision = promote(store, "m", challenger, HOLDOUT, rule, run_id="run-pass")
    assert decision.promote and store.models.production("m").version == challenger.version  # type: ignore[union-attr]
    verdict = stored_verdict(store, challenger.version)
    assert verdict.passed and verdict.champion == champion.version
    assert verdict.evaluated_on == "holdout_run-pass (200 rows)"
    checks = checks_by_name(verdict)
    assert set(checks) == {"roc_auc margin", "roc_auc floor", "latency_p99_ms", "bundle_mb", "infra_validation"}
    same_rows = store.models.get("m", champion.version).metrics["holdout_run-pass"]
    assert checks["roc_auc margin"][2] == pytest.approx(same_rows["roc_auc"])  # the champion on the same rows
    latency = next(c for c in verdict.checks if c.name == "latency_p99_ms")
    assert latency.value is not None and latency.champion is not None  # both timed
    assert decision.gate is not None and decision.gate.verdict == verdict


def test_a_refused_challenger_stays_a_candidate_with_every_reason(store: Store) -> None:
    champion, challenger = champion_and_challenger(store)
    gate = GateConfig.model_validate(
        {
            "metrics": {"roc_auc": {"min_improvement": 0.0}, "log_loss": {"max_regression": 0.0}},
            "floors": {"roc_auc": 0.99},
            "budgets": {"latency_p99_ms": 0.000001, "bundle_mb": 0.000001},
        }
    )
    decision = promote(store, "m", challenger, HOLDOUT, PromotionRule(gate=gate), run_id="run-refuse")
    assert not decision.promote
    assert store.models.production("m").version == champion.version  # type: ignore[union-attr]
    assert store.models.get("m", challenger.version).stage == "candidate"
    verdict = stored_verdict(store, challenger.version)
    failed = [c.name for c in verdict.failed]
    assert failed == ["roc_auc floor", "latency_p99_ms", "bundle_mb"]
    for name in failed:
        assert f"{name}: " in decision.reason
    assert decision.reason.startswith(f"v{challenger.version} refused by the deployment gate (3 of 6 checks failed")


def test_the_retrains_competition_gates_its_winner(store: Store) -> None:
    _, challenger = champion_and_challenger(store)
    retrain = RetrainConfig.model_validate({"gate": {"floors": {"roc_auc": 0.99}}})
    rule = PromotionRule.for_retrain(retrain, "if_better")
    decision = compete(store, "m", challenger, HOLDOUT, rule, run_id="run-compete")
    assert not decision.promote and decision.winner is None
    assert decision.gate is not None and decision.gate.contenders and decision.gate.verdict is not None
    assert [c.name for c in decision.gate.verdict.failed] == ["roc_auc floor"]
    assert stored_verdict(store, challenger.version).evaluated_on == "holdout_run-comp (200 rows)"  # the run id's 8


def test_infra_validation_can_be_turned_off(store: Store) -> None:
    _, challenger = champion_and_challenger(store)
    rule = PromotionRule(gate=GateConfig(infra_validation=False))
    assert promote(store, "m", challenger, HOLDOUT, rule, run_id="run-off").promote
    infra = checks_by_name(stored_verdict(store, challenger.version))["infra_validation"]
    assert infra == (None, None, None)


def test_a_version_without_golden_predictions_is_still_loaded_in_a_fresh_process(store: Store) -> None:
    first = register(store, golden=False)
    decision = promote(store, "m", first, None, PromotionRule(), run_id="run-old")
    assert decision.promote
    infra = next(c for c in stored_verdict(store, first.version).checks if c.name == "infra_validation")
    assert infra.passed and "no golden predictions stored with it to compare" in infra.detail


def test_a_bundle_loaded_here_is_the_one_the_fresh_process_loads() -> None:
    """The golden table keeps the bundle's input columns and its outputs only."""
    spec = TrainSpec(target="label", numeric=["x"], categorical=["group"], estimator="logistic_regression")
    bundle = ModelBundle.from_bytes(train_candidate(TRAIN, VALID, spec).bundle.to_bytes())
    golden = golden_sample(bundle, VALID)
    assert golden.columns == [
        "x",
        "group",
        "__golden__prediction",
        "__golden__probability_0",
        "__golden__probability_1",
    ]
    assert golden.height == 32


def test_a_champion_that_no_longer_loads_sits_out_and_the_gate_still_decides(store: Store) -> None:
    broken = store.models.register_candidate("m", stub_candidate(b"not a bundle"))
    store.models.promote("m", broken.version)
    challenger = register(store)
    decision = compete(store, "m", challenger, HOLDOUT, PromotionRule(), run_id="run-broken")
    assert decision.promote and decision.winner == challenger.version
    checks = {c.name: c for c in stored_verdict(store, challenger.version).checks}
    assert checks["roc_auc margin"].passed and "the champion has no roc_auc" in checks["roc_auc margin"].detail
    assert checks["latency_p99_ms"].champion is None and checks["bundle_mb"].champion is None


def test_a_suspicious_candidate_has_its_refusal_stored_as_a_check(store: Store) -> None:
    from tests.run.test_policy import LEAK, suspicious_candidate

    leaky = store.models.register_candidate("m", suspicious_candidate(LEAK))
    decision = promote(store, "m", leaky, HOLDOUT, PromotionRule(), run_id="run-leak")
    assert not decision.promote and store.models.get("m", leaky.version).stage == "candidate"
    (check,) = stored_verdict(store, leaky.version).checks
    assert (check.name, check.passed) == ("suspicion", False) and check.detail == decision.reason
