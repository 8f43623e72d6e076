"""A refitted version keeps the importance its gated fit measured on the validation rows while they were unseen."""

from __future__ import annotations

from tests.run.test_retrain import END, loop_pipeline

from loopline.core.config import RetrainConfig
from loopline.core.records import IMPORTANCE_KEY
from loopline.run import Runner, retrain_and_gate
from loopline.store import Store
from loopline.train import TrainSpec, refit_spec


def test_the_refit_measures_no_importance_of_its_own() -> None:
    spec = TrainSpec(target="y", numeric=["x"], estimator="logistic_regression")
    assert spec.importance and not refit_spec(spec, {}, None)[0].importance


def test_a_refitted_version_carries_the_gated_versions_importance(store: Store) -> None:
    Runner(store).run(loop_pipeline(RetrainConfig()))
    selection = retrain_and_gate(store, loop_pipeline(RetrainConfig(min_improvement=-1.0)), END)
    assert selection.promote and selection.refit is not None and selection.refit.version is not None
    gated = store.models.get("loop", selection.refit.of)
    refitted = store.models.get("loop", selection.refit.version)
    assert refitted.config["refit"]["of"] == gated.version
    assert set(gated.config[IMPORTANCE_KEY]) == {"x", "g"}
    assert refitted.config[IMPORTANCE_KEY] == gated.config[IMPORTANCE_KEY]
    assert refitted.typed_config.importance == gated.typed_config.importance
