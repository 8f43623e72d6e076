"""The compiled estimator: gradient boosting bit for bit as scikit-learn, linear models exact across batch sizes.

Gradient boosting: every comparison is ``assert_array_equal``: the compiled path must be
indistinguishable from the estimator, on random rows, NaN, infinities and values exactly at
(and one ulp around) the model's own split thresholds, in 1-row, 64-row and larger batches.

Linear models: a row alone equals the same row in any batch (``assert_array_equal``), and the
numbers are scikit-learn's to rounding (``assert_allclose``, rtol 1e-12): scikit-learn's BLAS
product is the one that is not exact across batch sizes.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import expit
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, SGDClassifier

from loopline.bundle import _compiled as compiled_module
from loopline.bundle._bundle import COMPILED_MAX_ROWS
from loopline.bundle._compiled import CompiledEstimator, CompiledLinearModel, compile_estimator
from loopline.prep import Preprocessor
from loopline.train import ModelBundle, TrainSpec, train_candidate

FEATURES = 8


def _data(rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, FEATURES))
    x[:, 3] = rng.integers(0, 5, rows)  # few distinct values: thresholds between them
    x[rng.random(x.shape) < 0.08] = np.nan
    return x


def _fit(kind: str) -> Any:
    x = _data(1500, 1)
    signal = np.nan_to_num(x[:, 0]) + 0.5 * np.nan_to_num(x[:, 1]) - 0.3 * np.nan_to_num(x[:, 3])
    noisy = signal + np.random.default_rng(2).normal(scale=0.5, size=signal.size)
    if kind == "binary":
        return HistGradientBoostingClassifier(max_iter=60, early_stopping=False, random_state=0).fit(x, noisy > 0)
    if kind == "multiclass":
        labels = np.digitize(noisy, [-0.7, 0.7]).astype(str)
        return HistGradientBoostingClassifier(max_iter=30, early_stopping=False, random_state=0).fit(x, labels)
    if kind == "nine_classes":  # softmax sums over >= 8 columns, where numpy's summation order could show
        labels = np.digitize(noisy, np.linspace(-2, 2, 8))
        return HistGradientBoostingClassifier(max_iter=8, early_stopping=False, random_state=0).fit(x, labels)
    if kind == "early_stopping":
        model = HistGradientBoostingClassifier(max_iter=400, early_stopping=True, n_iter_no_change=3, random_state=0)
        return model.fit(x, noisy > 0.3)
    if kind == "regression":
        return HistGradientBoostingRegressor(max_iter=60, early_stopping=False, random_state=0).fit(x, noisy * 100)
    if kind == "poisson":  # a log link: predictions go through exp
        counts = np.random.default_rng(3).poisson(np.exp(np.clip(signal, -3, 3)))
        return HistGradientBoostingRegressor(loss="poisson", max_iter=40, early_stopping=False).fit(x, counts)
    raise ValueError(kind)


KINDS = ["binary", "multiclass", "nine_classes", "early_stopping", "regression", "poisson"]


@pytest.fixture(scope="module", params=KINDS)
def model(request: pytest.FixtureRequest) -> Any:
    return _fit(request.param)


def _compiled(model: Any) -> CompiledEstimator:
    compiled = compile_estimator(model)
    assert compiled is not None
    return compiled


def _output(model: Any, rows: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict_proba(rows) if hasattr(model, "classes_") else model.predict(rows))


def _compiled_output(compiled: CompiledEstimator, rows: np.ndarray) -> np.ndarray:
    return compiled.predict_proba(rows) if compiled.is_classifier else compiled.predict(rows)


def _thresholds(model: Any) -> dict[int, np.ndarray]:
    """Per column, the split thresholds the model actually uses."""
    nodes = np.concatenate([p.nodes for iteration in model._predictors for p in iteration])
    inner = nodes[nodes["is_leaf"] == 0]
    return {j: inner["num_threshold"][inner["feature_idx"] == j] for j in range(FEATURES)}


def _hard_rows(model: Any, rows: int, seed: int) -> np.ndarray:
    """Random rows where many cells are NaN, +-inf, a split threshold, or one ulp either side of it."""
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=1.5, size=(rows, FEATURES))
    for j, at in _thresholds(model).items():
        if at.size:
            candidates = np.concatenate((at, np.nextafter(at, np.inf), np.nextafter(at, -np.inf)))
            pick = rng.random(rows) < 0.5
            x[pick, j] = rng.choice(candidates, pick.sum())
    special = rng.random(x.shape)
    x[special < 0.06] = np.nan
    x[(special >= 0.06) & (special < 0.08)] = np.inf
    x[(special >= 0.08) & (special < 0.10)] = -np.inf
    return np.ascontiguousarray(x)


def test_hard_rows_reach_the_thresholds(model: Any) -> None:
    rows = _hard_rows(model, 500, 0)
    hits = sum(np.isin(rows[:, j], at).sum() for j, at in _thresholds(model).items())
    assert hits > 100 and np.isnan(rows).any() and np.isposinf(rows).any() and np.isneginf(rows).any()


@pytest.mark.parametrize("rows", [2, 3, 64, 500])
def test_compiled_equals_scikit_learn_bit_for_bit(model: Any, rows: int) -> None:
    compiled = _compiled(model)
    for seed in range(3):
        batch = _hard_rows(model, rows, seed)
        np.testing.assert_array_equal(_compiled_output(compiled, batch), _output(model, batch))


def test_one_row_at_a_time_equals_the_whole_batch(model: Any) -> None:
    compiled = _compiled(model)
    batch = _hard_rows(model, 64, 11)
    whole = _output(model, batch)
    for i in range(batch.shape[0]):
        np.testing.assert_array_equal(_compiled_output(compiled, batch[i : i + 1]), whole[i : i + 1])


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression", "poisson"])
def test_one_row_equals_scikit_learns_one_row_below_eight_classes(kind: str) -> None:
    model = _fit(kind)
    compiled, batch = _compiled(model), _hard_rows(model, 64, 12)
    for i in range(batch.shape[0]):
        row = batch[i : i + 1]
        np.testing.assert_array_equal(_compiled_output(compiled, row), _output(model, row))


def test_with_eight_classes_or_more_a_lone_row_is_answered_as_in_a_batch() -> None:
    """scikit-learn's softmax sums a lone row pairwise and a batch's rows sequentially; the compiled
    predictor always answers as in a batch, so one served record equals offline batch scoring."""
    model = _fit("nine_classes")
    compiled, batch = _compiled(model), _hard_rows(model, 64, 13)
    whole = model.predict_proba(batch)
    lone = np.vstack([model.predict_proba(batch[i : i + 1]) for i in range(batch.shape[0])])
    assert not np.array_equal(lone, whole)  # scikit-learn's own last-bit difference
    np.testing.assert_allclose(lone, whole, rtol=1e-15, atol=0)
    compiled_lone = np.vstack([compiled.predict_proba(batch[i : i + 1]) for i in range(batch.shape[0])])
    np.testing.assert_array_equal(compiled_lone, whole)


def test_every_threshold_itself_goes_where_scikit_learn_sends_it(model: Any) -> None:
    """Column j cycles through all of j's thresholds: each split sees its own threshold value."""
    at = _thresholds(model)
    rows = max(a.size for a in at.values())
    batch = np.column_stack([np.resize(at[j], rows) if at[j].size else np.zeros(rows) for j in range(FEATURES)])
    batch = np.ascontiguousarray(batch)
    np.testing.assert_array_equal(_compiled_output(_compiled(model), batch), _output(model, batch))


def test_classifier_labels_equal_predict(model: Any) -> None:
    compiled, batch = _compiled(model), _hard_rows(model, 300, 5)
    np.testing.assert_array_equal(compiled.predict(batch), model.predict(batch))
    if not compiled.is_classifier:
        with pytest.raises(AttributeError, match="no predict_proba"):
            compiled.predict_proba(batch)


@pytest.fixture(scope="module")
def binary() -> Any:
    return _fit("binary")


cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-4, 4),
    st.sampled_from([0.0, -0.0, 1.0, 2.0, 3.0, 4.0]),
)


@given(batch=hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.just(FEATURES)), elements=cells))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_input_matches_scikit_learn(binary: Any, batch: np.ndarray) -> None:
    batch = np.ascontiguousarray(batch)
    np.testing.assert_array_equal(_compiled(binary).predict_proba(batch), binary.predict_proba(batch))
    np.testing.assert_array_equal(_compiled(binary).predict(batch), binary.predict(batch))


def test_categorical_splits_are_not_compiled() -> None:
    x = _data(600, 4)
    x[:, 3] = np.nan_to_num(x[:, 3])
    y = (x[:, 3] % 2 == 0) ^ (np.nan_to_num(x[:, 0]) > 1)
    model = HistGradientBoostingClassifier(max_iter=10, categorical_features=[3], random_state=0).fit(x, y)
    assert any(p.nodes["is_categorical"].any() for iteration in model._predictors for p in iteration)
    assert compile_estimator(model) is None


@pytest.mark.parametrize(
    "estimator",
    [
        HistGradientBoostingClassifier(),  # not fitted
        LogisticRegression(),  # not fitted
        SGDClassifier(random_state=0).fit(np.eye(4), [0, 1, 0, 1]),  # linear, but not a compiled class
        Ridge().fit(np.eye(4), np.eye(4)[:, :2]),  # two targets
        "not an estimator",
    ],
)
def test_anything_else_is_not_compiled(estimator: Any) -> None:
    assert compile_estimator(estimator) is None


# -- the bundle ------------------------------------------------------------------------------------

START = datetime(2024, 1, 1, tzinfo=UTC)
TRANSFORMS: list[dict[str, Any]] = [
    {"type": "impute", "columns": ["amount"], "strategy": "median", "add_indicator": True},
    {"type": "derive", "columns": {"per_item": "amount / (qty + 1)", "hour": "hour(at)"}},
    {"type": "onehot", "columns": ["city"], "min_frequency": 5},
    {"type": "drop", "columns": ["at"]},
]


def _frame(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 30.0, rows)
    amount[rng.random(rows) < 0.1] = np.nan
    qty = rng.integers(0, 6, rows)
    city = rng.choice(["lyon", "paris", "nice"], rows)
    at = [START + timedelta(minutes=int(m)) for m in rng.integers(0, 60 * 24 * 30, rows)]
    noise = rng.normal(0, 10, rows)
    label = (np.nan_to_num(amount, nan=50) / (qty + 1) + (city == "paris") * 20 + noise) > 30
    spend = np.nan_to_num(amount, nan=50) * 2 + noise
    return pl.DataFrame(
        {"amount": amount, "qty": qty, "city": city, "at": at, "label": label, "spend": spend},
        schema_overrides={"at": pl.Datetime("us", "UTC")},
    ).with_columns(pl.col("amount").fill_nan(None))


def _bundle(estimator: str, target: str) -> ModelBundle:
    result = train_candidate(
        _frame(800, 1).drop("spend" if target == "label" else "label"),
        _frame(200, 2).drop("spend" if target == "label" else "label"),
        TrainSpec(
            target=target,
            numeric=["amount", "qty"],
            categorical=["city", "at"],
            estimator=estimator,
            params={"max_iter": 60},
            transforms=TRANSFORMS,
        ),
    )
    return ModelBundle.from_bytes(result.bundle.to_bytes())


@pytest.fixture(scope="module", params=["classifier", "regressor"])
def bundle(request: pytest.FixtureRequest) -> ModelBundle:
    if request.param == "classifier":
        return _bundle("hist_gradient_boosting", "label")
    return _bundle("hist_gradient_boosting_regressor", "spend")


def _records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()} for r in frame.to_dicts()]


def test_one_record_equals_batch_scoring(bundle: ModelBundle) -> None:
    """The service's answer for one record is the offline table scoring's, bit for bit."""
    assert bundle.compiled() is not None
    frame = _frame(150, 3).drop("label", "spend")
    table = bundle.predict_table(frame)  # 150 rows: scikit-learn's own predictor
    for i, record in enumerate(_records(frame)):
        (one,) = bundle.predict_records([record])
        assert one["prediction"] == table["prediction"][i]
        if "probability" in table:
            assert list(one["probabilities"].values()) == table["probability"][i].tolist()


def test_small_and_large_batches_agree(bundle: ModelBundle) -> None:
    frame = _frame(3 * COMPILED_MAX_ROWS + 5, 4).drop("label", "spend")
    features = bundle.preprocessor.transform(bundle.chain.transform(frame)) if bundle.chain else None
    assert features is not None
    whole = bundle.predict_matrix(features)
    for start in range(0, features.shape[0], COMPILED_MAX_ROWS):
        part = bundle.predict_matrix(features[start : start + COMPILED_MAX_ROWS])
        for key, values in part.items():
            np.testing.assert_array_equal(values, whole[key][start : start + COMPILED_MAX_ROWS])


def test_the_compiled_form_is_derived_state(bundle: ModelBundle) -> None:
    data = bundle.to_bytes()
    assert bundle.compiled() is not None
    after = bundle.to_bytes()  # skops files are not byte-stable: compare the members and the manifest
    with zipfile.ZipFile(io.BytesIO(data)) as old, zipfile.ZipFile(io.BytesIO(after)) as new:
        assert old.namelist() == new.namelist()
        assert old.read("bundle.json") == new.read("bundle.json")
    loaded = ModelBundle.from_bytes(data)
    assert loaded._compiled is None  # not built when loading


def test_a_replaced_estimator_is_compiled_again(bundle: ModelBundle) -> None:
    copy = ModelBundle.from_bytes(bundle.to_bytes())
    first = copy.compiled()
    copy.estimator = ModelBundle.from_bytes(bundle.to_bytes()).estimator
    assert copy.compiled() is not first and copy.compiled() is not None


def test_a_model_that_does_not_compile_still_predicts() -> None:
    frame = _frame(500, 5)
    preprocessor = Preprocessor(["amount", "qty"], ["city"], encode="ordinal").fit(frame)
    features = preprocessor.transform(frame)
    city = len(preprocessor.feature_names_) - 1
    estimator = HistGradientBoostingClassifier(max_iter=20, categorical_features=[city], random_state=0)
    estimator.fit(features, frame["label"].to_numpy())
    bundle = ModelBundle(preprocessor, estimator, target="label", task="binary", classes=[False, True])
    assert bundle.compiled() is None
    out = bundle.predict_matrix(features[:3])
    np.testing.assert_array_equal(out["probability"], estimator.predict_proba(features[:3]))
    assert bundle.predict_records([{"amount": 1.0, "qty": 2, "city": "paris"}])[0]["prediction"] in (False, True)


def test_pickling_drops_the_compiled_form(binary: Any) -> None:
    bundle = ModelBundle(Preprocessor([], []), binary, target="y", task="binary", classes=[False, True])
    rows = _hard_rows(binary, 5, 21)
    expected = bundle.predict_matrix(rows)
    assert bundle.compiled() is not None
    copy = pickle.loads(pickle.dumps(bundle))
    assert copy._compiled is None
    np.testing.assert_array_equal(copy.predict_matrix(rows)["probability"], expected["probability"])


def test_a_wrong_width_gets_scikit_learns_error(binary: Any) -> None:
    bundle = ModelBundle(Preprocessor([], []), binary, target="y", task="binary", classes=[False, True])
    with pytest.raises(ValueError, match="features"):
        bundle.predict_matrix(np.zeros((1, FEATURES + 1)))


# -- linear models ---------------------------------------------------------------------------------

LINEAR_KINDS = ["lr_binary", "lr_multiclass", "ridge", "linear_regression"]
BATCHES = [2, 7, 64, 1000]


def _linear_data(rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 13)) * rng.uniform(0.1, 10, 13)  # columns of different scales
    x[:, 5] = rng.integers(0, 2, rows)  # a one-hot-like column
    return np.ascontiguousarray(x)


def _fit_linear(kind: str) -> Any:
    x = _linear_data(1200, 30)
    signal = x @ np.random.default_rng(31).normal(scale=0.3, size=x.shape[1]) / 3
    noisy = signal + np.random.default_rng(32).normal(scale=0.5, size=signal.size)
    if kind == "lr_binary":
        return LogisticRegression(max_iter=1000).fit(x, noisy > 0)
    if kind == "lr_multiclass":
        return LogisticRegression(max_iter=1000).fit(x, np.digitize(noisy, [-1.0, -0.2, 0.5, 1.2]).astype(str))
    if kind == "ridge":
        return Ridge(alpha=1.0).fit(x, 100 + 10 * noisy)
    if kind == "linear_regression":
        return LinearRegression().fit(x, 100 + 10 * noisy)
    raise ValueError(kind)


@pytest.fixture(scope="module", params=LINEAR_KINDS)
def linear(request: pytest.FixtureRequest) -> Any:
    return _fit_linear(request.param)


def _linear_compiled(model: Any) -> CompiledLinearModel:
    compiled = compile_estimator(model)
    assert isinstance(compiled, CompiledLinearModel)
    assert compiled.max_rows is None  # every batch size goes through it
    return compiled


def test_linear_row_alone_equals_the_row_in_every_batch(linear: Any) -> None:
    compiled, rows = _linear_compiled(linear), _linear_data(1003, 33)
    alone = np.vstack([_compiled_output(compiled, rows[i : i + 1]).reshape(1, -1) for i in range(rows.shape[0])])
    for size in BATCHES:
        for start in (0, 1, 3, rows.shape[0] - size):  # rows at every position, on and off 64-row blocks
            batch = np.ascontiguousarray(rows[start : start + size])
            np.testing.assert_array_equal(
                _compiled_output(compiled, batch).reshape(size, -1), alone[start : start + size]
            )
            np.testing.assert_array_equal(compiled.predict(batch), compiled.predict(rows)[start : start + size])


def test_linear_is_scikit_learn_to_rounding(linear: Any) -> None:
    compiled, rows = _linear_compiled(linear), _linear_data(1000, 34)
    if not compiled.is_classifier:
        np.testing.assert_allclose(compiled.predict(rows), linear.predict(rows), rtol=1e-12, atol=0)
        return
    np.testing.assert_allclose(compiled.decision_function(rows).squeeze(), linear.decision_function(rows), rtol=1e-12)
    # atol: one ulp of 1, as 1 - p can round to a neighbour when p is near 1
    np.testing.assert_allclose(compiled.predict_proba(rows), linear.predict_proba(rows), rtol=1e-12, atol=2.3e-16)
    np.testing.assert_array_equal(compiled.predict(rows), linear.predict(rows))


def test_linear_multiclass_is_softmax_and_binary_is_expit() -> None:
    """The probability math is this scikit-learn version's: softmax over classes, [1 - p, p] for binary."""
    rows = _linear_data(50, 35)
    multi = _linear_compiled(_fit_linear("lr_multiclass"))
    probability = multi.predict_proba(rows)
    assert probability.shape == (50, 5)
    np.testing.assert_allclose(probability.sum(axis=1), 1.0, rtol=1e-15)
    binary = _linear_compiled(_fit_linear("lr_binary"))
    decision = binary.decision_function(rows).ravel()
    positive = expit(decision)  # the function scikit-learn's _predict_proba_lr applies
    np.testing.assert_array_equal(binary.predict_proba(rows), np.stack([1 - positive, positive], axis=1))


def test_linear_refuses_nan_and_infinity_as_scikit_learn_does(linear: Any) -> None:
    compiled, rows = _linear_compiled(linear), _linear_data(5, 36)
    method = "predict_proba" if compiled.is_classifier else "predict"
    for bad in (np.nan, np.inf):
        rows[2, 4] = bad
        with pytest.raises(ValueError, match="NaN|infinity"):
            getattr(linear, method)(rows)
        with pytest.raises(ValueError, match="NaN or infinity.*Impute missing values"):
            getattr(compiled, method)(rows)
        with pytest.raises(ValueError, match="NaN or infinity"):
            compiled.predict(rows[2:3])


@pytest.mark.parametrize(("estimator", "target"), [("logistic_regression", "label"), ("ridge", "spend")])
def test_a_linear_bundle_answers_a_record_as_any_batch_does(estimator: str, target: str) -> None:
    """Records with missing values are imputed by the bundle's chain and preprocessor first; each record
    alone, in small batches and in the whole table gets the same bits, close to scikit-learn's."""
    bundle = _bundle(estimator, target)
    assert isinstance(bundle.compiled(), CompiledLinearModel)
    frame = _frame(1000, 37).drop("label", "spend")
    assert frame["amount"].null_count() > 50
    table = bundle.predict_table(frame)
    key = "probability" if "probability" in table else "prediction"
    records = _records(frame)
    for size in (1, 2, 7, 64):
        for start in range(0, 200, size):
            part = bundle.predict_records(records[start : start + size])
            got = [list(r["probabilities"].values()) if key == "probability" else r["prediction"] for r in part]
            np.testing.assert_array_equal(np.array(got), table[key][start : start + size])
    features = bundle.preprocessor.transform(bundle.chain.transform(frame)) if bundle.chain else None
    assert features is not None and np.isfinite(features).all()
    expected = bundle.estimator.predict_proba(features) if key == "probability" else bundle.estimator.predict(features)
    np.testing.assert_allclose(table[key], expected, rtol=1e-12, atol=2.3e-16)


def test_a_linear_state_it_does_not_know_is_not_compiled() -> None:
    model = _fit_linear("lr_binary")
    model.coef_ = model.coef_.astype(np.float32)
    assert compile_estimator(model) is None


def test_a_linear_model_that_does_not_reproduce_is_not_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe check guards the math: a softmax that is off by more than rounding is discarded."""
    model = _fit_linear("lr_multiclass")
    assert compile_estimator(model) is not None
    monkeypatch.setattr(compiled_module, "_softmax", lambda d: np.full_like(d, 1 / d.shape[1]))
    assert compile_estimator(model) is None
