from __future__ import annotations

import sys
from datetime import date
from typing import Any

import numpy as np
import polars as pl
import pytest

from loopline.core.errors import ConfigError, DataError, MissingExtraError
from loopline.prep import Chain, build_transform


def _imbalanced(rows: int = 200, minority: int = 40, seed: int = 0) -> pl.DataFrame:
    """A minority class 'fraud' around (3, 3), a majority 'ok' around (0, 0), plus columns of other kinds."""
    rng = np.random.default_rng(seed)
    label = ["fraud"] * minority + ["ok"] * (rows - minority)
    centre = np.where(np.arange(rows) < minority, 3.0, 0.0)
    return pl.DataFrame(
        {
            "a": centre + rng.normal(size=rows),
            "b": centre + rng.normal(size=rows),
            "n": rng.integers(0, 100, rows),
            "city": rng.choice(["lyon", "nice"], rows).tolist(),
            "day": [date(2024, 1, 1)] * rows,
            "label": label,
        }
    )


def _counts(frame: pl.DataFrame, column: str = "label") -> dict[Any, int]:
    return dict(frame[column].value_counts().iter_rows())


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "oversample"},
        {"type": "undersample"},
        {"type": "smote"},
        {"type": "noise", "copies": 2},
        {"type": "sample", "fraction": 0.5},
    ],
    ids=lambda spec: str(spec["type"]),
)
def test_training_only_steps_never_touch_test_rows(spec: dict[str, Any]) -> None:
    train, test = _imbalanced(), _imbalanced(50, 10, seed=1)
    chain = Chain.from_config([spec, {"type": "scale", "columns": ["a", "b"]}])
    fitted = chain.fit_transform(train, target="label")
    assert fitted.height != train.height
    assert chain.transform(test).height == test.height
    resampled = build_transform(spec).fit_transform(train, "label")  # the same seed: the same rows
    scale = Chain.from_config([{"type": "scale", "columns": ["a", "b"]}]).fit(resampled, target="label")
    assert chain.transform(test).equals(scale.transform(test))  # later steps learn from the resampled rows
    record = test.to_dicts()[0]
    assert chain.transform_record(record) == chain.transform(test.head(1)).to_dicts()[0]


def test_smote_balances_the_classes_and_keeps_the_original_rows_first() -> None:
    train = _imbalanced()
    out = build_transform({"type": "smote"}).fit_transform(train, "label")
    assert _counts(out) == {"fraud": 160, "ok": 160}
    assert out.schema == train.schema
    assert out.head(train.height).equals(train)
    synthetic = out.slice(train.height)
    assert synthetic["label"].unique().to_list() == ["fraud"]
    minority = train.filter(pl.col("label") == "fraud")
    for name in ("a", "b", "n"):  # interpolations stay within the minority's range
        assert minority[name].min() <= synthetic[name].min() and synthetic[name].max() <= minority[name].max()
    assert set(synthetic["city"]) <= {"lyon", "nice"}  # SMOTE-NC: categories come from the neighbours
    assert synthetic["day"].null_count() == synthetic.height  # neither interpolated nor categorical


def test_smote_ratio_variants_and_state() -> None:
    train = _imbalanced().drop("city")
    half = build_transform({"type": "smote", "ratio": 0.5})
    assert _counts(half.fit_transform(train, "label")) == {"fraud": 80, "ok": 160}
    assert half.get_state() == {
        "rows_": {"before": 200, "after": 240},
        "classes_": {"fraud": [40, 80], "ok": [160, 160]},
    }
    for method in ("borderline", "svm", "adasyn"):
        out = build_transform({"type": "smote", "method": method}).fit_transform(train, "label")
        assert _counts(out)["fraud"] > 40 and _counts(out)["ok"] == 160
    balanced = train.filter(pl.int_range(pl.len()) < 80)  # 40 / 40
    assert build_transform({"type": "smote"}).fit_transform(balanced, "label").equals(balanced)


def test_smote_text_columns_only_and_missing_categories() -> None:
    rng = np.random.default_rng(3)
    train = pl.DataFrame(
        {
            "colour": [*(["red", None] * 10), *rng.choice(["red", "blue", "green"], 60).tolist()],
            "label": [1] * 20 + [0] * 60,
        }
    )
    out = build_transform({"type": "smote", "k_neighbors": 3}).fit_transform(train, "label")
    assert _counts(out) == {1: 60, 0: 60}
    assert set(out.slice(80)["colour"].to_list()) <= {"red", None}


def test_smote_is_reproducible_with_a_seed() -> None:
    train = _imbalanced()
    first = build_transform({"type": "smote", "seed": 1}).fit_transform(train, "label")
    assert first.equals(build_transform({"type": "smote", "seed": 1}).fit_transform(train, "label"))
    assert not first.equals(build_transform({"type": "smote", "seed": 2}).fit_transform(train, "label"))


def test_smote_errors_name_the_fix() -> None:
    train = _imbalanced(100, 4)
    with pytest.raises(DataError, match=r"class 'fraud' has 4 rows, too few for k_neighbors 5. Set k_neighbors: 3"):
        build_transform({"type": "smote"}).fit_transform(train, "label")
    with pytest.raises(DataError, match=r"class 'fraud' has 1 rows, .* Use oversample"):
        build_transform({"type": "smote"}).fit_transform(_imbalanced(100, 1), "label")
    with pytest.raises(DataError, match="method 'adasyn' interpolates numeric columns only.*categorical: \\[\\]"):
        build_transform({"type": "smote", "method": "adasyn"}).fit_transform(_imbalanced(), "label")
    with pytest.raises(DataError, match="smote needs the target column.*or set column"):
        build_transform({"type": "smote"}).fit_transform(_imbalanced())
    holes = _imbalanced().with_columns(pl.when(pl.col("a") > 4).then(None).otherwise(pl.col("a")).alias("a"))
    with pytest.raises(DataError, match="column 'a' has .* missing .* impute"):
        build_transform({"type": "smote"}).fit_transform(holes, "label")
    with pytest.raises(ConfigError, match="invalid method 'smtoe'. Did you mean 'smote'?"):
        build_transform({"type": "smote", "method": "smtoe"})


def test_smote_without_imbalanced_learn_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "imblearn", None)
    with pytest.raises(MissingExtraError, match=r"'imblearn' is not installed.*pip install 'loopline\[imbalanced\]'"):
        build_transform({"type": "smote"})


def test_oversample_and_undersample_to_a_ratio() -> None:
    train = _imbalanced().with_row_index("id")
    over = build_transform({"type": "oversample", "ratio": 0.5}).fit_transform(train, "label")
    assert _counts(over) == {"fraud": 80, "ok": 160}
    assert over.head(train.height).equals(train) and over.slice(train.height)["id"].max() < 40
    under = build_transform({"type": "undersample"}).fit_transform(train, "label")
    assert _counts(under) == {"fraud": 40, "ok": 40}
    assert under["id"].is_sorted() and under["id"].n_unique() == 80
    half = build_transform({"type": "undersample", "ratio": 0.5, "column": "label"}).fit_transform(train)
    assert _counts(half) == {"fraud": 40, "ok": 80}
    again = build_transform({"type": "undersample", "seed": 0}).fit_transform(train, "label")
    assert again.equals(under)
    assert not build_transform({"type": "undersample", "seed": 9}).fit_transform(train, "label").equals(under)


def test_noise_scale_follows_each_columns_spread() -> None:
    rng = np.random.default_rng(0)
    train = pl.DataFrame(
        {"small": rng.normal(0, 0.01, 5000), "big": rng.normal(0, 100, 5000), "count": rng.integers(0, 9, 5000)}
    ).with_columns(label=pl.lit(1))
    noise = build_transform({"type": "noise", "scale": 0.2, "seed": 4})
    out = noise.fit_transform(train, "label")
    assert out.height == 10000 and out.head(5000).equals(train) and out.schema == train.schema
    delta = out.slice(5000).select("small", "big").to_numpy() - train.select("small", "big").to_numpy()
    np.testing.assert_allclose(delta.std(axis=0), [0.2 * 0.01, 0.2 * 100], rtol=0.05)
    assert out.slice(5000)["count"].equals(train["count"])  # integer columns only when named
    assert set(noise.get_state()["std_"]) == {"small", "big"}
    assert out.equals(build_transform({"type": "noise", "scale": 0.2, "seed": 4}).fit_transform(train, "label"))


def test_noise_keeps_missing_values_and_integer_types() -> None:
    train = pl.DataFrame(
        {"x": [1.0, None, float("nan"), 4.0], "n": [1, 2, 3, 40], "u": pl.Series([0, 1, 2, 3], dtype=pl.UInt8)}
    )
    out = build_transform(
        {"type": "noise", "columns": ["x", "n", "u"], "keep_original": False, "scale": 3.0}
    ).fit_transform(train)
    assert out.height == 4 and out.schema == train.schema
    assert out["x"].is_null().to_list() == [False, True, False, False] and out["x"].is_nan().to_list()[2]
    assert out["u"].min() >= 0  # type: ignore[operator]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "oversample", "ratio": 0}, "ratio must be a number > 0 and <= 1"),
        ({"type": "undersample", "column": 3}, "column must be a column name"),
        ({"type": "noise", "scale": 0}, "scale must be a number > 0"),
        ({"type": "noise", "copies": 1.5}, "copies must be an integer >= 1"),
        ({"type": "noise", "keep_original": "no"}, "keep_original must be true or false"),
        ({"type": "smote", "k_neighbors": 0}, "k_neighbors must be an integer >= 1"),
        ({"type": "oversample", "seeds": 1}, "Did you mean 'seed'?"),
    ],
)
def test_augment_option_errors(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_transform(spec)


def test_class_balancing_needs_labels() -> None:
    train = _imbalanced().with_columns(pl.when(pl.col("a") > 4).then(None).otherwise(pl.col("label")).alias("label"))
    with pytest.raises(DataError, match="column 'label' has .* missing values.*Drop the rows without a label"):
        build_transform({"type": "oversample"}).fit_transform(train, "label")
    with pytest.raises(DataError, match="oversample: column 'klass' is missing"):
        build_transform({"type": "oversample", "column": "klass"}).fit_transform(train, "label")
