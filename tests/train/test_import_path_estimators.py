"""Estimators named by import path: trained, bundled, loaded; other modules and wrong tasks refused."""

from __future__ import annotations

import io
import json
import zipfile

import polars as pl
import pytest

from loopline.bundle._safety import trusted_types_for
from loopline.core.errors import ConfigError, UnsafeArtifactError
from loopline.train import ModelBundle, TrainSpec, resolve_estimator, train_candidate

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"]


@pytest.mark.parametrize(
    ("path", "params", "min_accuracy"),
    [
        ("sklearn.ensemble:ExtraTreesClassifier", {"n_estimators": 10}, 0.7),
        ("sklearn.ensemble.GradientBoostingClassifier", {"n_estimators": 5}, 0.7),
        ("sklearn.neighbors:KNeighborsClassifier", {"n_neighbors": 3}, 0.7),
        # unscaled inputs: the point is its optimiser state, which skops stores as its own type
        ("sklearn.neural_network:MLPClassifier", {"max_iter": 2000, "hidden_layer_sizes": [8], "tol": 0.01}, 0.0),
    ],
)
def test_classifiers_by_import_path_train_save_and_load(
    halves: tuple[pl.DataFrame, pl.DataFrame], path: str, params: dict[str, object], min_accuracy: float
) -> None:
    train, valid = halves
    result = train_candidate(
        train,
        valid,
        TrainSpec(target="species", numeric=NUMERIC, categorical=["island"], estimator=path, params=params),
    )
    assert result.bundle.task == "multiclass" and result.metrics["valid"]["accuracy"] >= min_accuracy
    loaded = ModelBundle.from_bytes(result.bundle.to_bytes())
    assert loaded.evaluate(valid) == result.bundle.evaluate(valid)
    assert loaded.metadata["algorithm"] == path


def test_regressor_by_import_path_gets_the_seed(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    train, valid = halves
    result = train_candidate(
        train,
        valid,
        TrainSpec(
            target="body_mass_g",
            numeric=NUMERIC,
            categorical=["sex"],
            estimator="sklearn.ensemble:ExtraTreesRegressor",
            params={"n_estimators": 10},
            seed=3,
        ),
    )
    assert result.bundle.task == "regression" and result.params["random_state"] == 3
    assert result.metrics["valid"]["r2"] > 0.5
    assert ModelBundle.from_bytes(result.bundle.to_bytes()).evaluate(valid) == result.bundle.evaluate(valid)


def test_lightgbm_wrapper_by_import_path(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    train, valid = halves
    result = train_candidate(
        train,
        valid,
        TrainSpec(
            target="is_male",
            numeric=NUMERIC,
            categorical=[],
            estimator="lightgbm:LGBMClassifier",
            params={"n_estimators": 10, "verbose": -1},
        ),
    )
    assert ModelBundle.from_bytes(result.bundle.to_bytes()).evaluate(valid) == result.bundle.evaluate(valid)


def test_xgboost_wrapper_by_import_path_trains_as_the_alias_does(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    spec = resolve_estimator("xgboost.XGBClassifier")
    assert (spec.fitter, spec.encode_labels) == ("xgboost", True)
    assert resolve_estimator("sklearn.ensemble:ExtraTreesClassifier").fitter is None
    train, valid = halves
    result = train_candidate(
        train,
        valid,
        TrainSpec(
            target="species",  # string labels: fitted as class indices, as the xgboost alias does
            numeric=NUMERIC,
            categorical=[],
            estimator="xgboost.XGBClassifier",
            params={"n_estimators": 200},
            early_stopping={"patience": 3},
        ),
    )
    assert result.bundle.classes == ["Adelie", "Chinstrap", "Gentoo"]
    assert result.training["stopped"] in ("converged", "max_iterations")
    assert ModelBundle.from_bytes(result.bundle.to_bytes()).evaluate(valid) == result.bundle.evaluate(valid)


@pytest.mark.parametrize("path", ["os:system", "builtins.eval", "subprocess.Popen", "sklearnx.foo:Bar", "a b:c"])
def test_paths_outside_sklearn_are_refused(path: str) -> None:
    with pytest.raises(ConfigError, match=r"import path loopline may import") as info:
        resolve_estimator(path)
    assert "sklearn." in (info.value.hint or "")


def test_things_that_are_not_estimators_are_refused() -> None:
    with pytest.raises(ConfigError, match="not a scikit-learn estimator"):
        resolve_estimator("sklearn.base:clone")
    with pytest.raises(ConfigError, match="neither a classifier nor a regressor"):
        resolve_estimator("sklearn.preprocessing:StandardScaler")
    with pytest.raises(ConfigError, match="no module"):
        resolve_estimator("sklearn.nothing_here:Foo")
    with pytest.raises(ConfigError, match="has no 'ExtraTreeClassifer'") as info:
        resolve_estimator("sklearn.ensemble:ExtraTreeClassifer")
    assert "ExtraTreesClassifier" in (info.value.hint or "")
    with pytest.raises(ConfigError, match="private class"):
        resolve_estimator("sklearn.ensemble:_BaseForest")


def test_a_classifier_on_a_regression_task_is_refused(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    train, valid = halves
    with pytest.raises(ConfigError, match="does not support task 'regression'"):
        train_candidate(
            train,
            valid,
            TrainSpec(
                target="body_mass_g", numeric=NUMERIC, categorical=[], estimator="sklearn.ensemble:ExtraTreesClassifier"
            ),
        )


def test_bad_parameters_get_a_did_you_mean(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    train, valid = halves
    with pytest.raises(ConfigError, match="has no parameter 'n_estimator'") as info:
        train_candidate(
            train,
            valid,
            TrainSpec(
                target="species",
                numeric=NUMERIC,
                categorical=[],
                estimator="sklearn.ensemble:ExtraTreesClassifier",
                params={"n_estimator": 5},
            ),
        )
    assert "n_estimators" in (info.value.hint or "")


def _skops_with_top_type(module: str, cls: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", json.dumps({"__module__": module, "__class__": cls, "protocol": 2}))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("module", "cls"),
    [
        ("os", "system"),
        ("sklearn.base", "clone"),
        ("sklearn.pipeline", "Pipeline"),
        ("sklearn.utils", "Bunch"),
        ("builtins", "eval"),
        ("numpy", "load"),
    ],
)
def test_non_estimator_top_level_types_are_still_refused(module: str, cls: str) -> None:
    with pytest.raises(UnsafeArtifactError, match="not an estimator loopline trusts"):
        trusted_types_for(_skops_with_top_type(module, cls))


def test_an_untrusted_inner_type_is_still_refused() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.utils import Bunch
    from skops.io import dumps

    model = LogisticRegression()
    model.smuggled_ = Bunch(a=1)  # a type skops does not trust and loopline does not allow
    with pytest.raises(UnsafeArtifactError, match=r"untrusted type 'sklearn\.utils\._bunch\.Bunch'"):
        trusted_types_for(dumps(model))


def _bundle_with_estimator(halves: tuple[pl.DataFrame, pl.DataFrame], estimator: object) -> bytes:
    train, valid = halves
    spec = TrainSpec(target="is_male", numeric=NUMERIC, categorical=[], estimator="logistic_regression")
    bundle = train_candidate(train, valid, spec).bundle
    bundle.estimator = estimator
    return bundle.to_bytes()


def test_loading_a_bundle_refuses_an_untrusted_inner_type(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    # from_bytes applies the allowlist to schema.json's types in one skops pass; skops' audit then refuses what
    # that list lacks and the full check names the type
    from sklearn.linear_model import LogisticRegression
    from sklearn.utils import Bunch

    model = LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0]], [0, 1])
    model.smuggled_ = Bunch(a=1)
    data = _bundle_with_estimator(halves, model)
    with pytest.raises(UnsafeArtifactError, match=r"untrusted type 'sklearn\.utils\._bunch\.Bunch'"):
        ModelBundle.from_bytes(data)


def test_a_bundles_skops_estimator_loads_with_skops_own_loader(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    from skops.io import get_untrusted_types, loads

    from loopline.bundle._safety import fast_trusted_types

    data = _bundle_with_estimator(halves, _fitted_hgb())
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        estimator_bytes = archive.read("estimator.skops")
    assert set(get_untrusted_types(data=estimator_bytes)) <= set(fast_trusted_types(estimator_bytes))
    model = loads(estimator_bytes, trusted=trusted_types_for(estimator_bytes))
    assert model.predict([[0.5, 0.5]]).tolist() == ModelBundle.from_bytes(data).estimator.predict([[0.5, 0.5]]).tolist()


def _fitted_hgb() -> object:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=5).fit(
        [[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]], [0, 1, 0, 1]
    )
