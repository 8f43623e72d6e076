"""Search spaces: parsed and validated at load with the key and a did-you-mean; applied over the whole bundle."""

from __future__ import annotations

from typing import Any

import pytest

from loopline.core.errors import ConfigError
from loopline.train import TrainSpec
from loopline.tune import TuneSpec, parse_space

BASE = TrainSpec(
    target="y",
    numeric=["x0", "x1"],
    estimator="lightgbm",
    params={"n_estimators": 30},
    transforms=[{"type": "impute", "columns": ["x0"], "strategy": "mean"}],
)


def spec(**options: Any) -> TuneSpec:
    return TuneSpec.parse({"target": "y", "numeric": ["x0", "x1"], "estimator": "lightgbm", **options})


def test_a_space_over_estimator_prep_and_transform_options_applies_to_a_train_spec() -> None:
    space = parse_space(
        {
            "model.learning_rate": {"float": [0.01, 0.3], "log": True},
            "model.num_leaves": {"int": [4, 64], "step": 4},
            "prep.scale": {"choice": ["standard", None]},
            "prep.impute.strategy": {"choice": ["mean", "median"]},
        },
        BASE,
    )
    applied = space.apply(
        {"model.learning_rate": 0.1, "model.num_leaves": 8, "prep.scale": None, "prep.impute.strategy": "median"},
        BASE,
    )
    assert applied.params == {"n_estimators": 30, "learning_rate": 0.1, "num_leaves": 8}
    assert applied.prep == {"scale": None}
    assert applied.transforms == [{"type": "impute", "columns": ["x0"], "strategy": "median"}]
    assert BASE.transforms[0]["strategy"] == "mean"  # the base is left as it was


def test_a_conditional_space_starts_another_estimator_from_its_defaults() -> None:
    space = parse_space(
        {
            "estimator": {
                "lightgbm": {"model.num_leaves": {"int": [4, 8]}},
                "random_forest": {"model.max_depth": {"int": [2, 5]}},
            }
        },
        BASE,
    )
    assert space.estimators == ("lightgbm", "random_forest")
    forest = space.apply({"estimator": "random_forest", "model.max_depth": 3}, BASE)
    assert forest.estimator == "random_forest" and forest.params == {"max_depth": 3}
    boosted = space.apply({"estimator": "lightgbm", "model.num_leaves": 5}, BASE)
    assert boosted.params == {"n_estimators": 30, "num_leaves": 5}


@pytest.mark.parametrize(
    ("space", "key", "words"),
    [
        ({"model.learning_rte": {"float": [0.01, 0.3]}}, "space.model.learning_rte", "learning_rate"),
        ({"learning_rate": {"float": [0.01, 0.3]}}, "space.learning_rate", "model.learning_rate"),
        ({"model.learning_rate": {"flaot": [0.01, 0.3]}}, "space.model.learning_rate.flaot", "float"),
        ({"model.learning_rate": {"float": [0.3, 0.01]}}, "space.model.learning_rate.float", "not below"),
        ({"model.learning_rate": {"float": [0, 0.3], "log": True}}, "space.model.learning_rate.log", "low > 0"),
        ({"model.num_leaves": {"int": [2.5, 8]}}, "space.model.num_leaves.int", "integers"),
        ({"model.num_leaves": {"choice": []}}, "space.model.num_leaves.choice", "non-empty"),
        ({"prep.scael": {"choice": ["standard"]}}, "space.prep.scael", "scale"),
        ({"prep.scale": {"choice": ["standrd"]}}, "space.prep.scale", "standard"),
        ({"prep.imput.strategy": {"choice": ["mean"]}}, "space.prep.imput.strategy", "impute"),
        ({"prep.impute.strategy": {"choice": ["avg"]}}, "space.prep.impute.strategy", "strategy"),
        ({"estimator": {"lightgmb": {}}}, "space.estimator.lightgmb", "lightgbm"),
        (
            {"estimator": {"random_forest": {"model.num_leaves": {"int": [2, 5]}}}},
            "space.estimator.random_forest.model.num_leaves",
            "random_forest",
        ),
        ({}, "space", "Name what to search"),
    ],
)
def test_a_wrong_space_names_the_key_and_the_fix(space: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_space(space, BASE)
    assert caught.value.key == key
    assert words in str(caught.value)


def test_the_spec_checks_its_space_metric_budget_and_sampler_when_it_loads() -> None:
    with pytest.raises(ConfigError, match="roc_auc") as caught:
        spec(space={"model.num_leaves": {"int": [4, 8]}}, metric="roc_aux")
    assert caught.value.key == "metric"
    with pytest.raises(ConfigError, match="n_trials, timeout_s"):
        spec(space={"model.num_leaves": {"int": [4, 8]}}, n_trials=None)
    with pytest.raises(ConfigError, match="continuous") as caught:
        spec(space={"model.learning_rate": {"float": [0.01, 0.3]}}, sampler="grid")
    assert caught.value.key == "space.model.learning_rate"
    with pytest.raises(ConfigError, match="nsga2"):
        spec(space={"model.num_leaves": {"int": [4, 8]}}, sampler="cmaes", tradeoff="latency_ms")
    with pytest.raises(ConfigError, match="prunes single-objective"):
        spec(space={"model.num_leaves": {"int": [4, 8]}}, pruner="median", tradeoff="bundle_kb")
    with pytest.raises(ConfigError, match="sets") as caught:
        spec(space={"model.num_leaves": {"int": [4, 8]}}, sets=[{"type": "windws", "column": "t"}])


def test_a_stepped_float_and_ints_make_a_grid() -> None:
    tuned = spec(
        space={"model.learning_rate": {"float": [0.1, 0.3], "step": 0.1}, "model.num_leaves": {"int": [4, 6]}},
        sampler="grid",
    )
    assert tuned.search_space().grid() == {"model.learning_rate": [0.1, 0.2, 0.3], "model.num_leaves": [4, 5, 6]}


def test_the_sampler_defaults_to_tpe_and_to_nsga2_with_a_tradeoff() -> None:
    assert spec(space={"model.num_leaves": {"int": [4, 8]}}).sampler_name() == "tpe"
    assert spec(space={"model.num_leaves": {"int": [4, 8]}}, tradeoff="latency_ms").sampler_name() == "nsga2"


def test_importing_loopline_tune_does_not_import_optuna() -> None:
    import subprocess
    import sys

    code = "import sys, loopline.tune, loopline.run.steps._tune; print('optuna' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
