from __future__ import annotations

import subprocess
import sys

import pytest

from loopline.core.errors import ConfigError, MissingExtraError
from loopline.train import ESTIMATORS, resolve_estimator

CONTRACT = {
    "logistic_regression",
    "random_forest",
    "extra_trees",
    "hist_gradient_boosting",
    "linear_regression",
    "ridge",
    "hist_gradient_boosting_regressor",
    "random_forest_regressor",
    "lightgbm",
}


def test_contract_aliases_are_registered() -> None:
    assert set(ESTIMATORS.names()) >= CONTRACT


@pytest.mark.parametrize("name", sorted(CONTRACT - {"lightgbm"}))
def test_each_builtin_builds_for_each_of_its_tasks(name: str) -> None:
    spec = ESTIMATORS.get(name)
    for task in spec.tasks:
        model = spec.build(task, seed=11)
        assert hasattr(model, "fit") and hasattr(model, "predict")
        if spec.seed_param:
            assert model.get_params()[spec.seed_param] == 11
        if task != "regression":
            assert hasattr(model, "predict_proba")


def test_hist_gradient_boosting_defaults_are_light() -> None:
    params = ESTIMATORS.get("hist_gradient_boosting").build("binary").get_params()
    assert params["max_iter"] == 200 and params["early_stopping"] is True
    assert ESTIMATORS.get("hist_gradient_boosting").build("binary", {"max_iter": 5}).max_iter == 5


def test_unknown_alias_task_and_parameter_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown estimator type 'hist_gradient_boost'.*Did you mean"):
        ESTIMATORS.get("hist_gradient_boost")
    with pytest.raises(ConfigError, match="unknown estimator 'hist_gradient_boost'.*Did you mean") as caught:
        resolve_estimator("hist_gradient_boost")
    assert caught.value.key == "estimator"
    with pytest.raises(ConfigError, match="'ridge' does not support task 'binary'.*logistic_regression"):
        ESTIMATORS.get("ridge").build("binary")
    with pytest.raises(ConfigError, match="no parameter 'max_iters'.*Did you mean 'max_iter'"):
        ESTIMATORS.get("logistic_regression").build("binary", {"max_iters": 10})


@pytest.mark.parametrize("library", ["lightgbm", "xgboost"])
def test_a_missing_booster_names_the_extra(monkeypatch: pytest.MonkeyPatch, library: str) -> None:
    monkeypatch.setitem(sys.modules, library, None)  # makes `import <library>` raise ImportError
    with pytest.raises(MissingExtraError, match=rf"'{library}' is not installed.*pip install 'loopline\[{library}\]'"):
        ESTIMATORS.get(library).build("binary")


def test_xgboost_is_registered_for_every_task() -> None:
    spec = ESTIMATORS.get("xgboost")
    assert spec.tasks == ["binary", "multiclass", "regression"] and spec.extra == "xgboost"
    assert spec.fitter == "xgboost" and spec.encode_labels
    assert spec.build("regression", seed=5).get_params()["random_state"] == 5


def test_importing_train_loads_no_estimator_library() -> None:
    code = (
        "import sys, loopline.train, loopline.prep; "
        "print(sorted(m for m in ('lightgbm', 'sklearn', 'skops', 'xgboost') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
