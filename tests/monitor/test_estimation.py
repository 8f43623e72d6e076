from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from loopline.core.errors import DataError
from loopline.monitor import PerformanceEstimator, estimate_by_period


def calibrated(rows: int, rng: np.random.Generator, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A calibrated model: x ~ N(shift, 1), P(y | x) = sigmoid(2x - 0.5), served as that probability. A shift of
    x is a covariate shift only: the relation between x and y stays."""
    x = rng.normal(loc=shift, size=rows)
    p = 1 / (1 + np.exp(-(2 * x - 0.5)))
    return p, rng.random(rows) < p


def realised(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    said = p >= 0.5
    return {
        "accuracy": accuracy_score(y, said),
        "precision": precision_score(y, said, zero_division=0),
        "recall": recall_score(y, said),
        "f1": f1_score(y, said),
        "roc_auc": roc_auc_score(y, p),
    }


@pytest.mark.parametrize("shift", [0.0, 0.7, -0.7])
def test_estimates_follow_the_realised_metrics_across_windows_under_covariate_shift(shift: float) -> None:
    rng = np.random.default_rng(1)
    estimator = PerformanceEstimator(draws=200).fit(*calibrated(5_000, rng))
    assert estimator.calibrated_ is False  # already calibrated: left as it is
    misses, inside = [], 0
    for _ in range(8):
        p, y = calibrated(2_000, rng, shift)
        estimate, truth = estimator.estimate(p), realised(p, y)
        for name, value in truth.items():
            est = estimate.metrics[name]
            misses.append(abs(est.value - value))
            inside += est.lower <= value <= est.upper
            assert est.sampling_error > 0
    assert max(misses) < 0.05
    assert np.mean(misses) < 0.015
    assert inside >= 0.85 * len(misses)  # the 95% band holds the realised metric most of the time


def test_the_expected_confusion_matrix_sums_to_the_rows_and_matches_the_counts() -> None:
    rng = np.random.default_rng(2)
    estimator = PerformanceEstimator(draws=50).fit(*calibrated(3_000, rng))
    p, y = calibrated(20_000, rng, 0.3)
    c = estimator.estimate(p).confusion
    assert c.true_positive + c.false_positive + c.false_negative + c.true_negative == pytest.approx(20_000)
    said = p >= 0.5
    assert c.true_positive == pytest.approx((said & y).sum(), rel=0.03)
    assert c.true_negative == pytest.approx((~said & ~y).sum(), rel=0.03)


def test_an_overconfident_model_is_calibrated_on_the_reference_first() -> None:
    rng = np.random.default_rng(3)
    true_p, y = calibrated(6_000, rng)
    served = 1 / (1 + np.exp(-4 * np.log(true_p / (1 - true_p))))  # same ranking, far too confident
    estimator = PerformanceEstimator(draws=100).fit(served, y)
    assert estimator.calibrated_ is True
    raw = PerformanceEstimator(calibration="none", draws=100).fit(served, y)
    p2, y2 = calibrated(3_000, rng, 0.5)
    s2 = 1 / (1 + np.exp(-4 * np.log(p2 / (1 - p2))))
    truth = realised(s2, y2)
    good = estimator.estimate(s2).metrics
    bad = raw.estimate(s2).metrics
    assert abs(good["accuracy"].value - truth["accuracy"]) < 0.03
    assert abs(good["roc_auc"].value - truth["roc_auc"]) < 0.03
    assert abs(bad["roc_auc"].value - truth["roc_auc"]) > abs(good["roc_auc"].value - truth["roc_auc"])


def test_estimate_by_period_gives_one_auc_per_period() -> None:
    rng = np.random.default_rng(4)
    reference = calibrated(4_000, rng)
    months = {f"2025-0{m}": calibrated(3_000, rng, 0.2 * m) for m in range(1, 4)}
    estimated = estimate_by_period(*reference, {name: p for name, (p, _) in months.items()})
    assert list(estimated) == list(months)
    for name, (p, y) in months.items():
        assert estimated[name] == pytest.approx(roc_auc_score(y, p), abs=0.03)


def test_predicted_classes_may_be_given() -> None:
    rng = np.random.default_rng(5)
    estimator = PerformanceEstimator(draws=20).fit(*calibrated(1_000, rng))
    p, _ = calibrated(500, rng)
    everything_positive = estimator.estimate(p, np.ones(500, dtype=bool))
    assert everything_positive.confusion.true_negative == 0
    assert everything_positive.metrics["recall"].value == 1.0


@pytest.mark.parametrize(
    ("probability", "label", "match"),
    [
        (
            np.r_[np.full(199, 0.5), 1.2],
            np.r_[np.ones(100), np.zeros(100)],
            r"reference probability 199 is 1.2; .* \[0, 1\]",
        ),
        (np.r_[np.full(199, 0.5), np.nan], np.r_[np.ones(100), np.zeros(100)], "reference probability 199 is nan"),
        (np.full(200, 0.5), np.ones(200), "every reference label is positive: calibration needs both classes"),
        (np.full(200, 0.5), np.zeros(200), "every reference label is negative"),
        (np.full(50, 0.5), np.r_[np.ones(25), np.zeros(25)], "the reference has 50 rows"),
        (np.full(200, 0.5), np.full(200, 2), "labels must be booleans or 0/1"),
        (np.full(200, 0.5), np.ones(10), "10 labels for 200 probabilities"),
    ],
)
def test_wrong_reference_inputs_are_refused(probability: np.ndarray, label: np.ndarray, match: str) -> None:
    with pytest.raises(DataError, match=match):
        PerformanceEstimator().fit(probability, label)


def test_wrong_analysis_inputs_and_an_unfitted_estimator_are_refused() -> None:
    with pytest.raises(DataError, match="not fitted"):
        PerformanceEstimator().estimate([0.5])
    rng = np.random.default_rng(6)
    estimator = PerformanceEstimator(draws=20).fit(*calibrated(500, rng))
    with pytest.raises(DataError, match=r"analysis probability 1 is -0.1"):
        estimator.estimate([0.2, -0.1])


def test_an_empty_window_is_undefined_not_zero() -> None:
    rng = np.random.default_rng(7)
    estimator = PerformanceEstimator(draws=20).fit(*calibrated(500, rng))
    result = estimator.estimate(np.array([]))
    assert result.rows == 0 and all(np.isnan(e.value) for e in result.metrics.values())
