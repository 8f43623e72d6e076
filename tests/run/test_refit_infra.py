"""What the retrain promotes passes the infrastructure validation, not only what the gate measured: the refit of
the gated version is a new bundle, loaded in a fresh process with no network before it becomes production."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.run.test_retrain_loop import at, regimes, windowed

import loopline.run._refit as refit_module
from loopline.bundle import ESTIMATORS, EstimatorSpec
from loopline.core.config import GateConfig, RetrainConfig
from loopline.core.records import GATE_VERDICT_KEY, GateVerdict
from loopline.run import retrain_and_gate
from loopline.store import Store


def stored_verdict(store: Store, version: int) -> GateVerdict:
    verdict = GateVerdict.from_dict(store.models.get("loop", version).config.get(GATE_VERDICT_KEY))
    assert verdict is not None
    return verdict


@pytest.fixture
def refit_only_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The refit fits an estimator whose module exists only on this process's path (a dependency the serving
    environment lacks, picked up between the gated fit and the refit): it loads here, not in a fresh process."""
    package = tmp_path / "refit_only_here"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from sklearn.linear_model import LogisticRegression\n\n\nclass Mine(LogisticRegression):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    ESTIMATORS.names()
    spec = EstimatorSpec("refit_only_here", {"binary": "refit_only_here:Mine"}, seed_param=None)
    monkeypatch.setitem(ESTIMATORS._items, spec.name, spec)
    real = refit_module.refit_candidate

    def refit_with_mine(train: Any, valid: Any, config: Any, params: Any, training: Any) -> Any:
        return real(train, valid, config.model_copy(update={"estimator": spec.name}), params, training)

    monkeypatch.setattr(refit_module, "refit_candidate", refit_with_mine)
    yield
    sys.modules.pop("refit_only_here", None)


def test_a_refit_that_does_not_load_in_a_fresh_process_is_not_promoted(store: Store, refit_only_here: None) -> None:
    selection = retrain_and_gate(store, windowed(RetrainConfig(), regimes()), at("2013-07-01"))
    gated = selection.best
    assert selection.promote and selection.refit is not None and not selection.refit.refitted
    assert selection.refit.version is None and selection.promoted == gated
    assert store.models.production("loop").version == gated  # type: ignore[union-attr]
    (refit,) = [v for v in store.models.list("loop") if v.version != gated]
    assert refit.stage == "candidate" and refit.typed_config.refit is not None
    why = f"the refit v{refit.version} of v{gated} failed the infrastructure validation (infra_validation: "
    assert why in selection.refit.reason and f"v{gated} promoted as gated" in selection.refit.reason
    assert "the bundle does not load and predict in a fresh process" in selection.reason
    assert store.models.events("loop")[-1]["reason"] == selection.reason
    verdict = stored_verdict(store, refit.version)  # the reason stays with the refused refit
    assert not verdict.passed and verdict.evaluated_on == f"refit of v{gated}"
    (check,) = verdict.checks
    assert check.name == "infra_validation" and "refit_only_here" in (check.detail or "")
    assert stored_verdict(store, gated).passed  # the gated version passed its own


def test_the_promoted_refit_carries_its_own_infra_verdict(store: Store) -> None:
    selection = retrain_and_gate(store, windowed(RetrainConfig(), regimes()), at("2013-07-01"))
    assert selection.refit is not None and selection.refit.refitted and selection.refit.version is not None
    assert store.models.production("loop").version == selection.refit.version  # type: ignore[union-attr]
    verdict = stored_verdict(store, selection.refit.version)
    (check,) = verdict.checks
    assert verdict.passed and check.name == "infra_validation"
    assert "32 golden rows reproduced bit for bit" in (check.detail or "")


def test_no_fresh_process_for_the_refit_when_infra_validation_is_off(store: Store, refit_only_here: None) -> None:
    config = RetrainConfig(gate=GateConfig(infra_validation=False))
    selection = retrain_and_gate(store, windowed(config, regimes()), at("2013-07-01"))
    assert selection.refit is not None and selection.refit.refitted
    assert store.models.production("loop").version == selection.refit.version  # type: ignore[union-attr]
    assert GATE_VERDICT_KEY not in store.models.get("loop", selection.refit.version).config  # type: ignore[arg-type]
