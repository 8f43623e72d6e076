"""Drift of the model's outputs: the profile of its predictions and labels, prediction and target drift."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from loopline.core.config import DriftConfig
from loopline.core.errors import DataError
from loopline.monitor import ReferenceProfile, prediction_drift, profile_outputs, target_drift
from loopline.monitor._profile import CategoricalProfile, NumericProfile


def inputs(rows: int, seed: int, shift: float = 0.0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=shift, size=rows)
    return pl.DataFrame({"x": x, "y": (x + rng.normal(scale=0.5, size=rows)) > 0.8})


class Served:
    """A fitted classifier and the profile of its training frame with its outputs, as the train step builds it."""

    def __init__(self) -> None:
        train, self.valid = inputs(4000, 1), inputs(2000, 2)
        self.model = LogisticRegression().fit(train.select("x").to_numpy(), train.get_column("y").to_numpy())
        self.classes = self.model.classes_.tolist()
        profile = ReferenceProfile.from_frame(train, numeric=["x"], categorical=[])
        self.profile = profile_outputs(profile, self.scores(self.valid), train.get_column("y"), classes=self.classes)

    def scores(self, frame: pl.DataFrame) -> dict[str, np.ndarray]:
        probability = self.model.predict_proba(frame.select("x").to_numpy())
        return {"prediction": np.asarray(self.classes)[probability.argmax(axis=1)], "probability": probability}

    def log(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The window's predictions as the prediction log and the feedback hold them."""
        scores = self.scores(frame)
        return pl.DataFrame({"prediction": scores["prediction"], "probability:True": scores["probability"][:, 1]})


@pytest.fixture(scope="module")
def served() -> Served:
    return Served()


def test_the_profile_holds_the_output_and_label_distributions(served: Served) -> None:
    outputs, labels = served.profile.outputs, served.profile.labels
    assert outputs is not None and labels is not None
    assert set(outputs.columns) == {"prediction", "probability:True"}  # binary: the positive class only
    assert isinstance(outputs.columns["prediction"], CategoricalProfile)
    assert isinstance(outputs.columns["probability:True"], NumericProfile)
    assert outputs.n_rows == 2000  # the validation split
    label = labels.columns["label"]
    assert isinstance(label, CategoricalProfile) and set(label.summary.counts) == {"true", "false"}
    assert label.summary.count == labels.n_rows == 4000
    stored = ReferenceProfile.from_json(served.profile.to_json())
    assert stored.outputs is not None and stored.labels is not None
    assert stored.outputs.columns["probability:True"].summary.values.tolist() == (  # type: ignore[union-attr]
        outputs.columns["probability:True"].summary.values.tolist()  # type: ignore[union-attr]
    )
    assert stored.labels.columns["label"].summary == label.summary


def test_predictions_drift_when_the_inputs_shift_them(served: Served) -> None:
    same = prediction_drift(served.profile, served.log(inputs(800, 3)))
    assert [f.status for f in same.features] == ["no drift", "no drift"] and not same.dataset_drift
    shifted = prediction_drift(served.profile, served.log(inputs(800, 4, shift=0.5)))
    assert {f.feature: f.status for f in shifted.features} == {"probability:True": "drift", "prediction": "drift"}
    assert {f.feature: f.test for f in shifted.features} == {"probability:True": "ks", "prediction": "ztest"}
    assert shifted.dataset_drift


def test_a_series_of_predictions_compares_the_classes_only(served: Served) -> None:
    report = prediction_drift(served.profile, served.log(inputs(800, 4, shift=0.5)).get_column("prediction"))
    assert [(f.feature, f.status) for f in report.features] == [("prediction", "drift")]


def test_a_small_window_has_not_enough_data(served: Served) -> None:
    report = prediction_drift(served.profile, served.log(inputs(10, 5, shift=3.0)))
    assert [f.status for f in report.features] == ["not enough data", "not enough data"]
    assert not report.dataset_drift


def test_target_drift_on_a_label_frequency_change(served: Served) -> None:
    rng = np.random.default_rng(6)
    share = float(np.mean(inputs(4000, 1).get_column("y").to_numpy()))  # about 0.2
    assert not target_drift(served.profile, pl.Series(rng.random(600) < share)).dataset_drift
    report = target_drift(served.profile, pl.DataFrame({"label": rng.random(600) < share + 0.15}))
    (label,) = report.features
    assert (label.feature, label.test, label.status) == ("label", "ztest", "drift")


def test_a_regression_profiles_numbers() -> None:
    train, valid = inputs(3000, 7), inputs(1000, 8)
    model = LinearRegression().fit(train.select("x").to_numpy(), train.get_column("x").to_numpy() * 2)
    profile = profile_outputs(
        ReferenceProfile.from_frame(train, numeric=["x"], categorical=[]),
        {"prediction": model.predict(valid.select("x").to_numpy())},
        train.get_column("x") * 2,
        classes=None,
    )
    assert profile.outputs is not None and list(profile.outputs.columns) == ["prediction"]
    assert isinstance(profile.outputs.columns["prediction"], NumericProfile)
    shifted = model.predict(inputs(500, 9, shift=1.0).select("x").to_numpy())
    assert prediction_drift(profile, pl.Series(shifted)).drifted == ["prediction"]
    report = target_drift(profile, pl.Series(inputs(500, 10).get_column("x").to_numpy() * 2))
    assert [(f.feature, f.kind, f.status) for f in report.features] == [("label", "numeric", "no drift")]


def test_an_old_profile_loads_and_says_not_available(served: Served) -> None:
    old = served.profile.to_dict()
    del old["outputs"], old["labels"]
    profile = ReferenceProfile.from_json(json.dumps(old))
    assert profile.outputs is None and profile.labels is None
    for report in (prediction_drift(profile, pl.Series([True] * 50)), target_drift(profile, pl.Series([1] * 50))):
        (feature,) = report.features
        assert feature.status == "not available" and not feature.drifted and not report.dataset_drift
        assert "retrain" in feature.reason
    assert "outputs" not in ReferenceProfile.from_frame(inputs(10, 1), numeric=["x"], categorical=[]).to_dict()


def test_the_report_round_trips(served: Served) -> None:
    from loopline.monitor import DriftReport

    report = prediction_drift(served.profile, served.log(inputs(800, 4, shift=0.5)), config=DriftConfig(p_value=0.05))
    assert DriftReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def test_bad_input_names_the_column(served: Served) -> None:
    with pytest.raises(DataError, match="the predictions have no column 'prediction'"):
        prediction_drift(served.profile, pl.DataFrame({"pred": [True]}))
    with pytest.raises(DataError, match="the labels have no column 'label'"):
        target_drift(served.profile, pl.DataFrame({"y": [True]}))


def test_a_multiclass_model_profiles_each_class_probability() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(900, 1))
    y = np.where(x[:, 0] < -0.5, "low", np.where(x[:, 0] > 0.5, "high", "mid"))
    model = LogisticRegression().fit(x, y)
    classes = model.classes_.tolist()
    probability = model.predict_proba(x)
    scores = {"prediction": np.asarray(classes)[probability.argmax(axis=1)], "probability": probability}
    train = pl.DataFrame({"x": x[:, 0], "y": y})
    profile = profile_outputs(
        ReferenceProfile.from_frame(train, numeric=["x"], categorical=[]),
        scores,
        train.get_column("y"),
        classes=classes,
    )
    assert profile.outputs is not None
    assert set(profile.outputs.columns) == {"prediction", "probability:high", "probability:low", "probability:mid"}
    labels = target_drift(profile, pl.Series(["low"] * 300 + ["high"] * 300))  # no "mid" at all
    assert [(f.feature, f.test, f.status) for f in labels.features] == [("label", "chi2", "drift")]
