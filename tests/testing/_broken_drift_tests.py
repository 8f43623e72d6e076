"""Drift tests that each break one rule of the drift-test contract (imported as ``_broken_drift_tests``)."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import numpy as np
import polars as pl
from scipy import stats

from loopline.monitor import DriftTest, DriftTestResult, require_rows, skipped_result
from loopline.monitor._drift_tests import Kind


class Sound(DriftTest):
    """The Wasserstein distance between non-null values, drift above 0.5: keeps every rule (the broken ones
    below derive from it)."""

    name = "raw_wasserstein"
    kinds: ClassVar[tuple[Kind, ...]] = ("numeric",)
    threshold = 0.5

    def compare(self, reference: pl.Series, current: pl.Series) -> DriftTestResult:
        require_rows(self.name, reference, current)
        ref, cur = self._values(reference), self._values(current)
        if ref.size == 0 or cur.size == 0:
            return skipped_result("a side has no non-null values", p_value=False)
        return DriftTestResult(statistic=self._distance(ref, cur), threshold=self.threshold)

    def _values(self, series: pl.Series) -> np.ndarray:
        return series.drop_nulls().to_numpy()

    def _distance(self, reference: np.ndarray, current: np.ndarray) -> float:
        return float(stats.wasserstein_distance(reference, current))


class BadName(Sound):
    """A name that is not a lowercase alias."""

    name = "Wasser-Stein"


class NoKinds(Sound):
    """Declares no kind of column."""

    name = "no_kinds"
    kinds: ClassVar[tuple[Kind, ...]] = ()


class Textual(Sound):
    """Declares a kind of column that does not exist."""

    name = "textual"
    kinds = ("text",)  # type: ignore[assignment]


class Noisy(Sound):
    """Adds unseeded noise to its distance."""

    name = "noisy"

    def _distance(self, reference: np.ndarray, current: np.ndarray) -> float:
        return super()._distance(reference, current) + float(np.random.default_rng().uniform(0, 1e-3))


class FirstRows(Sound):
    """Compares only the first 100 rows of each side: the order of the rows matters."""

    name = "first_rows"

    def _values(self, series: pl.Series) -> np.ndarray:
        return series.head(100).drop_nulls().to_numpy()


class AlwaysDrift(Sound):
    """A distance of at least 1, even between identical samples."""

    name = "always_drift"

    def _distance(self, reference: np.ndarray, current: np.ndarray) -> float:
        return 1.0 + super()._distance(reference, current)


class Blind(Sound):
    """Compares the spreads only: misses a shift of the mean."""

    name = "blind"

    def _distance(self, reference: np.ndarray, current: np.ndarray) -> float:
        return float(abs(np.std(reference) - np.std(current)))


class NullKeeping(Sound):
    """Keeps the nulls: they become NaN and the distance NaN."""

    name = "null_keeping"

    def _values(self, series: pl.Series) -> np.ndarray:
        return series.to_numpy()


class EmptyAccepted(Sound):
    """Skips the row check: an empty side gives a skipped result instead of a DataError."""

    name = "empty_accepted"

    def compare(self, reference: pl.Series, current: pl.Series) -> DriftTestResult:
        if reference.len() == 0 or current.len() == 0:
            return skipped_result("no rows", p_value=False)
        return super().compare(reference, current)


class LoudSkip(Sound):
    """A skipped result with a large statistic: a test that cannot run flags drift."""

    name = "loud_skip"

    def compare(self, reference: pl.Series, current: pl.Series) -> DriftTestResult:
        result = super().compare(reference, current)
        return replace(result, statistic=99.0) if result.skipped else result


class Improbable(Sound):
    """Reports its distance as a p-value, outside [0, 1] for a clear shift."""

    name = "improbable"

    def compare(self, reference: pl.Series, current: pl.Series) -> DriftTestResult:
        result = super().compare(reference, current)
        return replace(result, p_value=result.statistic * 10)


class IntegerStatistic(Sound):
    """Returns its statistic as a numpy integer count, not a float."""

    name = "integer_statistic"

    def compare(self, reference: pl.Series, current: pl.Series) -> DriftTestResult:
        result = super().compare(reference, current)
        return replace(result, statistic=np.int64(round(result.statistic * 100)))  # type: ignore[arg-type]


class Greedy(Sound):
    """A minimum sample size that is not a positive int."""

    name = "greedy"
    min_values = 0
