"""The multiple-testing correction across a report's p-values, and what it changes in a verdict."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from loopline.core.config import DriftConfig
from loopline.monitor import drift_report
from loopline.monitor._verdicts import correct


def test_holm_steps_down_and_stays_monotone() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04 -> monotone 0.02, 0.03, 0.06, 0.06
    assert correct(p, "holm").tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert correct(p, "bonferroni").tolist() == pytest.approx([0.04, 0.16, 0.12, 0.02])
    assert correct(p, "none").tolist() == p.tolist()
    assert correct(np.array([0.9, 0.8]), "holm").tolist() == [1.0, 1.0]
    assert correct(np.empty(0), "holm").size == 0


def test_the_correction_is_what_the_verdict_reads() -> None:
    rng = np.random.default_rng(33)
    n = 400
    # one feature mildly shifted (raw p 0.0057), nine unchanged ones
    reference = pl.DataFrame({f"f{i}": rng.normal(0, 1, n) for i in range(10)})
    current = pl.DataFrame({f"f{i}": rng.normal(0.22 if i == 0 else 0.0, 1, n) for i in range(10)})
    names = list(reference.columns)
    plain = drift_report(reference, current, numeric=names, categorical=[], config=DriftConfig(correction="none"))
    holm = drift_report(reference, current, numeric=names, categorical=[])
    first_plain, first_holm = plain.features[0], holm.features[0]
    assert first_plain.p_value == first_holm.p_value and first_plain.p_value is not None
    assert first_plain.p_value_adjusted == first_plain.p_value
    assert first_holm.p_value_adjusted is not None and first_holm.p_value_adjusted >= first_holm.p_value
    assert "holm-adjusted; raw" in first_holm.reason
    # p 0.0057 alone is drift at alpha 0.01; one of ten tests, it is not (Holm: 10 x 0.0057 = 0.057)
    # uncorrected, an unchanged feature (f7) raises a false alarm too; Holm keeps the report quiet
    assert first_plain.drifted and plain.drifted == ["f0", "f7"] and holm.drifted == []
    assert not first_holm.drifted and first_holm.p_value_adjusted == pytest.approx(10 * first_holm.p_value)
